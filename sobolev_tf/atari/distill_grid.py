"""The Figure 4 grid: games x training fractions x methods, learning rate chosen on validation.

For every (game, fraction, method) each learning rate of ``config.learning_rates``
is trained with the first seed; the one with the lowest final *validation* KL
(the objective both methods share; the paper says only that the rate was
"fitted independently per game and per approach") is selected. Sobolev cells
then try each weight of ``config.alpha_search`` at that rate (the paper does not
give alpha) and keep the alpha with the lowest validation KL, ``config.alpha``
included. The other seeds run with the selected setting. Every run is a
resumable ``distill.train_and_evaluate`` in
``<workdir>/<game>/frac<fraction>/<method>/lr<lr>[_alpha<alpha>]/seed<seed>``
(the suffix only for the alpha search); finished runs (with ``result.json``) are
skipped, so the grid resumes where it stopped.
"""

from __future__ import annotations

import copy
import json
import os
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from sobolev_tf.atari import distill
from sobolev_tf import files
from sobolev_tf import loggers
from sobolev_tf import training
from sobolev_tf.atari import games
from sobolev_tf.files import write_text_atomic

__all__ = ["run_dir", "final_validation_kl", "run_grid", "collect_curves", "summarise",
           "add_student_scores", "write_report_csv", "read_report", "merge_report",
           "REPORT_COLUMNS"]

TeacherFn = Callable[[str], Callable]  # game -> teacher logits callable


def run_dir(workdir: str, game: str, fraction: float, method: str, lr: float, seed: int,
            alpha: Optional[float] = None) -> str:
  """A run's directory; ``alpha`` is given for the alpha search's runs only."""
  name = f"lr{lr:g}" if alpha is None else f"lr{lr:g}_alpha{alpha:g}"
  return os.path.join(workdir, game, f"frac{fraction:g}", method, name, f"seed{seed}")


def _read_curves(path: str) -> List[Dict]:
  """A run's curves.csv rows (``distill.CURVE_COLUMNS``), validated; none if it has none yet."""
  if not os.path.exists(path):
    return []
  return loggers.read_rows(path, distill.CURVE_COLUMNS, distill.CURVE_TYPES,
                           key_columns=("split",))


def final_validation_kl(directory: str) -> float:
  """The last validation KL of a finished run (its selection criterion)."""
  rows = [r for r in _read_curves(os.path.join(directory, "curves.csv"))
          if r["split"] == "validation"]
  if not rows:
    raise ValueError(f"No validation rows in {directory}/curves.csv; "
                     "config.validation_fraction must be > 0 to select a learning rate.")
  return rows[-1]["kl"]


def _run(base, workdir, game, fraction, method, lr, seed, alpha, data_dir, teacher_for, log,
         train):
  """The run's result: read if finished, else trained (or None if ``train`` is False).

  ``alpha`` None means ``base.alpha``. The result gets ``alpha`` (0 for regular
  runs, which have no Sobolev term), ``game`` and its ``run_dir``.
  """
  directory = run_dir(workdir, game, fraction, method, lr, seed, alpha)
  tags = dict(game=game, run_dir=directory,
              alpha=0.0 if method == "regular" else (base.alpha if alpha is None else alpha))
  config = copy.deepcopy(base)
  config.method, config.train_fraction, config.learning_rate, config.seed = (
      method, fraction, lr, seed)
  config.alpha = tags["alpha"] or base.alpha
  config.data_path = os.path.join(data_dir, f"{game}.npz")
  result_path = os.path.join(directory, "result.json")
  if os.path.exists(result_path):
    fix = f"Move {directory} away to train this run again."
    result = files.read_json(result_path, fix)
    recorded = os.path.join(directory, "run_config.json")
    if os.path.exists(recorded):
      # Not the data: a report may be made without them (--report_only).
      differences = training.config_differences(files.read_json(recorded, fix),
                                                config.to_dict(),
                                                distill.resumable_keys(config) + ("data",))
      if differences:
        raise ValueError(f"{directory} holds a run of another configuration "
                         f"({'; '.join(differences)}); give this config its own --workdir.")
    # Directories are not keyed by the gradient term's loss: refuse to mix losses.
    trained, asked = (r.get("derivative_loss") or "l2_norm" for r in (result, base))
    if method == "sobolev" and trained != asked:
      raise ValueError(f"{directory} was trained with derivative_loss={trained!r} but the "
                       f"config asks for {asked!r}; give this config its own --workdir.")
    return dict(result, **tags)
  if not train:
    return None
  teacher = teacher_for(game) if method == "sobolev" else None
  log(f"[grid] {game} fraction {fraction:g} {method} lr {lr:g}"
      + (f" alpha {alpha:g}" if alpha is not None else "") + f" seed {seed}")
  return dict(distill.train_and_evaluate(config, directory, teacher_logits=teacher, log=log),
              **tags)


def _check_grid_values(config) -> None:
  """Every value of the grid's lists, before the first run trains."""
  for name in ("games", "fractions", "methods", "learning_rates", "seeds"):
    if not len(config[name]):
      raise ValueError(f"config.{name} is empty.")
  for fraction in config.fractions:
    if not 0 < fraction < 1:
      raise ValueError(f"config.fractions must be in (0, 1), got {fraction!r}.")
  for lr in config.learning_rates:
    if not lr > 0:
      raise ValueError(f"config.learning_rates must be > 0, got {lr!r}.")
  for alpha in config.get("alpha_search", ()):
    if not alpha >= 0:
      raise ValueError(f"config.alpha_search must be >= 0, got {alpha!r}.")


def run_grid(config, workdir: str, data_dir: str, teacher_for: Optional[TeacherFn],
             log: Callable[[str], None] = print, train: bool = True) -> List[Dict]:
  """Runs (or resumes) the whole grid; returns one result dict per finished run.

  ``config`` is a ``configs/distill.py`` config with the grid fields ``games``,
  ``fractions``, ``methods``, ``learning_rates`` and ``seeds``. With ``train=False``
  nothing is trained: the finished runs are collected (for a report mid-grid).
  """
  for method in config.methods:
    if method not in distill.METHODS:
      raise ValueError(f"Unknown method {method!r}; known: {', '.join(distill.METHODS)}.")
  _check_grid_values(config)
  for game in config.games:
    games.get_game(game)  # Unknown names fail before hours of work.
    path = os.path.join(data_dir, f"{game}.npz")
    if train and not os.path.exists(path):
      raise ValueError(f"No dataset {path}; collect it with scripts/collect_atari.py "
                       f"--game={game} --data_dir={data_dir}.")
  results = []
  selection_path = os.path.join(workdir, "selection.json")
  first_seed, other_seeds = config.seeds[0], list(config.seeds[1:])
  alpha_search = [a for a in config.get("alpha_search", ()) if a != config.alpha]
  run = lambda game, fraction, method, lr, seed, alpha=None: _run(
      config, workdir, game, fraction, method, lr, seed, alpha, data_dir, teacher_for, log,
      train)
  for game in config.games:
    for fraction in config.fractions:
      for method in config.methods:
        key = f"{game}/{fraction:g}/{method}"
        candidates = [run(game, fraction, method, lr, first_seed) for lr in config.learning_rates]
        finished = [dict(r, selected=False) for r in candidates if r is not None]
        results += finished
        if len(finished) < len(candidates):
          continue  # Selection needs every candidate (report mode only).
        kls = {r["learning_rate"]: final_validation_kl(r["run_dir"]) for r in finished}
        best_lr = min(kls, key=kls.get)
        log(f"[grid] {key}: validation KL by learning rate "
            + ", ".join(f"{lr:g}: {kl:.4f}" for lr, kl in kls.items()) + f" -> {best_lr:g}")
        best = [r for r in finished if r["learning_rate"] == best_lr][0]
        choice = dict(selected=best_lr, validation_kl={f"{k:g}": v for k, v in kls.items()})
        if method == "sobolev" and alpha_search:
          # Second stage: the Sobolev weight at the selected learning rate.
          searched = [run(game, fraction, method, best_lr, first_seed, a) for a in alpha_search]
          results += [dict(r, selected=False) for r in searched if r is not None]
          if any(r is None for r in searched):
            continue
          by_alpha = {r["alpha"]: r for r in [best] + searched}
          alpha_kls = {a: final_validation_kl(r["run_dir"]) for a, r in by_alpha.items()}
          best = by_alpha[min(alpha_kls, key=alpha_kls.get)]
          choice.update(alpha=best["alpha"],
                        validation_kl_by_alpha={f"{k:g}": v for k, v in alpha_kls.items()})
          log(f"[grid] {key}: validation KL by alpha at lr {best_lr:g} "
              + ", ".join(f"{a:g}: {kl:.4f}" for a, kl in alpha_kls.items())
              + f" -> {best['alpha']:g}")
        if train:
          selection = {}
          if os.path.exists(selection_path):
            selection = files.read_json(selection_path, "Delete it: the grid writes it again.")
          selection[key] = choice
          write_text_atomic(selection_path, json.dumps(selection, indent=1, sort_keys=True))
        for r in results:
          if r["run_dir"] == best["run_dir"]:
            r["selected"] = True
        searched_alpha = None if best["alpha"] in (0.0, config.alpha) else best["alpha"]
        for seed in other_seeds:
          r = run(game, fraction, method, best_lr, seed, searched_alpha)
          if r is not None:
            results.append(dict(r, selected=True))
  return results


def collect_curves(results: List[Dict]) -> List[Dict]:
  """Every evaluation row of every run (from its ``run_dir``), tagged with its run."""
  rows = []
  for r in results:
    for c in _read_curves(os.path.join(r["run_dir"], "curves.csv")):
      rows.append(dict(game=r["game"], fraction=r["train_fraction"], method=r["method"],
                       learning_rate=r["learning_rate"], alpha=r["alpha"], seed=r["seed"],
                       selected=r["selected"], **c))
  return rows


def summarise(results: List[Dict]) -> List[Dict]:
  """Mean and std over seeds of the selected runs' final test metrics, per cell.

  ``run_dir`` is the first seed's run (the one the selection trained).
  """
  cells: Dict[tuple, List[Dict]] = {}
  for r in results:
    if r["selected"]:
      cells.setdefault((r["game"], r["train_fraction"], r["method"]), []).append(r)
  out = []
  for (game, fraction, method), rs in cells.items():
    errors = np.array([r["action_error"] for r in rs])
    kls = np.array([r["kl"] for r in rs])
    out.append(dict(game=game, fraction=fraction, method=method,
                    learning_rate=rs[0]["learning_rate"], alpha=rs[0]["alpha"], seeds=len(rs),
                    train_states=rs[0]["train_states"], test_states=rs[0]["test_states"],
                    action_error=float(errors.mean()), action_error_std=float(errors.std()),
                    kl=float(kls.mean()), kl_std=float(kls.std()),
                    wall_minutes=float(np.mean([r["wall_seconds"] for r in rs]) / 60),
                    run_dir=rs[0]["run_dir"]))
  return out


def add_student_scores(summary: List[Dict], episodes: int,
                       log: Callable[[str], None] = print) -> None:
  """Plays ``episodes`` games with each cell's selected student (its ``run_dir``).

  Adds ``student_score`` and ``student_score_std`` to the rows of ``summary``; the
  scores are cached as ``play.json`` in the run directory (protocol:
  ``sobolev_tf.atari.evaluation``, sampled actions).
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from sobolev_tf.atari import evaluation  # pylint: disable=g-import-not-at-top
  for row in summary:
    directory = row["run_dir"]
    path = os.path.join(directory, "play.json")
    if os.path.exists(path):
      result = files.read_json(path, "Delete it to play the games again.")
    else:
      if not os.path.exists(os.path.join(directory, "result.json")):
        continue
      student, _ = distill.load_student(directory, games.get_game(row["game"]).num_actions)
      log(f"[grid] playing {episodes} games of {row['game']} with {directory}")
      result = evaluation.evaluate_policy(tf.function(student), row["game"], episodes)
      write_text_atomic(path, json.dumps(result, indent=1))
    if result["episodes"] >= episodes:
      row["student_score"], row["student_score_std"] = result["mean"], result["std"]


# Column types of a report's final.csv and curves.csv (the rest are strings).
_REPORT_COLUMN_TYPES = dict(
    fraction=float, learning_rate=float, alpha=float, seed=int, seeds=int, step=int,
    train_states=int, test_states=int, action_error=float, action_error_std=float, kl=float,
    kl_std=float, wall_minutes=float, student_score=float, student_score_std=float,
    selected=lambda s: {"True": True, "False": False}[s])


def write_report_csv(path: str, rows: List[Dict]) -> None:
  """Writes a report's rows (final.csv or curves.csv) atomically; nothing if empty.

  The columns are every key of any row, in order of appearance: rows may lack a
  key (a cell whose student never played), which is then written empty.
  """
  if not rows:
    return
  files.write_csv(path, rows)


# The columns of a report's final.csv and curves.csv that the report reads from every
# row (``summarise``, ``collect_curves``); a student's score may be absent.
REPORT_COLUMNS = {
    "final.csv": ("game", "fraction", "method", "learning_rate", "alpha", "seeds",
                  "train_states", "action_error", "action_error_std", "kl", "kl_std",
                  "wall_minutes"),
    "curves.csv": ("game", "fraction", "method", "seed", "selected") + distill.CURVE_COLUMNS}


def read_report(directory: str) -> Tuple[List[Dict], List[Dict]]:
  """The ``(summary, curves)`` rows of an earlier report's final.csv and curves.csv.

  Empty fields (a cell whose student never played) are left out of the row; a
  column or value that every row has (``REPORT_COLUMNS``) missing is an error
  naming the file.
  """
  tables = []
  for name, required in REPORT_COLUMNS.items():
    path = os.path.join(directory, name)
    if not os.path.exists(path):
      raise ValueError(f"No {name} in the report directory {directory!r}.")
    tables.append(files.read_csv(path, types=_REPORT_COLUMN_TYPES, required=required))
  return tables[0], tables[1]


def merge_report(summary: List[Dict], curves: List[Dict], previous_summary: List[Dict],
                 previous_curves: List[Dict]) -> Tuple[List[Dict], List[Dict]]:
  """Adds an earlier report's cells to this grid's: finished cells here win.

  A cell is a (game, fraction, method). This lets one report cover grids run
  in pieces (other machines, or workdirs that are gone): the cells this grid
  has finished (in ``summary``) replace the earlier report's, the earlier
  report's other cells (and their curves) are kept, and curves of cells this
  grid has not finished are kept only where the earlier report has no such cell.
  Returns ``(summary, curves)`` in the earlier report's order, new cells last.
  """
  cell = lambda r: (r["game"], float(r["fraction"]), r["method"])
  finished = {cell(r): r for r in summary}
  previous_cells = {cell(r) for r in previous_summary}
  merged = ([finished.get(cell(r), r) for r in previous_summary]
            + [r for r in summary if cell(r) not in previous_cells])
  kept_cells = previous_cells - set(finished)
  merged_curves = ([c for c in previous_curves if cell(c) in kept_cells]
                   + [c for c in curves if cell(c) not in kept_cells])
  return merged, merged_curves

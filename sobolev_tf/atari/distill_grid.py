"""The Figure 4 grid: games x training fractions x methods, learning rate chosen on validation.

For every (game, fraction, method) each learning rate of ``config.learning_rates``
is trained with the first seed; the one with the lowest final *validation* KL
(the objective both methods share; the paper says only that the rate was
"fitted independently per game and per approach") is selected, and the other
seeds run with it. Every run is a resumable ``distill.train_and_evaluate`` in
``<workdir>/<game>/frac<fraction>/<method>/lr<lr>/seed<seed>``; finished runs
(with ``result.json``) are skipped, so the grid resumes where it stopped.
"""

from __future__ import annotations

import copy
import json
import os
from typing import Callable, Dict, List, Optional

import numpy as np

from sobolev_tf.atari import distill
from sobolev_tf.atari import games
from sobolev_tf.io import write_text_atomic

__all__ = ["run_dir", "final_validation_kl", "run_grid", "collect_curves", "summarise",
           "add_student_scores"]

TeacherFn = Callable[[str], Callable]  # game -> teacher logits callable


def run_dir(workdir: str, game: str, fraction: float, method: str, lr: float, seed: int) -> str:
  return os.path.join(workdir, game, f"frac{fraction:g}", method, f"lr{lr:g}", f"seed{seed}")


def _read_curves(path: str) -> List[Dict]:
  if not os.path.exists(path):
    return []
  with open(path) as f:
    lines = f.read().strip().split("\n")
  rows = []
  for line in lines[1:]:
    step, split, error, kl = line.split(",")
    rows.append(dict(step=int(step), split=split, action_error=float(error), kl=float(kl)))
  return rows


def final_validation_kl(directory: str) -> float:
  """The last validation KL of a finished run (its selection criterion)."""
  rows = [r for r in _read_curves(os.path.join(directory, "curves.csv"))
          if r["split"] == "validation"]
  if not rows:
    raise ValueError(f"No validation rows in {directory}/curves.csv; "
                     "config.validation_fraction must be > 0 to select a learning rate.")
  return rows[-1]["kl"]


def _run(base, workdir, game, fraction, method, lr, seed, data_dir, teacher_for, log, train):
  """The run's result: read if finished, else trained (or None if ``train`` is False)."""
  directory = run_dir(workdir, game, fraction, method, lr, seed)
  result_path = os.path.join(directory, "result.json")
  if os.path.exists(result_path):
    with open(result_path) as f:
      return json.load(f)
  if not train:
    return None
  config = copy.deepcopy(base)
  config.method, config.train_fraction, config.learning_rate, config.seed = (
      method, fraction, lr, seed)
  config.data_path = os.path.join(data_dir, f"{game}.npz")
  teacher = teacher_for(game) if method == "sobolev" else None
  log(f"[grid] {game} fraction {fraction:g} {method} lr {lr:g} seed {seed}")
  return distill.train_and_evaluate(config, directory, teacher_logits=teacher, log=log)


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
  for game in config.games:
    games.get_game(game)  # Unknown names fail before hours of work.
    path = os.path.join(data_dir, f"{game}.npz")
    if train and not os.path.exists(path):
      raise ValueError(f"No dataset {path}; collect it with scripts/collect_atari.py "
                       f"--game={game} --data_dir={data_dir}.")
  results = []
  selection_path = os.path.join(workdir, "selection.json")
  first_seed, other_seeds = config.seeds[0], list(config.seeds[1:])
  run = lambda game, fraction, method, lr, seed: _run(
      config, workdir, game, fraction, method, lr, seed, data_dir, teacher_for, log, train)
  for game in config.games:
    for fraction in config.fractions:
      for method in config.methods:
        key = f"{game}/{fraction:g}/{method}"
        candidates = [run(game, fraction, method, lr, first_seed) for lr in config.learning_rates]
        finished = [r for r in candidates if r is not None]
        results += [dict(r, game=game, selected=False) for r in finished]
        if len(finished) < len(candidates):
          continue  # Selection needs every learning rate (report mode only).
        kls = {lr: final_validation_kl(run_dir(workdir, game, fraction, method, lr, first_seed))
               for lr in config.learning_rates}
        best = min(kls, key=kls.get)
        if train:
          selection = {}
          if os.path.exists(selection_path):
            with open(selection_path) as f:
              selection = json.load(f)
          selection[key] = dict(selected=best, validation_kl={f"{k:g}": v for k, v in kls.items()})
          write_text_atomic(selection_path, json.dumps(selection, indent=1, sort_keys=True))
        log(f"[grid] {key}: validation KL by learning rate "
            + ", ".join(f"{lr:g}: {kl:.4f}" for lr, kl in kls.items()) + f" -> {best:g}")
        for r in results:
          if (r["game"], r["train_fraction"], r["method"], r["learning_rate"]) == (
              game, fraction, method, best):
            r["selected"] = True
        for seed in other_seeds:
          r = run(game, fraction, method, best, seed)
          if r is not None:
            results.append(dict(r, game=game, selected=True))
  return results


def collect_curves(workdir: str, results: List[Dict]) -> List[Dict]:
  """Every evaluation row of every run, tagged with its run (for the curves CSV)."""
  rows = []
  for r in results:
    directory = run_dir(workdir, r["game"], r["train_fraction"], r["method"],
                        r["learning_rate"], r["seed"])
    for c in _read_curves(os.path.join(directory, "curves.csv")):
      rows.append(dict(game=r["game"], fraction=r["train_fraction"], method=r["method"],
                       learning_rate=r["learning_rate"], seed=r["seed"],
                       selected=r["selected"], **c))
  return rows


def summarise(results: List[Dict]) -> List[Dict]:
  """Mean and std over seeds of the selected runs' final test metrics, per cell."""
  cells: Dict[tuple, List[Dict]] = {}
  for r in results:
    if r["selected"]:
      cells.setdefault((r["game"], r["train_fraction"], r["method"]), []).append(r)
  out = []
  for (game, fraction, method), rs in cells.items():
    errors = np.array([r["action_error"] for r in rs])
    kls = np.array([r["kl"] for r in rs])
    out.append(dict(game=game, fraction=fraction, method=method,
                    learning_rate=rs[0]["learning_rate"], seeds=len(rs),
                    train_states=rs[0]["train_states"], test_states=rs[0]["test_states"],
                    action_error=float(errors.mean()), action_error_std=float(errors.std()),
                    kl=float(kls.mean()), kl_std=float(kls.std()),
                    wall_minutes=float(np.mean([r["wall_seconds"] for r in rs]) / 60)))
  return out


def add_student_scores(workdir: str, summary: List[Dict], seed: int, episodes: int,
                       log: Callable[[str], None] = print) -> None:
  """Plays ``episodes`` games with each cell's selected student (run ``seed``).

  Adds ``student_score`` and ``student_score_std`` to the rows of ``summary``; the
  scores are cached as ``play.json`` in the run directory (protocol:
  ``sobolev_tf.atari.evaluation``, sampled actions).
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from sobolev_tf.atari import evaluation  # pylint: disable=g-import-not-at-top
  for row in summary:
    directory = run_dir(workdir, row["game"], row["fraction"], row["method"],
                        row["learning_rate"], seed)
    path = os.path.join(directory, "play.json")
    if os.path.exists(path):
      with open(path) as f:
        result = json.load(f)
    else:
      if not os.path.exists(os.path.join(directory, "result.json")):
        continue
      student, _ = distill.load_student(directory, games.get_game(row["game"]).num_actions)
      log(f"[grid] playing {episodes} games of {row['game']} with {directory}")
      result = evaluation.evaluate_policy(tf.function(student), row["game"], episodes)
      write_text_atomic(path, json.dumps(result, indent=1))
    if result["episodes"] >= episodes:
      row["student_score"], row["student_score_std"] = result["mean"], result["std"]

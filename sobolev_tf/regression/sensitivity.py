"""The Figure 2 sensitivity study: which choices decide the size of Sobolev training's gain.

``configs/regression_sensitivity.py`` lists the settings (overrides of one base
regression config). Each trains with ``experiment.run_grid`` in its own workdir;
the report compares regular and Sobolev training per setting, function and size.
The gain is the median over seeds of each seed's difference of log10 test MSE,
regular minus Sobolev (same data and initialisation), in decades: 1 = 10x lower
test error with Sobolev training. The median log10 test MSE of each method is
shown beside it; the two medians need not subtract to the gain.

A run converged at the first evaluation from which its test MSE stays within
``CONVERGED_DECADES`` of its final value; one that only does so at its last
evaluation has not converged (a single evaluation counts as converged). Its last
change (improving, worsening, flat or diverged) compares the last two evaluations.
"""

from __future__ import annotations

import copy
import os
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from sobolev_tf import files
from sobolev_tf.regression import experiment

__all__ = ["setting_config", "run_study", "run_settings", "converged_step", "summarize",
           "at_budget", "write_run_csvs", "gain_table", "plot_gains", "all_cells_table",
           "write_report", "train_and_evaluate", "CSV_COLUMNS", "CURVE_COLUMNS",
           "CONVERGED_DECADES", "TITLE", "check_report_destination"]

# The fixed-budget study's scope, printed above its answer.
SCOPE = ("Scope: a fixed budget at a constant rate, on runs many of which have not converged "
         "(the \"converged\" column). The gains at convergence are in `convergence.md` "
         "(`python scripts/regression_convergence.py`); where the two differ, that report holds.")

CONVERGED_DECADES = 0.1
CSV_COLUMNS = ("setting",) + experiment.CSV_COLUMNS + ("converged_step", "last_change")
_RUN_KEYS = ("setting", "function", "num_train", "method", "seed")
CURVE_COLUMNS = _RUN_KEYS + ("step", "test_mse", "test_grad_mse")  # <stem>_curves.csv
TITLE = "# Figure 2 sensitivity: when does Sobolev training give orders of magnitude?"


def setting_config(config, name: str):
  """The base config with the overrides of setting ``name``."""
  if name not in config.settings:
    raise ValueError(f"Unknown setting {name!r}; known: {', '.join(config.settings)}.")
  setting = copy.deepcopy(config.base)
  setting.update(config.settings[name].to_dict())
  setting.methods, setting.extra_methods, setting.second_order_methods = (
      ("regular", "sobolev"), (), ())
  return setting


def converged_step(curve: Sequence[tuple], final_mse: float) -> tuple:
  """(convergence step or None, last change) of one run's ``(step, mse, grad_mse)`` curve.

  The convergence step is the first evaluation from which log10 test MSE stays
  within CONVERGED_DECADES of the final value; None when that holds only at the
  last evaluation (not converged) or the final MSE is not finite. The last
  change is ``improving`` or ``worsening`` (the last evaluation moved by more
  than CONVERGED_DECADES from the one before), ``flat``, or ``diverged``.
  """
  points = [(step, mse) for step, mse, _ in curve]
  if not np.isfinite(final_mse) or final_mse <= 0 or not points:
    return None, "diverged" if points else "flat"
  target = np.log10(final_mse)
  step = points[-1][0]
  for s, mse in reversed(points):
    if not np.isfinite(mse) or mse <= 0 or abs(np.log10(mse) - target) > CONVERGED_DECADES:
      break
    step = s
  converged = step if len(points) == 1 or step != points[-1][0] else None
  change = "flat"
  if len(points) >= 2:
    previous = points[-2][1]
    delta = np.log10(previous) - target if np.isfinite(previous) and previous > 0 else np.inf
    change = ("improving" if delta > CONVERGED_DECADES else
              "worsening" if delta < -CONVERGED_DECADES else "flat")
  return converged, change


def _check_settings(config) -> None:
  for name in config.settings:
    setting = setting_config(config, name)
    experiment.check_grid(experiment.grid_runs(setting), setting)
  for key in ("reference", "paper_setting"):
    if config[key] not in config.settings:
      raise ValueError(f"config.{key}={config[key]!r} is not a setting.")
  for name in config.get("length_settings", ()):
    if name not in config.settings:
      raise ValueError(f"config.length_settings names {name!r}, which is not a setting.")
  reference = setting_config(config, config.reference)
  # Evaluations happen after whole calls of steps_per_call steps.
  evaluated = {s for s in tuple(reference.eval_steps) + (reference.num_steps,)
               if s <= reference.num_steps and s % reference.steps_per_call == 0}
  for name in config.settings:
    steps = setting_config(config, name).num_steps
    if steps not in evaluated:
      raise ValueError(f"Setting {name!r} trains {steps} steps, at which the reference "
                       f"{config.reference!r} is not evaluated; add it to base.eval_steps.")


def run_study(config, workdir: str, log: Optional[Callable[[str], None]] = None) -> List[Dict]:
  """Trains (or resumes) every setting; one row per run, with its learning curve."""
  _check_settings(config)  # Every setting before the first trains.
  return run_settings(config, workdir, log)


def run_settings(config, workdir: str, log: Optional[Callable[[str], None]] = None,
                 names: Optional[Sequence[str]] = None) -> List[Dict]:
  """Trains (or resumes) the settings ``names`` (default: all), each in ``workdir/<name>``;
  one row per run with its learning curve, convergence step and last change."""
  rows = []
  for name in (config.settings if names is None else names):
    setting = setting_config(config, name)
    (log or print)(f"[study] {name}: {setting.num_steps:,} steps")
    for r in experiment.run_grid(experiment.grid_runs(setting), setting,
                                 os.path.join(workdir, name), log):
      step, change = converged_step(r["curve"], r["test_mse"])
      rows.append(dict(r, setting=name, converged_step=step, last_change=change))
  return rows


def at_budget(rows: Sequence[Dict], setting: str, steps: int) -> List[Dict]:
  """The runs of ``setting`` as they stood at ``steps`` (from their learning curves)."""
  out = []
  for r in rows:
    if r["setting"] != setting:
      continue
    if r["steps"] == steps:
      out.append(r)
      continue
    point = [c for c in r["curve"] if c[0] == steps]
    if not point:
      raise ValueError(f"Setting {setting!r} has no evaluation at step {steps}; add it to "
                       "base.eval_steps.")
    out.append(dict(r, test_mse=point[0][1], test_grad_mse=point[0][2], steps=steps,
                    converged_step=None, last_change=None))
  return out


def _paired_gains(by_method: Dict[str, List[Dict]]) -> List[float]:
  """Each seed's regular - Sobolev log10 test MSE, for the seeds that have both."""
  finite = lambda r: np.isfinite(r["test_mse"]) and r["test_mse"] > 0  # Diverged runs: none.
  regular = {r["seed"]: np.log10(r["test_mse"]) for r in by_method.get("regular", []) if finite(r)}
  return [regular[r["seed"]] - np.log10(r["test_mse"]) for r in by_method.get("sobolev", [])
          if r["seed"] in regular and finite(r)]


def _lower_median(values: Sequence[int]) -> int:
  """A median that is one of the values (an evaluated step)."""
  return sorted(values)[(len(values) - 1) // 2]


def summarize(rows: Sequence[Dict]) -> List[Dict]:
  """Per (setting, function, size, steps): both methods' median log10 test MSE and the gain.

  ``gain``: the median over seeds of each seed's difference (None without a
  pair), with ``gain_min`` / ``gain_max`` over the seeds and ``pairs``;
  per method, the lower median of the convergence steps of the runs that
  converged and how many did not; the counts of runs whose last change was
  an improvement or a worsening (None at an intermediate budget).
  """
  cells = {}
  for r in rows:
    cells.setdefault((r["setting"], r["function"], r["num_train"], r["steps"]), {}).setdefault(
        r["method"], []).append(r)
  out = []
  for (setting, function, num_train, steps), by_method in cells.items():
    med = {m: float(np.median(np.log10([r["test_mse"] for r in rs])))
           for m, rs in by_method.items()}
    gains = _paired_gains(by_method)
    runs = [r for rs in by_method.values() for r in rs]
    known = all(r.get("last_change") is not None for r in runs)
    conv, not_converged = {}, {}
    for m, rs in by_method.items():
      steps_ = [r["converged_step"] for r in rs if r.get("converged_step") is not None]
      conv[m] = _lower_median(steps_) if known and steps_ else None
      not_converged[m] = sum(r.get("converged_step") is None for r in rs) if known else None
    count = lambda change: sum(r["last_change"] == change for r in runs) if known else None
    out.append(dict(setting=setting, function=function, num_train=num_train, steps=steps,
                    pairs=len(gains), regular=med.get("regular"), sobolev=med.get("sobolev"),
                    gain=float(np.median(gains)) if gains else None,
                    gain_min=min(gains) if gains else None,
                    gain_max=max(gains) if gains else None,
                    converged_regular=conv.get("regular"), converged_sobolev=conv.get("sobolev"),
                    not_converged_regular=not_converged.get("regular"),
                    not_converged_sobolev=not_converged.get("sobolev"),
                    improving=count("improving"), worsening=count("worsening"),
                    diverged=count("diverged")))
  return out


def _summary_at(rows: Sequence[Dict], setting: str, steps: int) -> List[Dict]:
  """``setting``'s summary as it stood at ``steps``, labelled ``<setting> @ <steps>``."""
  return [dict(t, setting=f"{setting} @ {steps:,}")
          for t in summarize(at_budget(rows, setting, steps))]


def _comparison(rows: Sequence[Dict], config) -> List[Dict]:
  """Every setting's summary, each after the reference at that setting's budget."""
  table, shown = [], set()
  reference_steps = next((r["steps"] for r in rows if r["setting"] == config.reference), None)
  for name in config.settings:
    own = [r for r in rows if r["setting"] == name]
    if not own:
      continue
    steps = own[0]["steps"]
    if name != config.reference and reference_steps not in (None, steps) and steps not in shown:
      shown.add(steps)
      table += _summary_at(rows, config.reference, steps)
    table += summarize(own)
  return table


def _trajectories(rows: Sequence[Dict], config) -> Dict[str, List[Dict]]:
  """Per ``config.length_settings`` setting that ran: its summary at each evaluation."""
  out = {}
  for name in config.get("length_settings", (config.reference,)):
    own = [r for r in rows if r["setting"] == name]
    if not own:
      continue
    setting = setting_config(config, name)
    final = own[0]["steps"]
    steps = sorted({s for s in setting.eval_steps
                    if s < final and s % setting.steps_per_call == 0})
    table = []
    for step in steps:
      table += _summary_at(rows, name, step)
    out[name] = table + summarize(own)
  return out


def _grid(table: Sequence[Dict]) -> tuple:
  """The gains pivoted: ((setting, steps) per row, (function, size) per column, rows x
  columns array with NaN where there is no gain)."""
  cells = sorted({(t["function"], t["num_train"]) for t in table})
  rows = list(dict.fromkeys((t["setting"], t["steps"]) for t in table))
  gains = np.full((len(rows), len(cells)), np.nan)
  for t in table:
    if t["gain"] is not None:
      gains[rows.index((t["setting"], t["steps"])),
            cells.index((t["function"], t["num_train"]))] = t["gain"]
  return rows, cells, gains


def gain_table(table: Sequence[Dict]) -> List[str]:
  """One row per setting (and reference budget), one column per (function, size)."""
  rows, cells, gains = _grid(table)
  cell = lambda g: "" if np.isnan(g) else (f"**{g:.2f}**" if g >= 1.0 else f"{g:.2f}")
  lines = ["| setting | steps | " + " | ".join(f"{f} n={n}" for f, n in cells)
           + " | median | >= 10x |", "|---|---:|" + "---:|" * (len(cells) + 2)]
  for (setting, steps), row in zip(rows, gains):
    known = row[~np.isnan(row)]
    lines.append(f"| {setting} | {steps:,} | " + " | ".join(cell(g) for g in row)
                 + (f" | {np.median(known):.2f} | {int(np.sum(known >= 1.0))}/{known.size} |"
                    if known.size else " | | |"))
  return lines


def plot_gains(plt, table: Sequence[Dict], trajectories: Dict[str, List[Dict]], path: str) -> None:
  """Heat map of the gain per setting and cell; each length setting's gain against steps."""
  rows, cells, gains = _grid(table)
  labels = [setting if "@" in setting else f"{setting} @ {steps:,}" for setting, steps in rows]
  cells = [f"{f} n={n}" for f, n in cells]
  widths = (3,) + (2,) * len(trajectories)
  fig, axes = plt.subplots(1, len(widths), figsize=(9 + 6 * len(trajectories),
                                                    0.45 * len(labels) + 2.5),
                           gridspec_kw=dict(width_ratios=widths), squeeze=False)
  ax = axes[0][0]
  limit = max(1.0, float(np.nanmax(np.abs(gains)))) if np.isfinite(gains).any() else 1.0
  image = ax.imshow(gains, cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto")
  for (i, j), gain in np.ndenumerate(gains):
    if np.isfinite(gain):
      ax.text(j, i, f"{gain:.2f}", ha="center", va="center", fontsize=8,
              fontweight="bold" if gain >= 1.0 else "normal")
  ax.set_xticks(range(len(cells)), cells, rotation=30, ha="right", fontsize=8)
  ax.set_yticks(range(len(labels)), labels, fontsize=8)
  ax.set_title("gain: log10 test MSE, regular - Sobolev (bold: >= 10x)", fontsize=10)
  fig.colorbar(image, ax=ax, fraction=0.04)
  for ax_len, (name, trajectory) in zip(axes[0][1:], trajectories.items()):
    for k, cell in enumerate(sorted({(t["function"], t["num_train"]) for t in trajectory})):
      points = sorted((t["steps"], t["gain"]) for t in trajectory
                      if (t["function"], t["num_train"]) == cell and t["gain"] is not None)
      if points:
        ax_len.plot(*zip(*points), "o-" if cell[1] < 50 else "s--", ms=3, color=f"C{k // 2}",
                    label=f"{cell[0]} n={cell[1]}")
    ax_len.set_xscale("log")
    ax_len.axhline(1.0, color="k", lw=0.8, ls=":")
    ax_len.axhline(0.0, color="k", lw=0.5)
    ax_len.set_xlabel("training steps")
    ax_len.set_ylabel("gain (decades)")
    ax_len.set_title(f"training length: {name}", fontsize=10)
    ax_len.legend(fontsize=7, ncol=2)
    ax_len.grid(alpha=0.3)
  fig.tight_layout()
  files.save_figure_atomic(fig, path, dpi=110)
  plt.close(fig)


def _converged_cell(t: Dict, method: str) -> str:
  step, not_converged = t[f"converged_{method}"], t[f"not_converged_{method}"]
  text = "none" if step is None else f"{step:,}"
  return text + (f" ({not_converged} not)" if step is not None and not_converged else "")


def all_cells_table(table: Sequence[Dict]) -> List[str]:
  """Every cell of a summary: medians, the gain with its per-seed range, convergence."""
  fmt = lambda v: "" if v is None else f"{v:.2f}"
  lines = ["Per-seed gains: the smallest and largest over the seeds. Ratio: 10^gain. "
           f"Converged: the (lower) median step from which a run's test MSE stays within "
           f"{CONVERGED_DECADES} decade of its final value, over the runs that converged, and "
           "how many did not (the rest only at their last evaluation). Last change: runs whose "
           f"last evaluation improved / worsened by more than {CONVERGED_DECADES} decade.", "",
           "| setting | steps | function | n | pairs | regular | Sobolev | gain | per-seed gains "
           "| ratio | converged (regular / Sobolev) | last change: improving / worsening |",
           "|---|---:|---|---:|---:|---:|---:|---:|---|---:|---|---|"]
  for t in table:
    conv = ("" if t["not_converged_regular"] is None else
            f"{_converged_cell(t, 'regular')} / {_converged_cell(t, 'sobolev')}")
    ratio = "" if t["gain"] is None else f"{10**t['gain']:.3g}x"
    spread = "" if t["gain"] is None else f"{t['gain_min']:.2f} to {t['gain_max']:.2f}"
    changes = ("" if t["improving"] is None else f"{t['improving']} / {t['worsening']}"
               + (f" ({t['diverged']} diverged)" if t["diverged"] else ""))
    lines.append(f"| {t['setting']} | {t['steps']:,} | {t['function']} | {t['num_train']} | "
                 f"{t['pairs']} | {fmt(t['regular'])} | {fmt(t['sobolev'])} | "
                 f"**{fmt(t['gain'])}** | {spread} | {ratio} | {conv} | {changes} |")
  return lines


def check_report_destination(output_dir: str, stem: str, title: str,
                             plots: Sequence[str] = ()) -> None:
  """Refuses, before any work, a file at one of the report's names (``<stem>.md``,
  ``.csv``, ``_curves.csv``, ``.png``, and the PNGs ``plots``) that such a report
  did not write: ``<stem>.md`` must start with ``title``, the CSV files with their
  header, the plots as PNGs."""
  from sobolev_tf import checks  # pylint: disable=g-import-not-at-top
  starts = {f"{stem}.md": title, f"{stem}.csv": ",".join(CSV_COLUMNS),
            f"{stem}_curves.csv": ",".join(CURVE_COLUMNS), f"{stem}.png": files.PNG_START,
            **{name: files.PNG_START for name in plots}}
  for name, first in starts.items():
    checks.check_output_file(os.path.join(output_dir, name), "report", starts_with=first)


def write_run_csvs(rows: Sequence[Dict], output_dir: str, stem: str) -> None:
  """``<stem>.csv`` (one row per run) and ``<stem>_curves.csv`` (its evaluations)."""
  files.write_csv(os.path.join(output_dir, f"{stem}.csv"),
                  [{c: r[c] for c in CSV_COLUMNS} for r in rows], CSV_COLUMNS)
  files.write_csv(os.path.join(output_dir, f"{stem}_curves.csv"),
                  [dict({k: r[k] for k in _RUN_KEYS}, step=step, test_mse=mse, test_grad_mse=grad)
                   for r in rows for step, mse, grad in r["curve"]], CURVE_COLUMNS)


def write_report(rows: Sequence[Dict], config, output_dir: str, command: str) -> str:
  """sensitivity.csv (one row per run), sensitivity_curves.csv, .md and .png; returns the md."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  write_run_csvs(rows, output_dir, "sensitivity")
  table = _comparison(rows, config)
  lines = [TITLE, "",
           f"Command: `{command}`  ",
           "Config: `configs/regression_sensitivity.py` (its docstring has the design). "
           "Regular, Sobolev: median over seeds of log10 test MSE (original units). Gain: the "
           "median over seeds of each seed's regular - Sobolev difference, in decades (1.00 = "
           "10x); the two medians need not subtract to it. Per run: `sensitivity.csv`; "
           "learning curves: `sensitivity_curves.csv`; what the numbers say: `discussion.md`.",
           ""]
  missing = [n for n in config.settings if not any(r["setting"] == n for r in rows)]
  if missing:
    lines += [f"Not run yet (left out below): {', '.join(missing)}.", ""]
  own = [t for t in table if t["setting"] in config.settings and t["gain"] is not None]
  big = [t for t in own if t["gain"] >= 1.0]
  paper = [t for t in own if t["setting"] == config.paper_setting]
  cell = lambda t: f"{t['function']} n={t['num_train']} ({t['gain']:.2f})"
  if paper:
    tenfold = [t for t in paper if t["gain"] >= 1]
    paper_line = (f"gains {', '.join(cell(t) for t in paper)}; "
                  + (f"it reaches 10x in {len(tenfold)} of {len(paper)} cells "
                     f"({', '.join(cell(t) for t in tenfold)})." if tenfold else
                     "it does not reach 10x in any cell."))
  else:
    paper_line = "not run."
  best = max(own, key=lambda t: t["gain"]) if own else None
  hundredfold = [t for t in own if t["gain"] >= 2.0]
  lines += ["## Short answer", "", SCOPE, "",
            "Cells that reach 10x (gain >= 1 decade): "
            + (", ".join(f"{t['setting']} {cell(t)}" for t in big) or "none") + ".", "",
            "Cells that reach 100x (orders of magnitude, gain >= 2 decades): "
            + (", ".join(f"{t['setting']} {cell(t)}" for t in hundredfold) or "none")
            + (f"; the largest gain is {best['setting']} {cell(best)}." if best else "."), "",
            f"The setting of the paper's text (`{config.paper_setting}`): {paper_line}", "",
            f"Each setting against `{config.reference}` at the same budget (median over "
            "cells of the change in gain, decades):", ""]
  for name in config.settings:
    mine = {(t["function"], t["num_train"]): t["gain"] for t in own if t["setting"] == name}
    if name == config.reference or not mine:
      continue
    steps = next(t["steps"] for t in own if t["setting"] == name)
    label = (config.reference if steps == next((t["steps"] for t in own
                                                if t["setting"] == config.reference), None)
             else f"{config.reference} @ {steps:,}")
    base = {(t["function"], t["num_train"]): t["gain"] for t in table if t["setting"] == label}
    deltas = [mine[k] - base[k] for k in mine if k in base and base[k] is not None]
    if deltas:
      lines.append(f"- {name} ({steps:,} steps): {np.median(deltas):+.2f} "
                   f"(range {min(deltas):+.2f} to {max(deltas):+.2f})")
  lines += ["", "## Gain per setting", "",
            "Gain in decades per function and number of training points; bold: at least 10x.",
            ""]
  lines += gain_table(table)
  trajectories = _trajectories(rows, config)
  for name, trajectory in trajectories.items():
    lines += ["", f"Training length: `{name}` at each of its evaluations.", ""]
    lines += gain_table(trajectory)
  lines += ["", "## All cells", ""] + all_cells_table(table)
  lines.append("")
  text = "\n".join(lines)
  files.write_text_atomic(os.path.join(output_dir, "sensitivity.md"), text)
  plot_gains(plt, table, trajectories, os.path.join(output_dir, "sensitivity.png"))
  return text


def train_and_evaluate(config, workdir: str, output_dir: str, command: str) -> str:
  """Runs the study (resumably, in ``workdir``) and writes the report to ``output_dir``."""
  _check_settings(config)
  from sobolev_tf import checks  # pylint: disable=g-import-not-at-top
  checks.check_writable_directory(workdir, "checkpoints")
  checks.check_writable_directory(output_dir, "report")
  check_report_destination(output_dir, "sensitivity", TITLE)
  rows = run_study(config, workdir)
  return write_report(rows, config, output_dir, command)

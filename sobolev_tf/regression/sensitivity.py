"""The Figure 2 sensitivity study: which choices decide the size of Sobolev training's gain.

``configs/regression_sensitivity.py`` lists the settings (overrides of one base
regression config). Each trains with ``experiment.run_grid`` in its own workdir;
the report compares regular and Sobolev training per setting, function and size
by the median over seeds of log10 test MSE, and their difference: the gain in
decades (1 = 10x lower test error with Sobolev training). A run converged at the
first evaluation from which its test MSE stays within ``CONVERGED_DECADES`` of its
final value.
"""

from __future__ import annotations

import copy
import os
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from sobolev_tf import files
from sobolev_tf.regression import experiment

__all__ = ["setting_config", "run_study", "converged_step", "summarize", "at_budget",
           "write_report", "train_and_evaluate", "CSV_COLUMNS", "CONVERGED_DECADES"]

CONVERGED_DECADES = 0.1
CSV_COLUMNS = ("setting",) + experiment.CSV_COLUMNS + ("converged_step", "still_improving")


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
  """(first step from which log10 test MSE stays within CONVERGED_DECADES of the final,
  whether the last evaluation still improved on the one before by more than that)."""
  points = [(step, mse) for step, mse, _ in curve]
  target = np.log10(final_mse)
  step = points[-1][0] if points else 0
  for s, mse in reversed(points):
    if abs(np.log10(mse) - target) > CONVERGED_DECADES:
      break
    step = s
  improving = len(points) >= 2 and np.log10(points[-2][1]) - target > CONVERGED_DECADES
  return step, bool(improving)


def _check_settings(config) -> None:
  for name in config.settings:
    setting = setting_config(config, name)
    experiment.check_grid(experiment.grid_runs(setting), setting)
  if config.reference not in config.settings:
    raise ValueError(f"config.reference={config.reference!r} is not a setting.")
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
  rows = []
  for name in config.settings:
    setting = setting_config(config, name)
    (log or print)(f"[sensitivity] {name}: {setting.num_steps:,} steps")
    for r in experiment.run_grid(experiment.grid_runs(setting), setting,
                                 os.path.join(workdir, name), log):
      step, improving = converged_step(r["curve"], r["test_mse"])
      rows.append(dict(r, setting=name, converged_step=step, still_improving=improving))
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
                    converged_step=None, still_improving=None))
  return out


def _paired_gain(by_method: Dict[str, List[Dict]]) -> float:
  regular = {r["seed"]: np.log10(r["test_mse"]) for r in by_method["regular"]}
  return float(np.median([regular[r["seed"]] - np.log10(r["test_mse"])
                          for r in by_method["sobolev"] if r["seed"] in regular]))


def summarize(rows: Sequence[Dict]) -> List[Dict]:
  """Per (setting, function, size): median log10 test MSE of both methods, and the gain:
  the median over seeds of each seed's log10 MSE difference (same data and initialisation)."""
  cells = {}
  for r in rows:
    cells.setdefault((r["setting"], r["function"], r["num_train"], r["steps"]), {}).setdefault(
        r["method"], []).append(r)
  out = []
  for (setting, function, num_train, steps), by_method in cells.items():
    med = {m: float(np.median(np.log10([r["test_mse"] for r in rs])))
           for m, rs in by_method.items()}
    known = all(r.get("converged_step") is not None for rs in by_method.values() for r in rs)
    conv = {m: int(np.median([r["converged_step"] for r in rs])) if known else None
            for m, rs in by_method.items()}
    improving = (sum(bool(r["still_improving"]) for rs in by_method.values() for r in rs)
                 if known else None)
    out.append(dict(setting=setting, function=function, num_train=num_train, steps=steps,
                    seeds=len(by_method.get("sobolev", [])),
                    regular=med.get("regular"), sobolev=med.get("sobolev"),
                    gain=_paired_gain(by_method) if len(med) == 2 else None,
                    converged_regular=conv.get("regular"), converged_sobolev=conv.get("sobolev"),
                    still_improving=improving))
  return out


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
      table += [dict(t, setting=f"{config.reference} @ {steps:,}")
                for t in summarize(at_budget(rows, config.reference, steps))]
    table += summarize(own)
  return table


def _trajectory(rows: Sequence[Dict], config) -> List[Dict]:
  """The reference's summary at each of its evaluation steps (the training-length axis)."""
  reference = [r for r in rows if r["setting"] == config.reference]
  if not reference:
    return []
  final = reference[0]["steps"]
  steps = sorted({s for s in setting_config(config, config.reference).eval_steps if s < final})
  table = []
  for step in steps:
    table += [dict(t, setting=f"{config.reference} @ {step:,}")
              for t in summarize(at_budget(rows, config.reference, step))]
  return table + summarize(reference)


def _gain_table(table: Sequence[Dict]) -> List[str]:
  """One row per setting (and reference budget), one column per (function, size)."""
  cells = sorted({(t["function"], t["num_train"]) for t in table})
  rows: Dict[tuple, Dict] = {}
  for t in table:
    rows.setdefault((t["setting"], t["steps"]), {})[(t["function"], t["num_train"])] = t["gain"]
  cell = lambda g: "" if g is None else (f"**{g:.2f}**" if g >= 1.0 else f"{g:.2f}")
  lines = ["| setting | steps | " + " | ".join(f"{f} n={n}" for f, n in cells)
           + " | median | >= 10x |", "|---|---:|" + "---:|" * (len(cells) + 2)]
  for (setting, steps), gains in rows.items():
    known = [g for g in gains.values() if g is not None]
    lines.append(f"| {setting} | {steps:,} | " + " | ".join(cell(gains.get(c)) for c in cells)
                 + f" | {np.median(known):.2f} | {sum(g >= 1.0 for g in known)}/{len(known)} |"
                 if known else f"| {setting} | {steps:,} | " + " | " * len(cells) + " | |")
  return lines


def _grid(table: Sequence[Dict]) -> tuple:
  """(row labels, cell labels, gains as a rows x cells array with NaN where missing)."""
  cells = sorted({(t["function"], t["num_train"]) for t in table})
  label = lambda t: t["setting"] if "@" in t["setting"] else f"{t['setting']} @ {t['steps']:,}"
  labels = list(dict.fromkeys(label(t) for t in table))
  gains = np.full((len(labels), len(cells)), np.nan)
  for t in table:
    if t["gain"] is not None:
      gains[labels.index(label(t)), cells.index((t["function"], t["num_train"]))] = t["gain"]
  return labels, [f"{f} n={n}" for f, n in cells], gains


def _plot(plt, table: Sequence[Dict], trajectory: Sequence[Dict], path: str) -> None:
  """Heat map of the gain per setting and cell; the reference's gain against training length."""
  labels, cells, gains = _grid(table)
  fig, (ax, ax_len) = plt.subplots(1, 2, figsize=(15, 0.45 * len(labels) + 2.5),
                                   gridspec_kw=dict(width_ratios=(3, 2)))
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
  if trajectory:
    for k, cell in enumerate(sorted({(t["function"], t["num_train"]) for t in trajectory})):
      points = sorted((t["steps"], t["gain"]) for t in trajectory
                      if (t["function"], t["num_train"]) == cell and t["gain"] is not None)
      ax_len.plot(*zip(*points), "o-" if cell[1] < 50 else "s--", ms=3, color=f"C{k // 2}",
                  label=f"{cell[0]} n={cell[1]}")
    ax_len.set_xscale("log")
    ax_len.axhline(1.0, color="k", lw=0.8, ls=":")
    ax_len.axhline(0.0, color="k", lw=0.5)
    ax_len.set_xlabel("training steps")
    ax_len.set_ylabel("gain (decades)")
    ax_len.set_title(f"training length: {trajectory[-1]['setting']}", fontsize=10)
    ax_len.legend(fontsize=7, ncol=2)
    ax_len.grid(alpha=0.3)
  else:
    ax_len.set_axis_off()
  fig.tight_layout()
  files.save_figure_atomic(fig, path, dpi=110)
  plt.close(fig)


def write_report(rows: Sequence[Dict], config, output_dir: str, command: str) -> str:
  """sensitivity.csv (one row per run), sensitivity_curves.csv, .md and .png; returns the md."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  files.write_csv(os.path.join(output_dir, "sensitivity.csv"),
                  [{c: r[c] for c in CSV_COLUMNS} for r in rows], CSV_COLUMNS)
  keys = ("setting", "function", "num_train", "method", "seed")
  files.write_csv(os.path.join(output_dir, "sensitivity_curves.csv"),
                  [dict({k: r[k] for k in keys}, step=step, test_mse=mse, test_grad_mse=grad)
                   for r in rows for step, mse, grad in r["curve"]],
                  keys + ("step", "test_mse", "test_grad_mse"))
  table = _comparison(rows, config)
  fmt = lambda v: "" if v is None else f"{v:.2f}"
  lines = ["# Figure 2 sensitivity: when does Sobolev training give orders of magnitude?", "",
           f"Command: `{command}`  ",
           "Config: `configs/regression_sensitivity.py` (its docstring has the design). "
           "Median over seeds of log10 test MSE (original units); gain = regular - Sobolev in "
           f"decades (1.00 = 10x), the median over seeds of each seed's difference. Converged: "
           f"median first evaluation step from which the test MSE stays within "
           f"{CONVERGED_DECADES} decade of its final value; improving: runs whose last "
           "evaluation still improved by more than that. Per run: `sensitivity.csv`; learning "
           "curves: `sensitivity_curves.csv`; what the numbers say: `discussion.md`.", ""]
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
  lines += ["## Short answer", "",
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
  lines += _gain_table(table)
  trajectory = _trajectory(rows, config)
  if trajectory:
    lines += ["", f"Training length: `{config.reference}` at each of its evaluations.", ""]
    lines += _gain_table(trajectory)
  lines += ["", "## All cells", "",
            "Ratio: 10^gain, the median over seeds of regular / Sobolev test MSE.", "",
            "| setting | steps | function | n | seeds | regular | Sobolev | gain | ratio | "
            "converged (regular / Sobolev) | improving |",
            "|---|---:|---|---:|---:|---:|---:|---:|---:|---|---:|"]
  for t in table:
    conv = (f"{t['converged_regular']:,} / {t['converged_sobolev']:,}"
            if t["converged_regular"] is not None else "")
    ratio = "" if t["gain"] is None else f"{10**t['gain']:.3g}x"
    lines.append(f"| {t['setting']} | {t['steps']:,} | {t['function']} | {t['num_train']} | "
                 f"{t['seeds']} | {fmt(t['regular'])} | {fmt(t['sobolev'])} | "
                 f"**{fmt(t['gain'])}** | {ratio} | {conv} | "
                 f"{'' if t['still_improving'] is None else t['still_improving']} |")
  lines.append("")
  text = "\n".join(lines)
  files.write_text_atomic(os.path.join(output_dir, "sensitivity.md"), text)
  _plot(plt, table, trajectory, os.path.join(output_dir, "sensitivity.png"))
  return text


def train_and_evaluate(config, workdir: str, output_dir: str, command: str) -> str:
  """Runs the study (resumably, in ``workdir``) and writes the report to ``output_dir``."""
  _check_settings(config)
  from sobolev_tf import checks  # pylint: disable=g-import-not-at-top
  checks.check_writable_directory(workdir, "checkpoints")
  checks.check_writable_directory(output_dir, "report")
  rows = run_study(config, workdir)
  return write_report(rows, config, output_dir, command)

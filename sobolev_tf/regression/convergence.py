"""Figure 2 trained to convergence: the report of ``configs/regression_convergence.py``.

Settings run one after the other through the sensitivity study's machinery
(``sensitivity.run_settings``), each a grid of regular and Sobolev runs. The
report answers three questions:

* Converged? A setting's budget pair (the same setting at twice the steps) changes
  each cell's median log10 test MSE by little (``CONVERGED_DECADES``); the learning
  curves say the same per run.
* Where is the gain? The gain of a cell is the median over seeds of the paired
  difference of log10 test MSE, regular minus Sobolev (``sensitivity.summarize``).
* Which choice decides it? Each factor setting against the setting it changes:
  the change in every seed's gain (same data and initial weights), its median
  over cells, and a Wilcoxon signed-rank test over all (cell, seed) pairs.
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence

import numpy as np
from scipy import stats

from sobolev_tf import checks
from sobolev_tf import files
from sobolev_tf.regression import experiment
from sobolev_tf.regression import sensitivity

__all__ = ["check_config", "budget_changes", "factor_effect", "derivative_rows", "best_step_rows",
           "write_report", "plot_budget_curves", "train_and_evaluate", "CONVERGED_DECADES",
           "TITLE", "CURVES_PLOT"]

CONVERGED_DECADES = sensitivity.CONVERGED_DECADES
TITLE = "# Figure 2 trained to convergence"  # convergence.md's first line.
CURVES_PLOT = "convergence_budgets.png"  # The learning curves of the budget pairs.


def check_config(config) -> None:
  """Every setting's grid, budget pair and factor, before the first trains."""
  if sorted(config.order) != sorted(config.settings):
    raise ValueError("config.order must list every setting once; it has "
                     f"{sorted(config.order)}, the settings are {sorted(config.settings)}.")
  for name in config.settings:
    setting = sensitivity.setting_config(config, name)
    experiment.check_grid(experiment.grid_runs(setting), setting)
  for first, second in config.budget_pairs:
    for name in (first, second):
      if name not in config.settings:
        raise ValueError(f"config.budget_pairs names {name!r}, which is not a setting.")
    a, b = (sensitivity.setting_config(config, n) for n in (first, second))
    if b.num_steps <= a.num_steps:
      raise ValueError(f"Budget pair ({first}, {second}): the second must train longer.")
  for name, base in config.factors.items():
    for n in (name, base):
      if n not in config.settings:
        raise ValueError(f"config.factors names {n!r}, which is not a setting.")


def _by_seed(rows: Sequence[Dict], setting: str) -> Dict[tuple, Dict[int, Dict[str, float]]]:
  """``{(function, n): {seed: {method: log10 test MSE}}}`` of the finite runs of ``setting``."""
  out: Dict[tuple, Dict[int, Dict[str, float]]] = {}
  for r in rows:
    if r["setting"] == setting and np.isfinite(r["test_mse"]) and r["test_mse"] > 0:
      out.setdefault((r["function"], r["num_train"]), {}).setdefault(r["seed"], {})[
          r["method"]] = float(np.log10(r["test_mse"]))
  return out


def budget_changes(rows: Sequence[Dict], first: str, second: str) -> List[Dict]:
  """Per cell and method: median log10 test MSE at both budgets and the change."""
  a, b = _by_seed(rows, first), _by_seed(rows, second)
  out = []
  for cell in sorted(set(a) & set(b)):
    for method in ("regular", "sobolev"):
      before = [v[method] for v in a[cell].values() if method in v]
      after = [v[method] for v in b[cell].values() if method in v]
      if before and after:
        out.append(dict(function=cell[0], num_train=cell[1], method=method,
                        first=float(np.median(before)), second=float(np.median(after)),
                        change=float(np.median(after) - np.median(before))))
  return out


def factor_effect(rows: Sequence[Dict], setting: str, base: str) -> Dict:
  """How ``setting`` changes the gain against ``base``, paired by cell and seed.

  Returns the per-cell median changes (decades), their median over cells, the
  cells improved, and a two-sided Wilcoxon signed-rank p-value over all pairs;
  also the change in each method's median log10 test MSE.
  """
  a, b = _by_seed(rows, base), _by_seed(rows, setting)
  deltas, per_cell = [], {}
  method_changes = {"regular": [], "sobolev": []}
  for cell in sorted(set(a) & set(b)):
    cell_deltas = []
    for seed in sorted(set(a[cell]) & set(b[cell])):
      x, y = a[cell][seed], b[cell][seed]
      if {"regular", "sobolev"} <= set(x) and {"regular", "sobolev"} <= set(y):
        cell_deltas.append((y["regular"] - y["sobolev"]) - (x["regular"] - x["sobolev"]))
      for method in method_changes:
        if method in x and method in y:
          method_changes[method].append(y[method] - x[method])
    if cell_deltas:
      per_cell[cell] = float(np.median(cell_deltas))
      deltas += cell_deltas
  p = (float(stats.wilcoxon(deltas).pvalue) if len(deltas) >= 6 and np.any(np.asarray(deltas))
       else float("nan"))
  changes = list(per_cell.values())
  return dict(setting=setting, base=base, pairs=len(deltas), per_cell=per_cell,
              median=float(np.median(changes)) if changes else float("nan"),
              improved=sum(c > 0 for c in changes), cells=len(changes), p_value=p,
              regular=float(np.median(method_changes["regular"]))
              if method_changes["regular"] else float("nan"),
              sobolev=float(np.median(method_changes["sobolev"]))
              if method_changes["sobolev"] else float("nan"))


def derivative_rows(rows: Sequence[Dict]) -> List[Dict]:
  """The runs with their derivative test MSE as ``test_mse``: the same summaries, on gradients."""
  # A run's convergence step and last change are those of its value error: not kept.
  return [dict(r, test_mse=r["test_grad_mse"], converged_step=None, last_change=None)
          for r in rows if r.get("test_grad_mse") is not None]


def best_step_rows(rows: Sequence[Dict]) -> List[Dict]:
  """The runs with their lowest evaluated test MSE as ``test_mse``: each run stopped at its
  best evaluation, chosen on the test set (an oracle, so an optimistic bound on early
  stopping)."""
  out = []
  for r in rows:
    evaluated = [mse for _, mse, _ in r.get("curve") or ()] + [r["test_mse"]]
    finite = [m for m in evaluated if np.isfinite(m)]
    out.append(dict(r, test_mse=min(finite) if finite else r["test_mse"],
                    converged_step=None, last_change=None))
  return out


def _plain_answer(table: Sequence[Dict], config) -> List[str]:
  """When the gain reaches orders of magnitude: the cells at 100x, the settings whose median
  reaches 10x, and the best setting per grid of sizes."""
  own = [t for t in table if t["gain"] is not None]
  hundred = [f"`{t['setting']}` {t['function']} n={t['num_train']} ({t['gain']:.2f})"
             for t in own if t["gain"] >= 2]
  medians = {}
  for name in config.order:
    gains = [t["gain"] for t in own if t["setting"] == name]
    if gains:
      sizes = tuple(sorted({t["num_train"] for t in own if t["setting"] == name}))
      medians[name] = (sizes, float(np.median(gains)))
  lines = ["- Cells at 100x or more (a median gain of at least 2 decades): "
           + (", ".join(hundred) or "none") + ".",
           "- Settings whose median gain over their cells reaches 10x: "
           + (", ".join(f"`{n}` ({m:.2f})" for n, (_, m) in medians.items() if m >= 1)
              or "none") + "."]
  for sizes in sorted({s for s, _ in medians.values()}):
    best = max((n for n in medians if medians[n][0] == sizes), key=lambda n: medians[n][1])
    worst = min((n for n in medians if medians[n][0] == sizes), key=lambda n: medians[n][1])
    lines.append(f"- At {', '.join(f'{n:,}' for n in sizes)} points: the largest median gain is "
                 f"`{best}` ({medians[best][1]:.2f} decades), the smallest `{worst}` "
                 f"({medians[worst][1]:.2f}).")
  return lines


def _short_answer(table: Sequence[Dict], derivative_table: Sequence[Dict],
                  best_table: Sequence[Dict], config) -> List[str]:
  lines = []
  for name in config.order:
    own = [t for t in table if t["setting"] == name and t["gain"] is not None]
    if not own:
      continue
    gains = np.array([t["gain"] for t in own])
    hundred = [f"{t['function']} n={t['num_train']}" for t in own if t["gain"] >= 2]
    derivative = [t["gain"] for t in derivative_table
                  if t["setting"] == name and t["gain"] is not None]
    best = np.array([t["gain"] for t in best_table
                     if t["setting"] == name and t["gain"] is not None])
    lines.append(f"- `{name}`: median gain {np.median(gains):.2f} decades over {len(gains)} "
                 f"cells; >= 10x in {int(np.sum(gains >= 1))}, >= 100x in {len(hundred)}"
                 + (f" ({', '.join(hundred)})" if hundred else "")
                 + (f"; derivatives: median gain {np.median(derivative):.2f}, >= 10x in "
                    f"{int(np.sum(np.asarray(derivative) >= 1))}" if derivative else "")
                 + (f"; at each run's best evaluation: median gain {np.median(best):.2f}, "
                    f">= 10x in {int(np.sum(best >= 1))}" if best.size else "") + ".")
  return lines


def write_report(rows: Sequence[Dict], config, output_dir: str, command: str) -> str:
  """``convergence.{md,csv,png}`` and ``convergence_curves.csv``; returns the Markdown."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  sensitivity.write_run_csvs(rows, output_dir, "convergence")
  table = sensitivity.summarize(rows)
  order = {name: i for i, name in enumerate(config.order)}
  derivative_table = sensitivity.summarize(derivative_rows(rows))
  best_table = sensitivity.summarize(best_step_rows(rows))
  for t in (table, derivative_table, best_table):
    t.sort(key=lambda t: (order.get(t["setting"], len(order)), t["function"], t["num_train"]))
  missing = [n for n in config.order if not any(r["setting"] == n for r in rows)]
  lines = [TITLE, "",
           f"Command: `{command}`  ",
           "Config: `configs/regression_convergence.py` (its docstring has the design). Gain: "
           "the median over seeds of each seed's log10 test MSE, regular minus Sobolev "
           "(original units; 1.00 = 10x, 2.00 = 100x). Per run: `convergence.csv`; learning "
           "curves: `convergence_curves.csv`; what the numbers say: `discussion.md`.", ""]
  if missing:
    lines += [f"Not run yet (left out below): {', '.join(missing)}.", ""]
  lines += ["## Short answer", ""] + _plain_answer(table, config) + [""]
  lines += ["## Gain per setting", "",
            "Gains on the test MSE of values at the last step; of derivatives (the test MSE of "
            "the gradient, in the original units); and of values at each run's best "
            "evaluation, chosen on the test set: an oracle, an optimistic bound on what early "
            "stopping on a validation set could keep.", ""]
  lines += _short_answer(table, derivative_table, best_table, config) + [""]
  lines += ["## Convergence: the same setting at twice the budget", "",
            f"Change of each cell's median log10 test MSE from the first budget to the second "
            f"(decades); a cell is converged when it changes by at most {CONVERGED_DECADES}. "
            f"Negative: still improving. The learning curves: `{CURVES_PLOT}`; each run's "
            "convergence step: the last table.", "",
            "| budget pair | method | cells | converged | median change | largest changes |",
            "|---|---|---:|---:|---:|---|"]
  for first, second in config.budget_pairs:
    changes = budget_changes(rows, first, second)
    for method in ("regular", "sobolev"):
      mine = [c for c in changes if c["method"] == method]
      if not mine:
        continue
      worst = sorted(mine, key=lambda c: -abs(c["change"]))[:3]
      lines.append(f"| {first} -> {second} | {method} | {len(mine)} | "
                   f"{sum(abs(c['change']) <= CONVERGED_DECADES for c in mine)} | "
                   f"{np.median([c['change'] for c in mine]):+.2f} | "
                   + ", ".join(f"{c['function']} n={c['num_train']} {c['change']:+.2f}"
                               for c in worst) + " |")
  lines += ["", "## Which choice decides the gain", "",
            "Each setting against the one it changes, paired by cell and seed (same data and "
            "initial weights). Change in gain: median over cells of the per-cell median "
            "change (decades); p: two-sided Wilcoxon signed-rank test over all (cell, seed) "
            "pairs. Regular, Sobolev: median change of each method's log10 test MSE "
            "(negative: lower error).", "",
            "| setting | against | pairs | change in gain | cells improved | p | regular | "
            "Sobolev |", "|---|---|---:|---:|---:|---:|---:|---:|"]
  for name, base in config.factors.items():
    effect = factor_effect(rows, name, base)
    if not effect["pairs"]:
      continue
    lines.append(f"| {name} | {base} | {effect['pairs']} | {effect['median']:+.2f} | "
                 f"{effect['improved']}/{effect['cells']} | {effect['p_value']:.2g} | "
                 f"{effect['regular']:+.2f} | {effect['sobolev']:+.2f} |")
  lines += ["", "## Gain per cell", "",
            "Gain in decades per function and number of training points; bold: at least 10x.",
            ""] + sensitivity.gain_table(table)
  lines += ["", "## Derivative gain per cell", "",
            "The same on the derivatives' test MSE: log10, regular minus Sobolev, median over "
            "seeds; bold: at least 10x.", ""] + sensitivity.gain_table(derivative_table)
  lines += ["", "## All cells", ""] + sensitivity.all_cells_table(table) + [""]
  text = "\n".join(lines)
  files.write_text_atomic(os.path.join(output_dir, "convergence.md"), text)
  sensitivity.plot_gains(plt, table, {}, os.path.join(output_dir, "convergence.png"))
  plot_budget_curves(plt, rows, config, os.path.join(output_dir, CURVES_PLOT))
  return text


def plot_budget_curves(plt, rows: Sequence[Dict], config, path: str) -> None:
  """The evidence of convergence: per function and size, the median learning curve of
  each budget pair's longer setting (regular dashed, Sobolev solid), and the shorter
  setting's median final error (a marker at its last step)."""
  pairs = [p for p in config.budget_pairs if any(r["setting"] == p[1] for r in rows)]
  cells = sorted({(r["function"], r["num_train"]) for r in rows
                  if any(r["setting"] in p for p in pairs)})
  if not cells:
    return
  functions = sorted({f for f, _ in cells})
  sizes = sorted({n for _, n in cells})
  fig, axes = plt.subplots(len(sizes), len(functions), squeeze=False,
                           figsize=(2.6 * len(functions), 2.4 * len(sizes)))
  colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
  for (first, second), color in zip(pairs, colors):
    for f, n in cells:
      ax = axes[sizes.index(n)][functions.index(f)]
      for method, style in (("regular", "--"), ("sobolev", "-")):
        curves = [r["curve"] for r in rows if (r["setting"], r["function"], r["num_train"],
                                               r["method"]) == (second, f, n, method)]
        if curves and all(len(c) == len(curves[0]) for c in curves):
          steps = [c[0] for c in curves[0]]
          ax.plot(steps, np.median([[np.log10(c[1]) for c in cur] for cur in curves], axis=0),
                  style, color=color, lw=1.2, label=f"{second} {method}")
        finals = [r for r in rows if (r["setting"], r["function"], r["num_train"],
                                      r["method"]) == (first, f, n, method)]
        if finals:
          ax.plot([finals[0]["steps"]], [np.median(np.log10([r["test_mse"] for r in finals]))],
                  "o" if method == "sobolev" else "x", color=color, ms=4)
      ax.set_xscale("log")
      ax.set_title(f"{f} n={n}", fontsize=8)
      ax.tick_params(labelsize=7)
  for row in axes:
    row[0].set_ylabel("median log10 test MSE", fontsize=7)
  legend = {}
  for ax in axes.ravel():
    for handle, label in zip(*ax.get_legend_handles_labels()):
      legend.setdefault(label, handle)
  fig.legend(list(legend.values()), list(legend), loc="lower center", ncol=5, fontsize=7)
  fig.suptitle("Learning curves of the longer budget (lines) and the shorter budget's final "
               "error (markers: o Sobolev, x regular)", fontsize=9)
  fig.tight_layout(rect=(0, 0.08, 1, 0.97))
  files.save_figure_atomic(fig, path, dpi=100)
  plt.close(fig)


def train_and_evaluate(config, workdir: str, output_dir: str, command: str,
                       settings: Optional[Sequence[str]] = None) -> str:
  """Runs the study (resumably, in ``workdir``) and writes its report to ``output_dir``.

  ``settings``: a part of the study (default: all of ``config.order``, in that order);
  the report lists the rest as not run.
  """
  check_config(config)
  names = list(config.order) if settings is None else list(settings)
  unknown = sorted(set(names) - set(config.order))
  if unknown or not names or len(set(names)) != len(names):
    raise ValueError(f"settings must name distinct settings of the config, {list(config.order)}; "
                     f"got {names}.")
  checks.check_writable_directory(workdir, "checkpoints")
  checks.check_writable_directory(output_dir, "report")
  sensitivity.check_report_destination(output_dir, "convergence", TITLE, plots=(CURVES_PLOT,))
  rows = sensitivity.run_settings(config, workdir, names=[n for n in config.order if n in names])
  return write_report(rows, config, output_dir, command)

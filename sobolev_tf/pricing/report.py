"""Reports of the pricing experiment: the published table beside ours, the learning curve,
the dimension study, and plots in Huge & Savine's style."""

from __future__ import annotations

import collections
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from sobolev_tf import files

__all__ = ["PUBLISHED", "table_lines", "curve_lines", "dimension_lines", "plot_predictions",
           "plot_curves", "noise_floor"]

# Huge & Savine's notebook outputs (DifferentialML.ipynb, one run each, seeds unknown):
# RMSE x 100 of (standard value, differential value, standard delta_0, differential delta_0).
PUBLISHED: Dict[Tuple[str, int, int], Tuple[float, float, float, float]] = {
    ("black_scholes", 1, 1024): (0.59, 0.35, 3.89, 2.47),
    ("black_scholes", 1, 8192): (0.13, 0.13, 2.18, 2.13),
    ("bachelier", 1, 1024): (0.17, 0.11, 0.65, 0.54),
    ("bachelier", 1, 8192): (0.07, 0.06, 0.77, 0.28),
    ("bachelier", 7, 4096): (0.77, 0.24, 0.70, 0.30),
    ("bachelier", 7, 8192): (0.50, 0.14, 0.40, 0.10),
    ("bachelier", 7, 16384): (0.21, 0.11, 0.30, 0.09),
    ("bachelier", 20, 4096): (2.02, 0.23, 1.29, 0.16),
    ("bachelier", 20, 8192): (1.19, 0.13, 0.70, 0.07),
    ("bachelier", 20, 16384): (0.62, 0.10, 0.41, 0.05),
}
_NAMES = {"black_scholes": "Black-Scholes", "bachelier": "Bachelier"}


def _group(rows: Sequence[dict]) -> Dict[tuple, Dict[str, Dict[int, dict]]]:
  """``{(model, n, m): {method: {seed: row}}}``."""
  out = collections.defaultdict(lambda: collections.defaultdict(dict))
  for r in rows:
    out[(r["model"], r["n"], r["m"])][r["method"]][r["seed"]] = r
  return out


def _spread(values: Sequence[float]) -> str:
  v = np.asarray(values)
  return f"{np.median(v):.3f} [{v.min():.3f}-{v.max():.3f}]"


def _paired(by_method: Dict[str, Dict[int, dict]], key: str, better: str,
            worse: str) -> Tuple[int, int, float]:
  """Seeds where ``better`` has the lower error, seeds compared, median error ratio worse/better."""
  seeds = sorted(set(by_method.get(better, {})) & set(by_method.get(worse, {})))
  wins = sum(by_method[better][s][key] < by_method[worse][s][key] for s in seeds)
  ratios = [by_method[worse][s][key] / by_method[better][s][key] for s in seeds
            if by_method[better][s][key] > 0]
  return wins, len(seeds), float(np.median(ratios)) if ratios else float("nan")


def table_lines(rows: Sequence[dict]) -> Tuple[List[str], List[str], List[str]]:
  """The published table beside ours (median [min-max] over seeds) and the checks it needs.

  Returns ``(lines, findings, above)``: findings name every published figure below
  our seeds' range (it lies neither within it nor above our median) and every cell
  where their ordering of standard and differential is not our median's; ``above``
  the published figures above our whole range (their run worse than all our seeds).
  """
  lines = [
      "| case | m | quantity | published standard | ours standard | published differential | "
      "ours differential | differential better (seeds) | standard / differential (median) |",
      "|---|---:|---|---:|---:|---:|---:|---:|---:|"]
  findings, above = [], []
  for key, by_method in sorted(_group(rows).items()):
    model, n, m = key
    published = PUBLISHED.get(key)
    case = f"{_NAMES[model]}" + ("" if model == "black_scholes" else f" n={n}")
    for q, (label, pub_index) in enumerate((("value_rmse", 0), ("delta0_rmse", 2))):
      ours = {method: [r[label] for r in by_method[method].values()]
              for method in ("standard", "differential") if method in by_method}
      if len(ours) < 2:
        continue
      pub = published[pub_index:pub_index + 2] if published else (float("nan"),) * 2
      wins, count, ratio = _paired(by_method, label, "differential", "standard")
      quantity = "value" if q == 0 else "delta_0"
      pub_text = [f"{p:.2f}" if np.isfinite(p) else "-" for p in pub]
      lines.append(f"| {case} | {m:,} | {quantity} | {pub_text[0]} | {_spread(ours['standard'])} "
                   f"| {pub_text[1]} | {_spread(ours['differential'])} | {wins}/{count} | "
                   f"{ratio:.2f} |")
      if not published:
        continue
      for p, method in zip(pub, ("standard", "differential")):
        v = np.asarray(ours[method])
        where = f"{case} m={m:,} {quantity} {method}: published {p:.2f}"
        if p < v.min():
          findings.append(f"{where} is below our seeds' range {v.min():.3f}-{v.max():.3f}")
        elif p > v.max():
          above.append(f"{where} is above our seeds' range {v.min():.3f}-{v.max():.3f}")
      if pub[1] < pub[0] and not np.median(ours["differential"]) < np.median(ours["standard"]):
        findings.append(f"{case} m={m:,} {quantity}: differential beats standard in their table "
                        f"({pub[1]:.2f} < {pub[0]:.2f}) but not in our median "
                        f"({np.median(ours['differential']):.3f} vs "
                        f"{np.median(ours['standard']):.3f})")
  return lines, findings, above


def noise_floor(generator, m: int, seed) -> Dict[str, float]:
  """RMSE x 100 of the training labels themselves against the analytic price and delta_0."""
  x, y, dydx = generator.training_set(m, seed)
  return dict(value=float(100 * np.sqrt(np.mean((y - generator.price(x))**2))),
              delta0=float(100 * np.sqrt(np.mean((dydx[:, 0] - generator.delta(x)[:, 0])**2))))


def _medians(rows: Sequence[dict], key: str) -> Dict[str, Dict[int, float]]:
  """``{method: {m: median over seeds}}``."""
  values = collections.defaultdict(lambda: collections.defaultdict(list))
  for r in rows:
    values[r["method"]][r["m"]].append(r[key])
  return {method: {m: float(np.median(v)) for m, v in sorted(by_m.items())}
          for method, by_m in values.items()}


def matching_size(curve: Dict[int, float], target: float) -> Optional[float]:
  """The smallest m at which the median error ``curve`` reaches ``target``, interpolated
  log-log between evaluated sizes; None if it never does."""
  sizes = sorted(curve)
  for lo, hi in zip(sizes[:-1], sizes[1:]):
    a, b = np.log(curve[lo]), np.log(curve[hi])
    if curve[lo] <= target:
      return float(lo)
    if curve[hi] <= target:
      t = (np.log(target) - a) / (b - a)
      return float(np.exp(np.log(lo) + t * (np.log(hi) - np.log(lo))))
  return float(sizes[0]) if sizes and curve[sizes[0]] <= target else None


def curve_lines(rows: Sequence[dict], noise: Dict[str, float]) -> List[str]:
  lines = ["| m | quantity | standard (median [min-max]) | differential (median [min-max]) | "
           "differential better (seeds) |", "|---:|---|---:|---:|---:|"]
  grouped = _group(rows)
  for key in sorted(grouped):
    for label, quantity in (("value_rmse", "value"), ("delta0_rmse", "delta_0")):
      by_method = grouped[key]
      wins, count, _ = _paired(by_method, label, "differential", "standard")
      spread = {meth: _spread([r[label] for r in by_method[meth].values()])
                for meth in ("standard", "differential")}
      lines.append(f"| {key[2]:,} | {quantity} | {spread['standard']} | {spread['differential']}"
                   f" | {wins}/{count} |")
  lines += ["", f"Monte-Carlo noise of the labels (RMSE x 100 of one antithetic pair's payoff "
            f"and pathwise delta_0 against the analytic price and delta): value "
            f"{noise['value']:.2f}, delta_0 {noise['delta0']:.2f}.", ""]
  for label, quantity in (("value_rmse", "value"), ("delta0_rmse", "delta_0")):
    medians = _medians(rows, label)
    if "differential" in medians and "standard" in medians and medians["differential"]:
      first = min(medians["differential"])
      target = medians["differential"][first]
      size = matching_size(medians["standard"], target)
      lines.append(
          f"- {quantity}: differential training's median at m = {first:,} is {target:.3f}; "
          + (f"standard training's median reaches it at m ~ {size:,.0f} "
             f"({size / first:.0f}x the paths)." if size else
             f"standard training's median does not reach it up to m = "
             f"{max(medians['standard']):,}."))
  return lines


def dimension_lines(rows: Sequence[dict]) -> List[str]:
  lines = ["| n | m | quantity | standard | differential | directional |",
           "|---:|---:|---|---:|---:|---:|"]
  grouped = _group(rows)
  for key in sorted(grouped, key=lambda k: (k[1], k[2])):
    for label, quantity in (("value_rmse", "value"), ("delta0_rmse", "delta_0"),
                            ("delta_rmse", "all deltas")):
      cells = [_spread([r[label] for r in grouped[key][meth].values()])
               if meth in grouped[key] else "-"
               for meth in ("standard", "differential", "directional")]
      lines.append(f"| {key[1]} | {key[2]:,} | {quantity} | " + " | ".join(cells) + " |")
  return lines


def plot_predictions(predictions: Dict[str, Dict[str, np.ndarray]], title: str,
                     path: str) -> None:
  """Huge & Savine's figure: value and delta_0 against the basket, standard beside
  differential, predictions as circles and the analytic curve.

  ``predictions``: ``{method: {"basket", "value", "delta0", "price", "true_delta0", "rmse"}}``.
  """
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  methods = [m for m in ("standard", "differential") if m in predictions]
  fig, axes = plt.subplots(2, len(methods), figsize=(4.5 * len(methods), 7), squeeze=False)
  for j, method in enumerate(methods):
    p = predictions[method]
    order = np.argsort(p["basket"])
    for i, (pred, true, label) in enumerate(((p["value"], p["price"], "value"),
                                             (p["delta0"], p["true_delta0"], "delta_0"))):
      ax = axes[i, j]
      ax.plot(p["basket"] * 100, pred * 100, "o", ms=2, mfc="white", color="tab:cyan",
              label="predicted")
      ax.plot(p["basket"][order] * 100, true[order] * 100, "-", color="tab:red", lw=1,
              label="analytic")
      ax.set_title(f"{method}: {label}, RMSE x 100 {p['rmse'][i]:.3f}", fontsize=9)
      ax.set_xlabel("basket (x 100)")
      ax.legend(fontsize=7, loc="upper left")
  fig.suptitle(title, fontsize=10)
  fig.tight_layout()
  files.save_figure_atomic(fig, path, dpi=110)
  plt.close(fig)


def plot_curves(series: Dict[str, Sequence[dict]], path: str,
                noise: Optional[Dict[str, float]] = None, title: str = "") -> None:
  """Error against m (log-log), median over seeds with the min-max band, per method.

  ``series``: ``{label: rows}``; each label is drawn for values and for delta_0.
  """
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
  for ax, (key, quantity) in zip(axes, (("value_rmse", "value"), ("delta0_rmse", "delta_0"))):
    for label, rows in series.items():
      by_m = collections.defaultdict(list)
      for r in rows:
        by_m[r["m"]].append(r[key])
      sizes = sorted(by_m)
      med = [np.median(by_m[m]) for m in sizes]
      lo = [np.min(by_m[m]) for m in sizes]
      hi = [np.max(by_m[m]) for m in sizes]
      line, = ax.plot(sizes, med, "o-", ms=3, label=label)
      ax.fill_between(sizes, lo, hi, color=line.get_color(), alpha=0.15)
    if noise:
      ax.axhline(noise["value" if quantity == "value" else "delta0"], color="grey", ls=":",
                 lw=1, label="label noise (one path)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("training paths m")
    ax.set_ylabel(f"test RMSE x 100, {quantity}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
  fig.suptitle(title, fontsize=10)
  fig.tight_layout()
  files.save_figure_atomic(fig, path, dpi=110)
  plt.close(fig)

"""Tables and plots of the regression experiment (Figure 2, Figures 3 and 5-11)."""

from __future__ import annotations

import collections
import os
from typing import Dict, List, Optional, Sequence

import numpy as np

from sobolev_tf import files
from sobolev_tf.files import save_figure_atomic
from sobolev_tf.files import write_text_atomic
from sobolev_tf.regression import functions

__all__ = ["summarize", "figure2_table", "write_markdown", "plot_figure2", "plot_function",
           "plot_curves", "plot_piecewise_linear", "check_claims", "pairs_in", "PAIRS", "TITLE"]

TITLE = "# Figure 2: regression on the seven optimisation benchmarks (section 4.1)"  # figure2.md's.

METHOD_STYLE = {
    "regular": ("tab:blue", "o", "-"),
    "sobolev": ("tab:red", "s", "-"),
    "stochastic": ("tab:orange", "^", "--"),
    "finite_difference": ("tab:green", "v", "--"),
    "sobolev2": ("tab:purple", "D", ":"),
    "regular_softplus": ("tab:gray", "x", ":"),
    "regular_tanh": ("tab:cyan", "o", "--"),
    "sobolev_tanh": ("tab:brown", "s", "--"),
}
# (regular, Sobolev, network): the pairs whose gap the paper's claims are about.
PAIRS = (("regular", "sobolev", "ReLU"), ("regular_tanh", "sobolev_tanh", "tanh"))


def _plt():
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


def summarize(rows: Sequence[dict], key: str = "test_mse") -> Dict[tuple, tuple]:
  """(function, num_train, method) -> (mean, std, n) of log10 ``key`` over seeds."""
  cells = collections.defaultdict(list)
  for r in rows:
    cells[(r["function"], r["num_train"], r["method"])].append(np.log10(max(r[key], 1e-300)))
  return {k: (float(np.mean(v)), float(np.std(v)), len(v)) for k, v in cells.items()}


def pairs_in(rows: Sequence[dict]) -> List[tuple]:
  """The ``PAIRS`` both of whose methods have runs in ``rows``."""
  methods = {r["method"] for r in rows}
  return [p for p in PAIRS if p[0] in methods and p[1] in methods]


def check_claims(rows: Sequence[dict], regular: str = "regular",
                 sobolev: str = "sobolev") -> List[str]:
  """The paper's claims of section 4.1, each stated as holding or not in these runs
  (for the pair ``regular`` / ``sobolev``: the paper's ReLU network by default)."""
  s = summarize(rows)
  fns = sorted({r["function"] for r in rows})
  sizes = sorted({r["num_train"] for r in rows})
  gap = lambda f, n: s[(f, n, regular)][0] - s[(f, n, sobolev)][0]  # >0: Sobolev better.
  have = lambda f, n: (f, n, regular) in s and (f, n, sobolev) in s
  lines = []
  small = [n for n in sizes if n <= 100]
  for n in small:
    better = [f for f in fns if have(f, n) and gap(f, n) > 0]
    big = [f for f in fns if have(f, n) and gap(f, n) >= 1]
    lines.append(
        f"- **Sobolev beats regular on six of seven functions** at {n} points: "
        f"{'holds' if len(better) >= 6 else 'does not hold'} here ({len(better)} of "
        f"{len([f for f in fns if have(f, n)])}: {', '.join(better) or 'none'}).")
    lines.append(
        f"- **By orders of magnitude** at {n} points: Sobolev is at least 10x better on "
        f"{len(big)} functions ({', '.join(big) or 'none'}); median gap "
        f"{np.median([gap(f, n) for f in fns if have(f, n)]):.2f} decades.")
  for n in [n for n in sizes if n > 100]:
    better = [f for f in fns if have(f, n) and gap(f, n) > 0]
    lines.append(
        f"- **The effect persists at {n} points**: Sobolev is better on {len(better)} of "
        f"{len([f for f in fns if have(f, n)])} functions "
        f"({'holds' if len(better) >= 4 else 'does not hold'} for a majority).")
  if "ackley" in fns:
    low = [n for n in small if have("ackley", n)]
    worse = [n for n in low if gap("ackley", n) < 0]
    gaps = ", ".join("%d: %+.2f" % (n, gap("ackley", n)) for n in low)
    lines.append(
        f"- **Ackley is the exception at low data** (regular better): "
        f"{'holds' if worse else 'does not hold'} here (regular better at "
        f"{', '.join(map(str, worse)) or 'no size'}; gaps {gaps} decades, "
        "positive = Sobolev better).")
  return lines


def figure2_table(rows: Sequence[dict]) -> List[str]:
  """Markdown rows: log10 test MSE (mean +- std over seeds) per function, size and
  method, and the Sobolev/regular ratio of the means."""
  s = summarize(rows)
  methods = [m for m in METHOD_STYLE if any(r["method"] == m for r in rows)]
  pairs = pairs_in(rows)
  columns = methods + [f"Sobolev/regular MSE ratio ({name})" for _, _, name in pairs]
  out = ["| function | n | " + " | ".join(columns) + " |", "|---|---:|" + "---:|" * len(columns)]
  for f in sorted({r["function"] for r in rows}):
    for n in sorted({r["num_train"] for r in rows}):
      cells = []
      for m in methods:
        v = s.get((f, n, m))
        cells.append(f"{v[0]:.2f} +- {v[1]:.2f}" if v else "")
      ratios = [f"{10**(s[(f, n, sob)][0] - s[(f, n, reg)][0]):.3g}"
                if (f, n, reg) in s and (f, n, sob) in s else "" for reg, sob, _ in pairs]
      out.append(f"| {f} | {n} | " + " | ".join(cells + ratios) + " |")
  return out


def write_markdown(rows: Sequence[dict], path: str, header_lines: Sequence[str]) -> None:
  """figure2.md: mean +- std of log10 test MSE per cell, ratios, claims."""
  sg = summarize(rows, "test_grad_mse")
  fns = sorted({r["function"] for r in rows})
  sizes = sorted({r["num_train"] for r in rows})
  methods = [m for m in METHOD_STYLE if any(r["method"] == m for r in rows)]
  out = list(header_lines) + [""]
  out += ["## log10 test MSE (mean +- std over seeds), original units", ""]
  out += figure2_table(rows)
  out += ["", "Ratio: 10^(mean log10 MSE Sobolev - mean log10 MSE regular); below 1 means "
          "Sobolev is better.", "", "## log10 test gradient MSE (mean +- std over seeds)", ""]
  out += ["| function | n | " + " | ".join(methods) + " |", "|---|---:|" + "---:|" * len(methods)]
  for f in fns:
    for n in sizes:
      cells = [(f"{sg[(f, n, m)][0]:.2f} +- {sg[(f, n, m)][1]:.2f}" if (f, n, m) in sg else "")
               for m in methods]
      out.append(f"| {f} | {n} | " + " | ".join(cells) + " |")
  out += ["", "## The paper's claims, checked on these runs", ""]
  pairs = pairs_in(rows)
  for regular, sobolev, name in pairs:
    if pairs != [PAIRS[0]]:  # The paper's ReLU pair alone needs no label.
      out += [f"### {name} network" + (" (the paper's)" if regular == "regular" else ""), ""]
    out += check_claims(rows, regular, sobolev) + [""]
  write_text_atomic(path, "\n".join(out) + "\n")


def _save(fig, path: str) -> None:
  save_figure_atomic(fig, path, dpi=110, bbox_inches="tight")


def plot_figure2(rows: Sequence[dict], path: str, title: str = "") -> None:
  """Figure 2 (right): log10 test MSE per function and size, methods side by side."""
  plt = _plt()
  s = summarize(rows)
  fns = sorted({r["function"] for r in rows})
  sizes = sorted({r["num_train"] for r in rows})
  methods = [m for m in METHOD_STYLE if any(r["method"] == m for r in rows)]
  fig, axes = plt.subplots(1, len(sizes), figsize=(5 * len(sizes), 4), sharey=False)
  axes = np.atleast_1d(axes)
  width = 0.8 / len(methods)
  for ax, n in zip(axes, sizes):
    for j, m in enumerate(methods):
      xs, means, stds = [], [], []
      for i, f in enumerate(fns):
        if (f, n, m) in s:
          xs.append(i + (j - (len(methods) - 1) / 2) * width)
          means.append(s[(f, n, m)][0])
          stds.append(s[(f, n, m)][1])
      color, _, _ = METHOD_STYLE[m]
      ax.bar(xs, means, width, yerr=stds, color=color, label=m, capsize=2)
    ax.set_xticks(range(len(fns)))
    ax.set_xticklabels(fns, rotation=40, ha="right")
    ax.set_title(f"{n} training samples")
    ax.set_ylabel("log10 test MSE")
    ax.axhline(0, color="k", lw=0.5)
  axes[0].legend(fontsize=8)
  if title:
    fig.suptitle(title, fontsize=9)
  _save(fig, path)
  plt.close(fig)


def plot_function(function: str, grids_dir: str, path: str,
                  sizes: Sequence[int] = (20, 100)) -> Optional[str]:
  """Figures 3, 5-11: the function and the regular / Sobolev models, gradient fields below.

  The paper's ReLU pair, and each other pair of ``PAIRS`` whose grids exist;
  None (no figure) without the ReLU pair's.
  """
  plt = _plt()
  fn = functions.get_function(function)
  grid = lambda n, m: os.path.join(grids_dir, f"{function}_{n}_{m}.npz")
  pairs = [p for p in PAIRS if all(os.path.exists(grid(n, m)) for n in sizes for m in p[:2])]
  if not pairs or pairs[0][0] != "regular":
    return None
  panels = []
  for n in sizes:
    for regular, sobolev, _ in pairs:
      for m in (regular, sobolev):
        panels.append((f"{m}, {n} points", files.load_npz(
            grid(n, m), fix="delete it: the next run of its group writes it again.")))
  gx, gy = panels[0][1]["gx"], panels[0][1]["gy"]
  pts = np.stack([gx.ravel(), gy.ravel()], 1)
  true_v, true_g = fn.value_and_gradient(pts)
  true = ("true function", dict(pred=true_v.reshape(gx.shape), grad=true_g.reshape(gx.shape + (2,)),
                                x_train=np.zeros((0, 2))))
  panels = [true] + panels
  vmin, vmax = np.percentile(true_v, 1), np.percentile(true_v, 99)
  fig, axes = plt.subplots(2, len(panels), figsize=(3.2 * len(panels), 6.4))
  step = max(1, gx.shape[0] // 15)
  # One arrow scale for all panels (the true field's), so lengths are comparable.
  arrow_scale = float(np.percentile(np.linalg.norm(true_g, axis=1), 95)) * 20 + 1e-12
  for k, (title, d) in enumerate(panels):
    ax = axes[0, k]
    im = ax.contourf(gx, gy, np.clip(d["pred"], vmin, vmax), levels=30, cmap="viridis",
                     vmin=vmin, vmax=vmax)
    if len(d["x_train"]):
      ax.scatter(d["x_train"][:, 0], d["x_train"][:, 1], s=6, c="w", edgecolors="k", lw=0.3)
    ax.set_title(title, fontsize=9)
    g = d["grad"]
    axes[1, k].quiver(gx[::step, ::step], gy[::step, ::step], g[::step, ::step, 0],
                      g[::step, ::step, 1], angles="xy", scale=arrow_scale)
    axes[1, k].set_title("gradient field", fontsize=8)
  fig.colorbar(im, ax=axes[0, :].tolist(), shrink=0.8)
  fig.suptitle(f"{function}: regular vs Sobolev training (seed 0)")
  _save(fig, path)
  plt.close(fig)
  return path


def plot_curves(results: Sequence[dict], path: str) -> None:
  """Learning curves: median over seeds of log10 test MSE against steps."""
  plt = _plt()
  fns = sorted({r["function"] for r in results})
  sizes = sorted({r["num_train"] for r in results})
  fig, axes = plt.subplots(len(sizes), len(fns), figsize=(2.6 * len(fns), 2.3 * len(sizes)),
                           squeeze=False)
  for i, n in enumerate(sizes):
    for j, f in enumerate(fns):
      ax = axes[i, j]
      for m, (color, marker, ls) in METHOD_STYLE.items():
        curves = [r["curve"] for r in results
                  if r["function"] == f and r["num_train"] == n and r["method"] == m and r["curve"]]
        if not curves:
          continue
        steps = [c[0] for c in curves[0]]
        vals = np.median([[np.log10(c[1]) for c in cur] for cur in curves], axis=0)
        ax.plot(steps, vals, color=color, ls=ls, marker=marker, ms=3, label=m)
      ax.set_xscale("log")
      if i == 0:
        ax.set_title(f, fontsize=9)
      if j == 0:
        ax.set_ylabel(f"n={n}\nlog10 test MSE", fontsize=8)
      ax.tick_params(labelsize=7)
  axes[0, 0].legend(fontsize=6)
  _save(fig, path)
  plt.close(fig)


def plot_piecewise_linear(path: str, steps: int = 3000, seed: int = 0) -> Dict[str, float]:
  """Figure 2 (left): three points of a piecewise-linear function, with and without slopes.

  Values alone are matched by many functions (here, a ReLU network fitted to the
  three values); values and derivatives at the same points pin down the
  piecewise-linear target, whose kinks sit between the samples.
  """
  import sonnet as snt  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from sobolev_tf.training import fit_full_batch  # pylint: disable=g-import-not-at-top

  target = lambda x: np.where(x < -0.5, -2 * x - 1.5, np.where(x < 0.5, 0.5 * x - 0.25, 1.5 * x - 0.75))
  slope = lambda x: np.where(x < -0.5, -2.0, np.where(x < 0.5, 0.5, 1.5))
  xs = np.array([-1.0, 0.0, 1.0])
  x_train = tf.constant(xs[:, None], tf.float32)
  y = tf.constant(target(xs), tf.float32)
  dy = tf.constant(slope(xs)[:, None], tf.float32)
  grid = np.linspace(-1.5, 1.5, 301)
  fits, errors = {}, {}
  for sobolev in (False, True):
    tf.random.set_seed(seed)
    mlp = snt.nets.MLP([64, 64, 1])
    model = lambda z: mlp(z)[:, 0]
    fit_full_batch(mlp, x_train, y, dy, sobolev, learning_rate=3e-3, num_steps=steps)
    name = "Sobolev (values + derivatives)" if sobolev else "regular (values only)"
    fits[name] = model(tf.constant(grid[:, None], tf.float32)).numpy()
    errors[name] = float(np.mean((fits[name] - target(grid))**2))
  plt = _plt()
  fig, ax = plt.subplots(figsize=(5, 3.5))
  ax.plot(grid, target(grid), "k", lw=2, label="target (piecewise linear)")
  for (name, f), c in zip(fits.items(), ("tab:blue", "tab:red")):
    ax.plot(grid, f, color=c, ls="--", label=f"{name}: MSE {errors[name]:.3f}")
  ax.scatter(xs, target(xs), c="k", zorder=3)
  for x0 in xs:
    ax.plot([x0 - 0.2, x0 + 0.2], [target(x0) - 0.2 * slope(x0), target(x0) + 0.2 * slope(x0)],
            color="tab:red", lw=3, alpha=0.5)
  ax.set_title("Figure 2 (left): 3 samples, with and without derivatives", fontsize=9)
  ax.legend(fontsize=7)
  _save(fig, path)
  plt.close(fig)
  return errors

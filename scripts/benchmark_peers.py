r"""SobolevRegressor against the tools people use today, side by side (not a test).

Two peers, each on its own published workload:

* **Huge & Savine's notebook** (``DifferentialML.ipynb`` of GitHub
  ``differential-machine-learning/notebooks``): its TF1 graph, run from a copy you
  keep outside this repository (``--hs_notebook``) in a worker process under
  ``tf.compat.v1``; nothing of it is in this project. Their workload: the
  Bachelier basket in 7 dimensions (``sobolev_tf.pricing``), a 4x20 softplus net,
  batches of ``max(256, m // 16)``, 100 epochs of their one-cycle schedule.
  Beside them: ``SobolevRegressor`` with and without derivatives,
  ``SobolevModel.fit`` and a plain Keras ``fit`` of the same net and schedule.
* **JENN** (PyPI ``jenn``, ``pip install -e ".[peers]"``) on its documented
  problems (the sinusoid, Rastrigin and Rosenbrock examples of its docs): same
  data, architecture, initial weights, cost, optimiser and number of steps
  ("matched"), and ``SobolevRegressor`` with its own defaults beside.

Runs are interleaved in pairs (ours, theirs) for a number of rounds; ratios are
medians of per-pair ratios with their range. Whole fits include everything a
user waits for: ours with the trace cache cleared (tracing and compiling), theirs
with graph building. Steady-state epochs: theirs are the median epoch between
their per-epoch callbacks; ours are a repeated fit's whole time over its epochs
(an upper bound: data preparation included).

    python scripts/benchmark_peers.py --hs_notebook=../scratch/DifferentialML.ipynb
    python scripts/benchmark_peers.py --cases=jenn --jenn_rounds=3

Run it alone on the machine: a second heavy process distorts every number.
"""

import importlib.util
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict, List, Sequence

from absl import app
from absl import flags
import numpy as np

from sobolev_tf import tf_startup  # pylint: disable=g-import-not-at-top,unused-import
import keras  # pylint: disable=g-import-not-at-top
from sklearn import metrics  # pylint: disable=g-import-not-at-top
import tensorflow as tf  # pylint: disable=g-import-not-at-top

import sobolev_tf as st  # pylint: disable=g-import-not-at-top
from sobolev_tf import checks  # pylint: disable=g-import-not-at-top
from sobolev_tf import estimator as estimator_lib  # pylint: disable=g-import-not-at-top
from sobolev_tf import files  # pylint: disable=g-import-not-at-top
from sobolev_tf import training  # pylint: disable=g-import-not-at-top
from sobolev_tf.pricing import generators  # pylint: disable=g-import-not-at-top

FLAGS = flags.FLAGS
flags.DEFINE_list("cases", ["hs", "jenn"], "hs (Huge & Savine's workload), jenn, profile (where "
                  "a first fit's time goes), accuracy (their graph and ours on their table's "
                  "cells).")
flags.DEFINE_integer("accuracy_seeds", 5, "Seeds of the accuracy case.", lower_bound=1)
flags.DEFINE_string("hs_notebook", None, "Your copy of Huge & Savine's DifferentialML.ipynb "
                    "(outside this repository); without it their column is left out.")
flags.DEFINE_list("sizes", ["1024", "8192", "131072"], "Training set sizes of the hs case.")
flags.DEFINE_integer("rounds", 5, "Interleaved rounds of the hs case.", lower_bound=1)
flags.DEFINE_integer("loop_fits", 10, "Fits in the repeated-fits loop (m = 8,192).",
                     lower_bound=0)
JENN_PROBLEMS = ("sinusoid", "rastrigin", "rosenbrock")  # _jenn_problems' keys.
flags.DEFINE_list("jenn_problems", list(JENN_PROBLEMS), "JENN's problems.")
flags.DEFINE_integer("jenn_rounds", 3, "Interleaved rounds of the jenn case.", lower_bound=1)
flags.DEFINE_string("output", "results/benchmarks.md",
                    "Markdown file whose 'peers' section is (re)written ('' to skip).")

EPOCHS = 100
N_ASSETS = 7


# -- Huge & Savine's notebook, in a worker process --------------------------------------------

class _HSWorker:
  """The notebook's graph in a child process (TF1 behaviour is process-wide)."""

  def __init__(self, path: str):
    self._proc = subprocess.Popen(
        [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                      "hs_notebook_worker.py"), f"--notebook={path}",
         f"--epochs={EPOCHS}"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env=dict(os.environ, CUDA_VISIBLE_DEVICES=""))
    ready = self._proc.stdout.readline()
    if not ready.strip().startswith("{"):
      raise RuntimeError(f"The notebook worker failed to start: {ready!r}")

  def fit(self, data_path: str, m: int, differential: bool, seed: int,
          test_path: str = "") -> dict:
    self._proc.stdin.write(json.dumps(dict(data=data_path, m=m, differential=differential,
                                           seed=seed, test=test_path)) + "\n")
    self._proc.stdin.flush()
    answer = self._proc.stdout.readline()
    if not answer:
      raise RuntimeError("The notebook worker died.")
    return json.loads(answer)

  def close(self):
    self._proc.stdin.close()
    self._proc.wait(timeout=60)


# -- our runners on the hs workload ------------------------------------------------------------

def _basket_data(m: int):
  x, y, dydx = generators.BachelierBasket(N_ASSETS, market_seed=0).training_set(m, seed=1)
  return x.astype(np.float32), y.astype(np.float32), dydx.astype(np.float32)


def _estimator_fit(x, y, dydx, seed: int, jit_compile="auto") -> dict:
  """A cold fit (trace cache cleared: tracing and compiling included), a repeated one, and
  the steady-state epoch: (repeated fit of 200 epochs - of 100) / 100."""
  estimator_lib.clear_cache()
  times = {}
  for name, epochs in (("cold", EPOCHS), ("repeated", EPOCHS), ("double", 2 * EPOCHS)):
    t0 = time.perf_counter()
    st.SobolevRegressor(seed=seed, epochs=epochs, verbose=False,
                        execution=estimator_lib.Execution(jit_compile=jit_compile)).fit(x, y, dydx)
    times[name] = time.perf_counter() - t0
  return dict(whole=times["cold"], repeated=times["repeated"],
              epoch=(times["double"] - times["repeated"]) / EPOCHS)


def _keras_fit(x, y, dydx, seed: int) -> dict:
  """``SobolevModel.fit`` (with ``dydx``) or a plain Keras ``fit``: same net, batch, schedule."""
  t0 = time.perf_counter()
  net = estimator_lib.mlp(x.shape[1], 1, seed=seed)
  sobolev = dydx is not None
  if sobolev:
    scaler = st.SobolevScaler().fit(x, y[:, None], dydx[:, None, :])
    xs, ys, dys = scaler.transform(x, y[:, None], dydx[:, None, :])
    model = st.SobolevModel(net, balance=scaler.balance())
    targets = (ys, dys)
  else:
    scaler = st.SobolevScaler().fit(x, y[:, None])
    xs, ys = scaler.transform(x, y[:, None])
    model, targets = net, ys
  schedule = training.one_cycle(0.1)
  stamps = []
  model.compile(optimizer=keras.optimizers.Adam(), loss=None if sobolev else "mse")
  callbacks = [keras.callbacks.LearningRateScheduler(lambda e: float(schedule(e / EPOCHS))),
               keras.callbacks.LambdaCallback(
                   on_epoch_end=lambda *_: stamps.append(time.perf_counter()))]
  model.fit(xs, targets, batch_size=estimator_lib.default_batch_size(len(x)), epochs=EPOCHS,
            shuffle=True, verbose=0, callbacks=callbacks)
  whole = time.perf_counter() - t0
  epochs = np.diff(stamps)
  return dict(whole=whole, epoch=float(np.median(epochs[len(epochs) // 10:])))


def _pairs(rounds: int, first: Callable[[], dict], second: Callable[[], dict]) -> tuple:
  a, b = [], []
  for _ in range(rounds):
    a.append(first())
    b.append(second())
  return a, b


def _ratio(ours: Sequence[float], theirs: Sequence[float]) -> dict:
  r = np.array([o / t for o, t in zip(ours, theirs)]) if theirs else np.full(1, np.nan)
  return dict(ours=float(np.median(ours)),
              theirs=float(np.median(theirs)) if theirs else math.nan,
              ratio=float(np.median(r)), low=float(r.min()), high=float(r.max()))


def hs_case(sizes: List[int], rounds: int, notebook: str, loop_fits: int) -> List[str]:
  """The hs tables (markdown lines). Each round fits theirs once, then each of ours."""
  worker = _HSWorker(notebook) if notebook else None
  lines = []
  tmp = tempfile.mkdtemp(prefix="sobolev_bench_")
  rows = []
  try:
    for m in sizes:
      x, y, dydx = _basket_data(m)
      data_path = os.path.join(tmp, f"basket_{m}.npz")
      np.savez(data_path, x=x, y=y, dydx=dydx)
      for differential in (True, False):
        d = dydx if differential else None
        label = "differential" if differential else "standard"
        keras_name = "SobolevModel.fit" if differential else "Keras fit"
        theirs, ours = [], {}
        for _ in range(rounds if m < 100_000 else max(2, rounds // 2)):
          if worker:
            theirs.append(worker.fit(data_path, m, differential, 0))
          ours.setdefault("auto", []).append(_estimator_fit(x, y, d, 0))
          ours.setdefault("jit", []).append(_estimator_fit(x, y, d, 0, jit_compile=True))
          ours.setdefault("keras", []).append(_keras_fit(x, y, d, 0))
        measures = [
            ("SobolevRegressor, whole fit (cold)", "auto", "whole", "whole"),
            ("SobolevRegressor, repeated fit", "auto", "repeated", "whole"),
            ("SobolevRegressor, epoch", "auto", "epoch", "epoch"),
            ("SobolevRegressor, XLA, whole fit (cold)", "jit", "whole", "whole"),
            ("SobolevRegressor, XLA, epoch", "jit", "epoch", "epoch"),
            (f"{keras_name}, whole fit", "keras", "whole", "whole"),
            (f"{keras_name}, epoch", "keras", "epoch", "epoch"),
        ]
        for name, runner, key, their_key in measures:
          summary = _ratio([r[key] for r in ours[runner]], [t[their_key] for t in theirs])
          rows.append(dict(m=m, training=label, runner=name, **summary))
          print(f"m={m:7d} {label:12s} {name:54s} ours {summary['ours']*1e3:9.1f} ms  "
                f"theirs {summary['theirs']*1e3:9.1f} ms  ratio {summary['ratio']:.2f} "
                f"({summary['low']:.2f}-{summary['high']:.2f})", flush=True)
    loop = None
    if loop_fits and 8192 in sizes:
      x, y, dydx = _basket_data(8192)
      data_path = os.path.join(tmp, "basket_8192.npz")
      estimator_lib.clear_cache()
      t0 = time.perf_counter()
      for seed in range(loop_fits):
        st.SobolevRegressor(seed=seed, verbose=False).fit(x, y, dydx)
      ours_loop = time.perf_counter() - t0
      theirs_loop = (sum(worker.fit(data_path, 8192, True, s)["whole"] for s in range(loop_fits))
                     if worker else math.nan)
      loop = (ours_loop, theirs_loop)
      print(f"{loop_fits} fits at m=8192: ours {ours_loop:.2f} s, theirs {theirs_loop:.2f} s",
            flush=True)
  finally:
    if worker:
      worker.close()
  lines += [
      "### Huge & Savine's workload",
      "",
      f"Bachelier basket, {N_ASSETS} assets (`sobolev_tf.pricing.BachelierBasket(7, market_seed=0)`,"
      " paths of seed 1), 4x20 softplus, batch max(256, m // 16), 100 epochs of their one-cycle "
      "schedule. Theirs: their notebook's graph (`Neural_Approximator.prepare` + `train`) under "
      "`tf.compat.v1`; their epoch is the median time between their per-epoch callbacks (after "
      "the first tenth). Ours: a cold fit clears the trace cache first (tracing and compiling "
      "included, as a first fit in a process); a repeated fit reuses it; our epoch is (a "
      "repeated fit of 200 epochs - one of 100) / 100. XLA: `execution=Execution(jit_compile=True)`; "
      "the default ('auto') uses XLA from batches of 4,096. Each round fits theirs once, then each of ours; ratios: ours / "
      "theirs, median of the per-round ratios (range); below 1 we are faster.",
      "",
      "| m | training | ours | ours (ms) | theirs (ms) | ratio | range |",
      "|---:|---|---|---:|---:|---:|---|",
  ]
  for r in rows:
    lines.append(f"| {r['m']:,} | {r['training']} | {r['runner']} | {r['ours']*1e3:.1f} | "
                 f"{r['theirs']*1e3:.1f} | {r['ratio']:.2f} | {r['low']:.2f}-{r['high']:.2f} |")
  lines.append("")
  lines.append("Differential / standard time, same runner and m (medians):")
  lines.append("")
  lines.append("| m | runner | ours | theirs |")
  lines.append("|---:|---|---:|---:|")
  for m in sizes:
    for name in ("SobolevRegressor, epoch", "SobolevRegressor, whole fit (cold)"):
      pick = lambda training: next(r for r in rows if r["m"] == m and r["runner"] == name
                                   and r["training"] == training)
      d, s = pick("differential"), pick("standard")
      lines.append(f"| {m:,} | {name} | {d['ours'] / s['ours']:.2f} | "
                   f"{d['theirs'] / s['theirs']:.2f} |")
  if loop:
    lines += ["", f"{loop_fits} differential fits at m = 8,192 in one process (seeds 0-"
              f"{loop_fits - 1}; ours trace once): ours {loop[0]:.2f} s, theirs {loop[1]:.2f} s, "
              f"ratio {loop[0] / loop[1]:.2f}."]
  return lines


# -- JENN ----------------------------------------------------------------------------------

def _jenn_problems() -> Dict[str, dict]:
  """JENN's documented examples (docs/examples/demo_1, demo_2, demo_4 of its repository)."""
  import jenn  # pylint: disable=g-import-not-at-top
  sample = jenn.utilities.sample
  synthetic = jenn.synthetic_data
  problems = {}
  f = synthetic.sinusoid
  problems["sinusoid"] = dict(
      train=sample(f.compute, f_prime=f.compute_partials, m_random=0, m_levels=4, lb=(-3.14,),
                   ub=(3.14,)),
      test=sample(f.compute, f_prime=f.compute_partials, m_random=30, m_levels=0, lb=(-3.14,),
                  ub=(3.14,), random_state=123),
      layers=[1, 12, 1], fit=dict(lambd=0.1, is_normalize=False, random_state=123))
  f = synthetic.rastrigin
  problems["rastrigin"] = dict(
      train=sample(f.compute, f_prime=f.compute_partials, m_random=100, m_levels=0, lb=(-1.0, -1.0),
                   ub=(1.5, 1.5), random_state=123),
      test=sample(f.compute, f_prime=f.compute_partials, m_random=0, m_levels=10, lb=(-1.0, -1.0),
                  ub=(1.5, 1.5)),
      layers=[2, 24, 24, 1],
      fit=dict(max_iter=10_000, alpha=0.001, lambd=0.0001, is_normalize=True, random_state=123))
  f = synthetic.rosenbrock
  problems["rosenbrock"] = dict(
      train=sample(f.compute, f_prime=f.compute_partials, m_random=100, m_levels=17, lb=(-2.0, -2.0),
                   ub=(2.0, 2.0), random_state=1),
      test=sample(f.compute, f_prime=f.compute_partials, m_random=1000, m_levels=0, lb=(-2.0, -2.0),
                  ub=(2.0, 2.0), random_state=1),
      layers=[2, 20, 20, 20, 1],
      fit=dict(alpha=1e-5, lambd=1e-3, is_normalize=True, max_iter=75_000, random_state=1))
  return problems


def _jenn_layout(x, y, dydx):
  """JENN's (n_x, m), (n_y, m), (n_y, n_x, m) as ours: [m, n], [m], [m, n]."""
  return x.T, y[0], dydx[0].T


def _r2(model_predict, x, y, dydx) -> tuple:
  values, partials = model_predict(x)
  return (metrics.r2_score(y, values), metrics.r2_score(dydx, partials))


def _matched(problem: dict, gradients: bool) -> st.SobolevRegressor:
  """SobolevRegressor set to JENN's fit: its initial weights, cost, Adam and steps."""
  import jenn  # pylint: disable=g-import-not-at-top
  settings = dict(dict(alpha=0.05, lambd=0.0, max_iter=1000, is_normalize=False),
                  **problem["fit"])
  params = jenn.core.parameters.Parameters(problem["layers"], "tanh", "linear")
  params.initialize(settings["random_state"])
  sizes = problem["layers"]
  net = keras.Sequential([keras.Input((sizes[0],))] + [
      keras.layers.Dense(w, activation="tanh" if i < len(sizes) - 2 else None)
      for i, w in enumerate(sizes[1:])])
  net.set_weights([a for W, b in zip(params.W[1:], params.b[1:]) for a in (W.T, b[:, 0])])
  m = problem["train"][0].shape[1]
  # JENN's cost is 0.5 / m (sum of squared value errors + gamma * partial errors +
  # lambd * sum ||W||^2): ours without the 1/2, which Adam does not see, so l2 = lambd / m.
  return st.SobolevRegressor(
      network=net, epochs=settings["max_iter"], batch_size=m, shuffle=False,
      learning_rate=settings["alpha"], adam=dict(beta_1=0.9, beta_2=0.99, epsilon=1e-8),
      standardize=settings["is_normalize"], balance=None, derivative_weight=1.0,
      l2=settings["lambd"] / m, verbose=False)


def jenn_case(names: List[str], rounds: int) -> List[str]:
  import jenn  # pylint: disable=g-import-not-at-top
  problems = _jenn_problems()
  rows = []
  for name in names:
    problem = problems[name]
    x, y, dydx = _jenn_layout(*problem["train"])
    xt, yt, dydxt = _jenn_layout(*problem["test"])
    for gradients in (True, False):
      d = dydx if gradients else None

      def theirs():
        t0 = time.perf_counter()
        model = jenn.NeuralNet(problem["layers"]).fit(
            *problem["train"][:2], dydx=problem["train"][2] if gradients else None,
            **problem["fit"])
        seconds = time.perf_counter() - t0
        predict = lambda z: (model.predict(z.T)[0], model.predict_partials(z.T)[0].T)
        return dict(seconds=seconds, r2=_r2(predict, xt, yt, dydxt))

      def ours(factory, cold=True):
        if cold:
          estimator_lib.clear_cache()
        model = factory()
        t0 = time.perf_counter()
        model.fit(x, y, d)
        seconds = time.perf_counter() - t0
        return dict(seconds=seconds, r2=_r2(model.predict_with_derivatives, xt, yt, dydxt))

      matched = lambda: ours(lambda: _matched(problem, gradients))
      their_runs, matched_runs = _pairs(rounds, theirs, matched)
      warm = [ours(lambda: _matched(problem, gradients), cold=False) for _ in range(rounds)]
      default = [ours(lambda: st.SobolevRegressor(verbose=False)) for _ in range(rounds)]
      ratio = np.array([o["seconds"] / t["seconds"] for o, t in zip(matched_runs, their_runs)])
      row = dict(problem=name, gradients=gradients,
                 jenn_s=np.median([r["seconds"] for r in their_runs]),
                 matched_s=np.median([r["seconds"] for r in matched_runs]),
                 warm_s=np.median([r["seconds"] for r in warm]),
                 default_s=np.median([r["seconds"] for r in default]),
                 ratio=np.median(ratio), low=ratio.min(), high=ratio.max(),
                 jenn_r2=their_runs[0]["r2"], matched_r2=matched_runs[0]["r2"],
                 default_r2=default[0]["r2"])
      rows.append(row)
      print(f"{name:11s} gradients={gradients!s:5s} JENN {row['jenn_s']:.3f}s "
            f"R2 {row['jenn_r2'][0]:.4f}/{row['jenn_r2'][1]:.4f}  matched {row['matched_s']:.3f}s "
            f"(warm {row['warm_s']:.3f}s) R2 {row['matched_r2'][0]:.4f}/{row['matched_r2'][1]:.4f}"
            f"  default {row['default_s']:.3f}s R2 {row['default_r2'][0]:.4f}/"
            f"{row['default_r2'][1]:.4f}", flush=True)
  lines = [
      "### JENN's problems",
      "",
      f"JENN {jenn.__version__ if hasattr(jenn, '__version__') else ''} (NumPy, float64) against "
      "`SobolevRegressor` matched to its fit (JENN's initial weights, tanh, cost "
      "`0.5/m (SSE + partial SSE + lambd ||W||^2)`, Adam with its rate and betas 0.9/0.99, "
      "full batch, its number of steps, its normalisation; float32) and with our defaults "
      "(4x20 softplus, balance, 100 one-cycle epochs). Test R^2 of values / of partials on "
      "JENN's test sets. Time of one whole fit in seconds, not counting the process start; "
      "'cold' clears our trace cache first (a first fit in a process), 'warm' reuses it. "
      "Ratio: matched cold / JENN, median of per-round ratios (range).",
      "",
      "| problem | gradients | JENN s | R^2 | matched cold s | warm s | R^2 | ratio | range | "
      "default s | R^2 |",
      "|---|---|---:|---|---:|---:|---|---:|---|---:|---|",
  ]
  fmt = lambda r2: f"{r2[0]:.4f} / {r2[1]:.4f}"
  for r in rows:
    lines.append(f"| {r['problem']} | {'yes' if r['gradients'] else 'no'} | {r['jenn_s']:.3f} | "
                 f"{fmt(r['jenn_r2'])} | {r['matched_s']:.3f} | {r['warm_s']:.3f} | "
                 f"{fmt(r['matched_r2'])} | {r['ratio']:.2f} | {r['low']:.2f}-{r['high']:.2f} | "
                 f"{r['default_s']:.3f} | {fmt(r['default_r2'])} |")
  return lines


def accuracy_case(notebook: str, seeds: int) -> List[str]:
  """Their notebook's graph and SobolevRegressor on the same paths and test sets: the cells
  of their published table (``sobolev_tf.pricing``'s data, seeds 0..seeds-1)."""
  from sobolev_tf.pricing import experiment  # pylint: disable=g-import-not-at-top
  from sobolev_tf.pricing import report  # pylint: disable=g-import-not-at-top
  worker = _HSWorker(notebook)
  tmp = tempfile.mkdtemp(prefix="sobolev_accuracy_")
  rmse = lambda e: float(100 * np.sqrt(np.mean(np.square(e))))
  rows = []
  try:
    for (model, n, m) in sorted(report.PUBLISHED):
      for method in ("standard", "differential"):
        errors = {"theirs": [], "ours": []}
        for seed in range(seeds):
          cell = experiment.Cell(model, n, m, method, seed)
          data = experiment.make_data(cell, 4096)
          data_path, test_path = (os.path.join(tmp, f) for f in ("data.npz", "test.npy"))
          np.savez(data_path, x=data["x"], y=data["y"], dydx=data["dydx"])
          np.save(test_path, data["x_test"])
          theirs = worker.fit(data_path, m, method == "differential", seed, test_path)
          ours = experiment.fit_cell(cell, data, {})
          values, deltas = ours.predict_with_derivatives(data["x_test"])
          for name, (v, d) in (("theirs", (np.array(theirs["values"]),
                                             np.array(theirs["deltas"]))),
                               ("ours", (values, deltas.reshape(data["delta"].shape)))):
            errors[name].append((rmse(v - data["price"]), rmse(d[:, 0] - data["delta"][:, 0])))
        published = report.PUBLISHED[(model, n, m)]
        for q, quantity in enumerate(("value", "delta_0")):
          spread = {k: np.array([e[q] for e in v]) for k, v in errors.items()}
          pub = published[q * 2 + (method == "differential")]
          rows.append(f"| {model} {n} | {m:,} | {method} | {quantity} | {pub:.2f} | "
                      + " | ".join(f"{np.median(spread[k]):.3f} [{spread[k].min():.3f}-"
                                   f"{spread[k].max():.3f}]" for k in ("theirs", "ours")) + " |")
          print(rows[-1], flush=True)
  finally:
    worker.close()
  return ["Their notebook's graph (run from your copy) and `SobolevRegressor` with its defaults, "
          "fitted to the same paths and scored on the same test sets (`sobolev_tf.pricing`: "
          f"the cells of their published table, seeds 0-{seeds - 1}; their network's initial "
          "weights from TensorFlow 1's own seed). Test RMSE x 100, median [min-max] over seeds; "
          "published: their notebook's saved output.", "",
          "| case | m | training | quantity | published | their graph | ours |",
          "|---|---:|---|---|---:|---:|---:|"] + rows


def profile_case(sizes: List[int], rounds: int) -> List[str]:
  """A cold fit split by ``cProfile``: graph tracing, running, the rest; and a repeated fit."""
  import cProfile  # pylint: disable=g-import-not-at-top
  import pstats  # pylint: disable=g-import-not-at-top
  rows = []
  for m in sizes:
    x, y, dydx = _basket_data(m)
    parts = []
    for seed in range(rounds):
      estimator_lib.clear_cache()
      profile = cProfile.Profile()
      t0 = time.perf_counter()
      profile.runcall(lambda: st.SobolevRegressor(seed=seed, verbose=False).fit(x, y, dydx))
      cold = time.perf_counter() - t0
      t0 = time.perf_counter()
      st.SobolevRegressor(seed=seed, verbose=False).fit(x, y, dydx)
      repeated = time.perf_counter() - t0
      stats = pstats.Stats(profile).stats
      cumulative = lambda name: sum(v[3] for k, v in stats.items() if k[2] == name)
      parts.append((cold, cumulative("func_graph_from_py_func"),
                    sum(v[3] for k, v in stats.items() if "TFE_Py_Execute" in k[2]), repeated))
    cold, trace, run, repeated = np.median(np.array(parts), axis=0)
    rows.append(f"| {m:,} | {cold:.3f} | {trace:.3f} | {run:.3f} | {cold - trace - run:.3f} | "
                f"{repeated:.3f} |")
    print(rows[-1], flush=True)
  return ["A cold differential fit of the hs workload under `cProfile` (which slows Python a "
          "little): graph tracing (`func_graph_from_py_func`), running TensorFlow functions "
          "(their first run includes TensorFlow's graph optimisation, and all the training), "
          f"and the rest; a repeated fit beside it. Seconds, medians of {rounds} rounds.", "",
          "| m | cold fit | tracing | running | rest | repeated fit |",
          "|---:|---:|---:|---:|---:|---:|"] + rows


def main(argv):
  del argv
  tf_startup.default_script_verbosity()
  unknown = set(FLAGS.cases) - {"hs", "jenn", "profile", "accuracy"}
  if unknown:
    raise app.UsageError(f"Unknown --cases {sorted(unknown)}: use hs, jenn, profile, accuracy.")
  checks.check_distinct(FLAGS.cases, "--cases")  # Else an empty section would replace it.
  if "accuracy" in FLAGS.cases and not FLAGS.hs_notebook:
    raise app.UsageError("--cases=accuracy needs --hs_notebook (your copy of their notebook).")
  if FLAGS.hs_notebook and not os.path.isfile(FLAGS.hs_notebook):
    raise app.UsageError(f"--hs_notebook={FLAGS.hs_notebook} is not a file.")
  if not FLAGS.sizes or not all(s.isdigit() and int(s) >= 2 for s in FLAGS.sizes):
    raise app.UsageError(f"--sizes must be training set sizes (integers >= 2), got "
                         f"{FLAGS.sizes}.")
  sizes = [int(s) for s in FLAGS.sizes]
  if FLAGS.output:
    checks.check_output_file(FLAGS.output, "benchmark report", ".md",
                             starts_with=files.SECTIONS_START)
  if "jenn" in FLAGS.cases:
    unknown = sorted(set(checks.check_distinct(FLAGS.jenn_problems, "--jenn_problems"))
                     - set(JENN_PROBLEMS))
    if unknown:
      raise app.UsageError(f"Unknown --jenn_problems {unknown}: use {', '.join(JENN_PROBLEMS)}.")
  if "jenn" in FLAGS.cases and importlib.util.find_spec("jenn") is None:
    raise app.UsageError('The jenn case needs JENN: pip install -e ".[peers]".')
  # The notebook is the user's copy; the output names where this section went.
  command = "python scripts/benchmark_peers.py " + " ".join(
      "--hs_notebook=<your copy>" if a.startswith("--hs_notebook=") else a
      for a in sys.argv[1:] if not a.startswith("--output="))
  header = [f"Command: `{command.strip()}`  ",
            f"Machine: TensorFlow {tf.__version__}, Keras {keras.__version__}, Python "
            f"{platform.python_version()}, {os.cpu_count()} CPU cores.  ",
            f"Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.", ""]
  sections = {}
  if {"hs", "jenn"} & set(FLAGS.cases):
    lines = ["## SobolevRegressor against its peers", ""] + header
    if "hs" in FLAGS.cases:
      lines += hs_case(sizes, FLAGS.rounds, FLAGS.hs_notebook, FLAGS.loop_fits) + [""]
    if "jenn" in FLAGS.cases:
      lines += jenn_case(FLAGS.jenn_problems, FLAGS.jenn_rounds) + [""]
    sections["peers"] = lines
  if "accuracy" in FLAGS.cases:
    sections["accuracy"] = (["## Huge & Savine's notebook and SobolevRegressor on the same data",
                             ""] + header + accuracy_case(FLAGS.hs_notebook, FLAGS.accuracy_seeds))
  if "profile" in FLAGS.cases:
    sections["first_fit"] = (["## SobolevRegressor: where a first fit's time goes", ""] + header
                             + profile_case(sizes, FLAGS.rounds))
  for name, lines in sections.items():
    if FLAGS.output:
      files.write_section(FLAGS.output, name, "\n".join(lines))
      print(f"Wrote the '{name}' section of {FLAGS.output}.")


if __name__ == "__main__":
  app.run(main)

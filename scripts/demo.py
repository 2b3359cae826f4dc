r"""Regular vs Sobolev training of the paper's MLP on Styblinski-Tang from 20 points.

    python scripts/demo.py                       # writes results/demo.md
    python scripts/demo.py --config.num_train=20
    python scripts/demo.py --config=configs/demo.py:quick --output=
"""

import os
import sys
import time

from absl import app
from absl import flags
from ml_collections import config_flags
import numpy as np

import sobolev_tf  # First: it imports TensorFlow without its C++ start-up lines.
import tensorflow as tf  # pylint: disable=g-import-not-at-top

import sobolev_tf as st  # pylint: disable=g-import-not-at-top
from sobolev_tf import checks  # pylint: disable=g-import-not-at-top
from sobolev_tf import regression  # pylint: disable=g-import-not-at-top
from sobolev_tf.files import write_text_atomic  # pylint: disable=g-import-not-at-top
from sobolev_tf.regression import get_function  # pylint: disable=g-import-not-at-top

_DEFAULT_CONFIG = os.path.join(os.path.dirname(__file__), "..", "configs", "demo.py")
_CONFIG = config_flags.DEFINE_config_file(
    "config", _DEFAULT_CONFIG,
    "Demo configuration.")
_OUTPUT = flags.DEFINE_string("output", "results/demo.md", "Markdown report ('' to skip).")
_TITLE = "# Demo: regular vs Sobolev training on Styblinski-Tang"  # The report's first line.


def train_and_evaluate(config, seed: int, sobolev: bool) -> dict:
  rng = np.random.default_rng(seed)
  x_train = rng.uniform(-5, 5, (config.num_train, 2)).astype(np.float32)
  x_test = rng.uniform(-5, 5, (config.num_test, 2)).astype(np.float32)
  fn = get_function("styblinski_tang")  # SM section 2; Figure 3's function.
  y_train, dy_train = fn.value_and_gradient(x_train)
  y_test, dy_test = fn.value_and_gradient(x_test)
  tf.random.set_seed(seed)
  mlp = regression.regression_mlp(config.hidden_sizes)
  model = lambda z: mlp(z)[:, 0]
  x, y, dy = (tf.constant(a, tf.float32) for a in (x_train, y_train, dy_train))
  start = time.perf_counter()
  metrics = st.fit_full_batch(mlp, x, y, dy, sobolev, config.learning_rate, config.num_steps,
                              config.steps_per_call)
  wall = time.perf_counter() - start
  pred, grad = st.value_and_gradient(model, tf.constant(x_test))
  return dict(train_loss=float(metrics["loss"]),
              test_mse=float(np.mean((pred.numpy() - y_test)**2)),
              test_grad_mse=float(np.mean(np.sum((grad.numpy() - dy_test)**2, axis=1))),
              wall_seconds=wall)


def main(argv):
  del argv
  config = _CONFIG.value
  checks.check_config_kind(config, _DEFAULT_CONFIG)
  checks.check_config(config, positive=("num_train", "num_test", "num_steps", "steps_per_call",
                                        "learning_rate"),
                      widths=("hidden_sizes",), seeds=("seeds",))
  if _OUTPUT.value:
    checks.check_output_file(_OUTPUT.value, "report", starts_with=_TITLE)
  rows = []
  for seed in config.seeds:
    for sobolev in (False, True):
      r = train_and_evaluate(config, seed, sobolev)
      r.update(seed=seed, method="sobolev" if sobolev else "regular")
      print(f"seed {seed} {r['method']:8s} test MSE {r['test_mse']:12.4f}  "
            f"test grad MSE {r['test_grad_mse']:12.4f}  ({r['wall_seconds']:.1f}s)", flush=True)
      rows.append(r)
  summary = {}
  for method in ("regular", "sobolev"):
    mse = np.log10([r["test_mse"] for r in rows if r["method"] == method])
    summary[method] = (mse.mean(), mse.std())
    print(f"{method:8s} log10 test MSE {mse.mean():.2f} +- {mse.std():.2f}")
  if not _OUTPUT.value:
    return
  command = "python scripts/demo.py " + " ".join(sys.argv[1:])
  lines = [
      _TITLE, "",
      f"Command: `{command.strip()}`  ",
      f"Config: `configs/demo.py` ({config.num_train} training points, "
      f"{config.num_steps} full-batch Adam steps at lr {config.learning_rate}, "
      f"MLP {list(config.hidden_sizes)} ReLU, seeds {list(config.seeds)}). "
      "CPU-scale demo, not the paper's setting (lr 3e-5); see results/regression/ for the reproduction.", "",
      "| method | seed | test MSE | test gradient MSE | seconds |", "|---|---:|---:|---:|---:|",
  ] + [f"| {r['method']} | {r['seed']} | {r['test_mse']:.4g} | {r['test_grad_mse']:.4g} | "
       f"{r['wall_seconds']:.1f} |" for r in rows] + [
           "", "| method | log10 test MSE (mean +- std over seeds) |", "|---|---|"] + [
               f"| {m} | {mu:.2f} +- {sd:.2f} |" for m, (mu, sd) in summary.items()]
  write_text_atomic(_OUTPUT.value, "\n".join(lines) + "\n")
  print(f"wrote {_OUTPUT.value}")


if __name__ == "__main__":
  app.run(main)

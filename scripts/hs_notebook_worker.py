r"""Serves fits of Huge & Savine's notebook graph for ``benchmark_peers.py`` (not a test).

    python scripts/hs_notebook_worker.py --notebook=<your copy of DifferentialML.ipynb> --epochs=100

Runs the notebook's definition cells (its network, training graphs, ``train`` and
``Neural_Approximator``) under ``tf.compat.v1`` in this process, then answers
one JSON line per request line ``{"data": npz with x, y, dydx, "m": ..., "differential":
..., "seed": ...[, "test": .npy of inputs]}`` with the seconds of the graph build, the
training and the median epoch (from the notebook's own per-epoch callback), and the
predicted values and deltas at the test inputs if asked. Nothing of the notebook is
copied into this project: it is read from the path given.
"""

import json
import sys
import time

from absl import app
from absl import flags
import numpy as np

_NOTEBOOK = flags.DEFINE_string("notebook", None, "Path of a copy of Huge & Savine's "
                                "DifferentialML.ipynb.", required=True)
_EPOCHS = flags.DEFINE_integer("epochs", 100, "Epochs of every fit.", lower_bound=1)

_WANTED = ("def vanilla_net", "def backprop", "def vanilla_training_graph",
           "def diff_training_graph", "def train(", "def normalize_data",
           "class Neural_Approximator")


def notebook_namespace(path: str) -> dict:
  """The notebook's functions and classes, defined under ``tf.compat.v1`` (graph mode)."""
  import tensorflow.compat.v1 as tf1  # pylint: disable=g-import-not-at-top
  tf1.disable_v2_behavior()
  from scipy.stats import norm  # pylint: disable=g-import-not-at-top
  with open(path) as f:
    cells = [c for c in json.load(f)["cells"] if c["cell_type"] == "code"]
  # Its first cell imports TF 1 and tqdm's notebook bar: given here instead (no bar).
  namespace = dict(tf=tf1, np=np, time=time, norm=norm, real_type=tf1.float32,
                   tqdm_notebook=lambda iterable, **kwargs: iterable)
  for cell in cells:
    source = "".join(cell["source"])
    if any(w in source for w in _WANTED):
      exec(compile(source, f"{path}:cell", "exec"), namespace)  # pylint: disable=exec-used
  if "Neural_Approximator" not in namespace:
    raise ValueError(f"{path} does not define Neural_Approximator: is it DifferentialML.ipynb?")
  return namespace


def serve(path: str, epochs: int) -> None:
  """Answers fit requests read from stdin, one JSON line each, until stdin closes."""
  namespace = notebook_namespace(path)
  print(json.dumps({"ready": True}), flush=True)
  for line in sys.stdin:
    request = json.loads(line)
    arrays = np.load(request["data"])
    x, y, dydx = arrays["x"], arrays["y"][:, None], arrays["dydx"]
    stamps = []
    t0 = time.perf_counter()
    regressor = namespace["Neural_Approximator"](x, y, dydx)
    regressor.prepare(request["m"], request["differential"], weight_seed=request["seed"])
    t1 = time.perf_counter()
    regressor.train("", epochs=epochs, callback=lambda *_: stamps.append(time.perf_counter()),
                    callback_epochs=list(range(epochs + 1)))
    t2 = time.perf_counter()
    seconds = np.diff(stamps)
    answer = dict(build=t1 - t0, train=t2 - t1, whole=t2 - t0,
                  epoch=float(np.median(seconds[len(seconds) // 10:])))
    if request.get("test"):  # Predictions at the test inputs, in the data's units.
      values, deltas = regressor.predict_values_and_derivs(np.load(request["test"]))
      answer.update(values=values[:, 0].tolist(), deltas=deltas.tolist())
    print(json.dumps(answer), flush=True)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}")
  serve(_NOTEBOOK.value, _EPOCHS.value)


if __name__ == "__main__":
  app.run(main)

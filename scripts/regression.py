r"""One function, one training-set size, one or more methods, several seeds.

    python scripts/regression.py --function=styblinski_tang --num_train=20
    python scripts/regression.py --function=beale --num_train=100 \
        --methods=regular,sobolev,stochastic --config.num_steps=20000
"""

import os

from absl import app
from absl import flags
from ml_collections import config_flags
import numpy as np

from sobolev_tf import tf_startup  # pylint: disable=g-import-not-at-top
from sobolev_tf import checks  # pylint: disable=g-import-not-at-top
from sobolev_tf.regression import experiment  # pylint: disable=g-import-not-at-top

_DEFAULT_CONFIG = os.path.join(os.path.dirname(__file__), "..", "configs", "regression.py")
_CONFIG = config_flags.DEFINE_config_file(
    "config", _DEFAULT_CONFIG,
    "Regression configuration (configs/regression.py:<default|full|quick|paper>).")
_FUNCTION = flags.DEFINE_string("function", "styblinski_tang", "Benchmark function.")
_NUM_TRAIN = flags.DEFINE_integer("num_train", 20, "Training points.")
_METHODS = flags.DEFINE_list("methods", ["regular", "sobolev"],
                             f"Methods: {', '.join(experiment.METHODS)}.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Checkpoint directory (resume); none if unset.")


def main(argv):
  del argv
  tf_startup.default_script_verbosity()
  config = _CONFIG.value
  checks.check_config_kind(config, _DEFAULT_CONFIG)
  config.grid_resolution = 0
  methods = checks.check_distinct(_METHODS.value, "--methods")
  runs = [experiment.Run(_FUNCTION.value, _NUM_TRAIN.value, m, s)
          for m in methods for s in config.seeds]
  results = experiment.run_grid(runs, config, _WORKDIR.value)
  print(f"\n{_FUNCTION.value}, {_NUM_TRAIN.value} points, {config.num_steps} steps")
  print(f"{'method':18s} {'seed':>4s} {'test MSE':>12s} {'test grad MSE':>14s}")
  for r in results:
    print(f"{r['method']:18s} {r['seed']:4d} {r['test_mse']:12.4g} {r['test_grad_mse']:14.4g}")
  for m in methods:
    v = np.log10([r["test_mse"] for r in results if r["method"] == m])
    print(f"{m:18s} log10 test MSE {v.mean():.2f} +- {v.std():.2f}")


if __name__ == "__main__":
  app.run(main)

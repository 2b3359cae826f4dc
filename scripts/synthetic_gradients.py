r"""Trains the split network with synthetic gradients (section 4.3, Table 1); resumes from --workdir.

One method (``--config.method``) or several in turn (``--methods``), each in
``<workdir>/<method>``:

    python scripts/synthetic_gradients.py --config=configs/synthetic_gradients.py:cifar10_cpu \
        --methods=backprop,noprop,direct,vfbn,critic,sobolev --workdir=workdirs/sg_cifar10_cpu
    python scripts/synthetic_gradients.py --config=configs/synthetic_gradients.py:cifar10 \
        --config.method=sobolev --workdir=workdirs/sg_cifar10

Several machines: set TF_CONFIG on each and pass ``--config.strategy=multi_worker``.
"""

import json
import os

from absl import app
from absl import flags
from ml_collections import config_flags

from sobolev_tf import tf_startup  # pylint: disable=g-import-not-at-top
from sobolev_tf import checks  # pylint: disable=g-import-not-at-top
from sobolev_tf import files  # pylint: disable=g-import-not-at-top
from sobolev_tf import training  # pylint: disable=g-import-not-at-top
from sobolev_tf.synthetic_gradients import methods as sg  # pylint: disable=g-import-not-at-top
from sobolev_tf.synthetic_gradients import trainer as sg_trainer  # pylint: disable=g-import-not-at-top

_DEFAULT_DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared",
                             "tensorflow_datasets")
_DEFAULT_CONFIG = os.path.join(os.path.dirname(__file__), "..", "configs",
                               "synthetic_gradients.py")
_CONFIG = config_flags.DEFINE_config_file(
    "config", _DEFAULT_CONFIG,
    "configs/synthetic_gradients.py:<cifar10|cifar10_cpu|imagenet|imagenet3>.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Runs go to <workdir>/<method>.", required=True)
_METHODS = flags.DEFINE_list("methods", None, "Methods to run in turn (default: config.method).")
_DATA_DIR = flags.DEFINE_string(
    "data_dir", os.environ.get("TFDS_DATA_DIR", _DEFAULT_DATA), "TFDS data directory (offline).")
_MAX_MINUTES = flags.DEFINE_float("max_minutes", None,
                                  "Stop each run after this long (it resumes next time).")


def main(argv):
  del argv
  tf_startup.default_script_verbosity()
  config = _CONFIG.value
  checks.check_config_kind(config, _DEFAULT_CONFIG)
  methods = ([config.method] if _METHODS.value is None
             else checks.check_distinct(_METHODS.value, "--methods"))
  unknown = [m for m in methods if m not in sg.METHODS]
  if unknown:  # All of them before the first trains.
    raise ValueError(f"Unknown methods {unknown}; known: {', '.join(sg.METHODS)}.")
  if _MAX_MINUTES.value is not None and not _MAX_MINUTES.value > 0:
    raise ValueError(f"--max_minutes must be > 0, got {_MAX_MINUTES.value}.")
  for method in methods:
    config.method = method
    done = os.path.join(_WORKDIR.value, method, "result.json")
    if os.path.exists(done):
      finished = files.read_json(done, f"Move {os.path.dirname(done)} away to run {method} "
                                 "again.")
      differences = training.config_differences(finished.get("config", {}), config.to_dict(),
                                                sg_trainer.RESUMABLE_KEYS)
      if differences:
        raise ValueError(f"{done} is a run of another configuration ({'; '.join(differences)}); "
                         "use another --workdir.")
      if finished.get("steps") == config.num_steps:
        print(f"[{method}] finished earlier: {done}", flush=True)
        continue  # Otherwise the trainer extends the run, or refuses a shorter budget.
    result = sg_trainer.train_and_evaluate(
        config, os.path.join(_WORKDIR.value, method), data_dir=_DATA_DIR.value,
        max_seconds=None if _MAX_MINUTES.value is None else _MAX_MINUTES.value * 60)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
  app.run(main)

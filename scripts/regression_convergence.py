r"""Figure 2 trained to convergence (configs/regression_convergence.py); resumes from --workdir.

    python scripts/regression_convergence.py
    python scripts/regression_convergence.py --config=configs/regression_convergence.py:quick
    python scripts/regression_convergence.py --settings=relu_20k,softplus_20k  # a part of it
"""

import os

from absl import app
from absl import flags
from ml_collections import config_flags

from sobolev_tf import tf_startup  # pylint: disable=g-import-not-at-top
from sobolev_tf import checks  # pylint: disable=g-import-not-at-top
from sobolev_tf.regression import convergence  # pylint: disable=g-import-not-at-top

_DEFAULT_CONFIG = os.path.join(os.path.dirname(__file__), "..", "configs",
                               "regression_convergence.py")
_CONFIG = config_flags.DEFINE_config_file(
    "config", _DEFAULT_CONFIG,
    "Study configuration: configs/regression_convergence.py[:quick].")
_WORKDIR = flags.DEFINE_string("workdir", None, "Checkpoints, one directory per setting "
                               "(default: the config's workdir).")
_SETTINGS = flags.DEFINE_list("settings", None, "Run and report only these settings of the "
                              "config (default: all); the report lists the rest as not run.")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Report directory (default: the config's "
                                  "results_dir).")


def main(argv):
  del argv
  tf_startup.default_script_verbosity()
  config = _CONFIG.value
  checks.check_config_kind(config, _DEFAULT_CONFIG)
  command = tf_startup.report_command("regression_convergence.py")
  print(convergence.train_and_evaluate(config, _WORKDIR.value or config.workdir,
                                       _OUTPUT_DIR.value or config.results_dir, command.strip(),
                                       settings=_SETTINGS.value))


if __name__ == "__main__":
  app.run(main)

r"""The Figure 2 sensitivity study (configs/regression_sensitivity.py); resumes from --workdir.

    python scripts/regression_sensitivity.py
    python scripts/regression_sensitivity.py --config=configs/regression_sensitivity.py:quick
"""

import os

from absl import app
from absl import flags
from ml_collections import config_flags

from sobolev_tf import tf_startup  # pylint: disable=g-import-not-at-top
from sobolev_tf import checks  # pylint: disable=g-import-not-at-top
from sobolev_tf.regression import sensitivity  # pylint: disable=g-import-not-at-top

_DEFAULT_CONFIG = os.path.join(os.path.dirname(__file__), "..", "configs",
                               "regression_sensitivity.py")
_CONFIG = config_flags.DEFINE_config_file(
    "config", _DEFAULT_CONFIG,
    "Study configuration: configs/regression_sensitivity.py[:quick].")
_WORKDIR = flags.DEFINE_string("workdir", None, "Checkpoints, one directory per setting "
                               "(default: the config's workdir).")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Report directory (default: the config's "
                                  "results_dir).")


def main(argv):
  del argv
  tf_startup.default_script_verbosity()
  config = _CONFIG.value
  checks.check_config_kind(config, _DEFAULT_CONFIG)
  command = tf_startup.report_command("regression_sensitivity.py")
  print(sensitivity.train_and_evaluate(config, _WORKDIR.value or config.workdir,
                                       _OUTPUT_DIR.value or config.results_dir, command.strip()))


if __name__ == "__main__":
  app.run(main)

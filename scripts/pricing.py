r"""Pricing surrogates: Huge & Savine's differential machine learning, reproduced with seeds.

    python scripts/pricing.py                                        # the published table
    python scripts/pricing.py --config=configs/pricing.py:curve      # learning curve to 2^20
    python scripts/pricing.py --config=configs/pricing.py:dimension  # n = 50 and 100

Resumes from the config's workdir (``--workdir``); writes to ``results/pricing/``
(``--output_dir``). See ``configs/pricing.py``.
"""

import os

from absl import app
from absl import flags
from ml_collections import config_flags

from sobolev_tf import tf_startup  # pylint: disable=g-import-not-at-top
from sobolev_tf import checks  # pylint: disable=g-import-not-at-top
from sobolev_tf.pricing import experiment  # pylint: disable=g-import-not-at-top

_DEFAULT_CONFIG = os.path.join(os.path.dirname(__file__), "..", "configs", "pricing.py")
_CONFIG = config_flags.DEFINE_config_file(
    "config", _DEFAULT_CONFIG, "Configuration: configs/pricing.py[:curve|dimension|large|quick].")
_WORKDIR = flags.DEFINE_string("workdir", None, "Checkpoints and finished cells (default: the "
                               "config's workdir).")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Report directory (default: the config's "
                                  "results_dir).")


def main(argv):
  del argv
  tf_startup.default_script_verbosity()
  config = _CONFIG.value
  checks.check_config_kind(config, _DEFAULT_CONFIG)
  command = tf_startup.report_command("pricing.py")
  output_dir = _OUTPUT_DIR.value or config.results_dir
  written = experiment.train_and_evaluate(config, _WORKDIR.value or config.workdir, output_dir,
                                          command.strip())
  print(f"Wrote to {output_dir}/: {', '.join(written)}")


if __name__ == "__main__":
  app.run(main)

r"""Figure 2 and Figures 3, 5-11: the regression grid of section 4.1.

    python scripts/reproduce_figure2.py                    # to convergence, ReLU and tanh
    python scripts/reproduce_figure2.py --config=configs/regression.py:full   # + 10,000 points
    python scripts/reproduce_figure2.py --config=configs/regression.py:fixed_budget_full
    python scripts/reproduce_figure2.py --config=configs/regression.py:quick
    python scripts/reproduce_figure2.py --config=configs/regression.py:paper

Trains 7 functions x {20, 100, 10000} points (the config's) x methods x seeds, grouped into
stacked networks (one compiled computation per group) under one progress bar,
resuming from the workdir if interrupted, prints the Figure 2 table and writes
to the results directory (the config's ``workdir`` and ``results_dir`` unless
--workdir / --output_dir say otherwise): figure2.csv, figure2.md, figure2.png,
curves.png, <function>.png and piecewise_linear.png.
"""

import os

from absl import app
from absl import flags
from ml_collections import config_flags

from sobolev_tf import tf_startup  # pylint: disable=g-import-not-at-top
from sobolev_tf import checks  # pylint: disable=g-import-not-at-top
from sobolev_tf.regression import experiment  # pylint: disable=g-import-not-at-top

_DEFAULT_CONFIG = os.path.join(os.path.dirname(__file__), "..", "configs", "regression.py")
_CONFIG = config_flags.DEFINE_config_file(
    "config", _DEFAULT_CONFIG,
    "Regression configuration (configs/regression.py:<default|full|quick|paper>).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Checkpoints, curves and model grids; reused "
                               "to resume (default: the config's workdir).")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None,
                                  "Tables and plots (default: the config's results_dir).")


def main(argv):
  del argv
  tf_startup.default_script_verbosity()
  command = tf_startup.report_command("reproduce_figure2.py")
  config = _CONFIG.value
  checks.check_config_kind(config, _DEFAULT_CONFIG)
  experiment.train_and_evaluate(config, _WORKDIR.value or config.workdir,
                                _OUTPUT_DIR.value or config.results_dir, command.strip())


if __name__ == "__main__":
  app.run(main)

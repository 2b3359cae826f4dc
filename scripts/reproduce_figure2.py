r"""Figure 2 and Figures 3, 5-11: the regression grid of section 4.1.

    python scripts/reproduce_figure2.py                                   # CPU-scale default
    python scripts/reproduce_figure2.py --config=configs/regression.py:quick
    python scripts/reproduce_figure2.py --config=configs/regression.py:paper \
        --output_dir=results/regression/paper

Trains 7 functions x {20, 100, 10000} points x methods x seeds, grouped into
stacked networks (one compiled computation per group), resuming from
``--workdir`` if interrupted, and writes to ``--output_dir``: figure2.csv,
figure2.md, figure2.png, curves.png, <function>.png and piecewise_linear.png.
"""

import os
import sys

from absl import app
from absl import logging
from absl import flags
from ml_collections import config_flags

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from sobolev_tf.regression import experiment  # pylint: disable=g-import-not-at-top

_CONFIG = config_flags.DEFINE_config_file(
    "config", os.path.join(os.path.dirname(__file__), "..", "configs", "regression.py"),
    "Regression configuration (configs/regression.py:<default|quick|paper>).")
_WORKDIR = flags.DEFINE_string("workdir", "workdirs/regression",
                               "Checkpoints and model grids; reused to resume.")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", "results/regression", "Tables and plots.")


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # TF's checkpoint INFO lines drown progress.
  command = "python scripts/reproduce_figure2.py " + " ".join(sys.argv[1:])
  experiment.train_and_evaluate(_CONFIG.value, _WORKDIR.value, _OUTPUT_DIR.value, command.strip())


if __name__ == "__main__":
  app.run(main)

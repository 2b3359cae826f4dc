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
import time

from absl import app
from absl import logging
from absl import flags
from ml_collections import config_flags

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from sobolev_tf.regression import experiment  # pylint: disable=g-import-not-at-top
from sobolev_tf.regression import report  # pylint: disable=g-import-not-at-top

_CONFIG = config_flags.DEFINE_config_file(
    "config", os.path.join(os.path.dirname(__file__), "..", "configs", "regression.py"),
    "Regression configuration (configs/regression.py:<default|quick|paper>).")
_WORKDIR = flags.DEFINE_string("workdir", "workdirs/regression",
                               "Checkpoints and model grids; reused to resume.")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", "results/regression", "Tables and plots.")


def _names(values):
  """A config list; ``--config.extra_methods=`` (empty) parses as ('',)."""
  return [v for v in values if v != ""]


def grid_runs(config):
  methods = _names(config.methods) + _names(config.extra_methods)
  runs = [experiment.Run(f, n, m, s) for f in config.functions for n in config.sizes
          for m in methods for s in config.seeds]
  runs += [experiment.Run(f, n, m, s) for f in config.functions for n in config.second_order_sizes
           for m in _names(config.second_order_methods) for s in config.seeds]
  return runs


def train_and_evaluate(config, workdir: str, output_dir: str, command: str) -> list:
  start = time.time()
  results = experiment.run_grid(grid_runs(config), config, workdir)
  wall = time.time() - start
  experiment.write_csv(results, os.path.join(output_dir, "figure2.csv"))
  config_name = command.split("--config=")[-1].split()[0] if "--config=" in command else \
      "configs/regression.py (default)"
  header = [
      "# Figure 2: regression on the seven optimisation benchmarks (section 4.1)", "",
      f"Command: `{command}`  ",
      f"Config: `{config_name}`: lr {config.learning_rate}, {config.num_steps} steps, batch "
      f"{config.batch_size} (full batch below), standardised inputs/outputs: "
      f"{config.standardize}, seeds {list(config.seeds)}, test points {config.num_test}.  ",
      f"Wall time of this invocation: {wall / 60:.1f} min on this machine "
      "(2 CPU cores; a resumed run counts only its own part). Per-model wall_seconds in the "
      "CSV is its group's training time divided by the group's size.", "",
      "Test MSE is in the functions' original units. Each cell aggregates the seeds; "
      "see figure2.csv for every run and curves.png for the learning curves.",
  ]
  report.write_markdown(results, os.path.join(output_dir, "figure2.md"), header)
  report.plot_figure2(results, os.path.join(output_dir, "figure2.png"),
                      title=f"{config_name}; bars: mean log10 test MSE, error bars: std over seeds")
  report.plot_curves(results, os.path.join(output_dir, "curves.png"))
  for f in config.functions:
    report.plot_function(f, os.path.join(workdir, "grids"), os.path.join(output_dir, f"{f}.png"))
  report.plot_piecewise_linear(os.path.join(output_dir, "piecewise_linear.png"))
  print(f"wrote {output_dir} in {wall / 60:.1f} min")
  return results


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # TF's checkpoint INFO lines drown progress.
  command = "python scripts/reproduce_figure2.py " + " ".join(sys.argv[1:])
  train_and_evaluate(_CONFIG.value, _WORKDIR.value, _OUTPUT_DIR.value, command.strip())


if __name__ == "__main__":
  app.run(main)

r"""results/synthetic_gradients/<name>.md and .png from the runs of scripts/synthetic_gradients.py.

    python scripts/sg_report.py --workdir=workdirs/sg_cifar10_cpu \
        --config_name=cifar10_cpu --output=results/synthetic_gradients/cifar10

See ``sobolev_tf/synthetic_gradients/report.py``.
"""

import os
import sys

from absl import app
from absl import flags

from sobolev_tf import checks
from sobolev_tf.synthetic_gradients import report

_WORKDIR = flags.DEFINE_string("workdir", None, "Directory with one subdirectory per method.",
                               required=True)
_CONFIG_NAME = flags.DEFINE_string("config_name", "cifar10_cpu",
                                   "Config variant the runs used (named next to every number).")
_OUTPUT = flags.DEFINE_string("output", "results/synthetic_gradients/cifar10",
                              "Output path without extension (.md and .png are written).")


def main(argv):
  del argv
  if not os.path.isdir(_WORKDIR.value):  # A mistyped workdir must not empty the report.
    raise ValueError(f"No workdir {_WORKDIR.value}: nothing to report.")
  checks.check_output_file(_OUTPUT.value + ".md", "report")
  command = "python scripts/sg_report.py " + " ".join(sys.argv[1:])
  print(report.write_report(_WORKDIR.value, _CONFIG_NAME.value, _OUTPUT.value, command))


if __name__ == "__main__":
  app.run(main)

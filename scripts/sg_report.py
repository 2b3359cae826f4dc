r"""results/synthetic_gradients/<name>.{md,csv,png} from the runs of scripts/synthetic_gradients.py.

    python scripts/sg_report.py --workdir=results/synthetic_gradients/seeds/seed0 \
        --workdir=results/synthetic_gradients/seeds/seed1 \
        --workdir=results/synthetic_gradients/seeds/seed2 \
        --config_name=cifar10_cpu --output=results/synthetic_gradients/cifar10

One ``--workdir`` per seed; see ``sobolev_tf/synthetic_gradients/report.py``.
"""

import os
import sys

from absl import app
from absl import flags

from sobolev_tf import checks
from sobolev_tf.synthetic_gradients import report

_WORKDIR = flags.DEFINE_multi_string(
    "workdir", None, "Directory with one subdirectory per method, one seed; repeat per seed.",
    required=True)
_CONFIG_NAME = flags.DEFINE_string("config_name", "cifar10_cpu",
                                   "Config variant the runs used (named next to every number).")
_OUTPUT = flags.DEFINE_string("output", "results/synthetic_gradients/cifar10",
                              "Output path without extension (.md, .csv and .png are written).")


_CONFIGS = os.path.join(os.path.dirname(__file__), "..", "configs", "synthetic_gradients.py")
# How each file of a report starts: an existing file that does not is someone else's.
_STARTS = {".md": report.TITLE, ".csv": ",".join(report.CSV_COLUMNS), ".png": b"\x89PNG"}


def main(argv):
  del argv
  for workdir in _WORKDIR.value:
    if not os.path.isdir(workdir):  # A mistyped workdir must not empty the report.
      raise ValueError(f"No workdir {workdir}: nothing to report.")
  if len(set(_WORKDIR.value)) < len(_WORKDIR.value):
    raise ValueError(f"--workdir names a directory twice: {_WORKDIR.value}.")
  named = checks.load_config_file(f"{_CONFIGS}:{_CONFIG_NAME.value}")  # Unknown names fail.
  for ext, start in _STARTS.items():
    checks.check_output_file(_OUTPUT.value + ext, "report", starts_with=start)
  command = "python scripts/sg_report.py " + " ".join(sys.argv[1:])
  print(report.write_report(_WORKDIR.value, _CONFIG_NAME.value, _OUTPUT.value, command,
                            named_config=named.to_dict()))


if __name__ == "__main__":
  app.run(main)

r"""Trains an Atari teacher with A2C (SM section 3); resumes from --workdir.

    python scripts/train_teacher.py --config=configs/teacher.py:pong --workdir=workdirs/teachers/pong
"""

import os

from absl import app
from absl import flags
from ml_collections import config_flags

from sobolev_tf import tf_startup  # pylint: disable=g-import-not-at-top
from sobolev_tf import checks  # pylint: disable=g-import-not-at-top
from sobolev_tf.atari import train_teacher  # pylint: disable=g-import-not-at-top

_DEFAULT_CONFIG = os.path.join(os.path.dirname(__file__), "..", "configs", "teacher.py")
_CONFIG = config_flags.DEFINE_config_file(
    "config", _DEFAULT_CONFIG,
    "Teacher configuration: configs/teacher.py:<pong|breakout|space_invaders>.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Checkpoints, TensorBoard, episodes.csv.",
                               required=True)
_MAX_HOURS = flags.DEFINE_float("max_hours", None, "Stop (with a checkpoint) after this long.",
                                 lower_bound=0.0)


def main(argv):
  del argv
  tf_startup.default_script_verbosity()
  max_seconds = None if _MAX_HOURS.value is None else _MAX_HOURS.value * 3600
  checks.check_config_kind(_CONFIG.value, _DEFAULT_CONFIG)
  result = train_teacher.train_and_evaluate(_CONFIG.value, _WORKDIR.value,
                                            max_seconds=max_seconds)
  print(result)


if __name__ == "__main__":
  app.run(main)

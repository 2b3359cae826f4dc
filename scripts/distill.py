r"""Distils a teacher's recorded rollouts into the SM section 3 student; resumes from --workdir.

    python scripts/distill.py --config=configs/distill.py:sobolev \
        --config.data_path=data/distillation/pong.npz \
        --config.teacher_workdir=teachers/pong --config.train_fraction=0.1 \
        --workdir=workdirs/distill/pong_sobolev_10
"""

import json
import os

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from sobolev_tf.atari import distill  # pylint: disable=g-import-not-at-top
from sobolev_tf.atari import train_teacher  # pylint: disable=g-import-not-at-top

_CONFIG = config_flags.DEFINE_config_file(
    "config", os.path.join(os.path.dirname(__file__), "..", "configs", "distill.py"),
    "Distillation configuration: configs/distill.py:<regular|sobolev>.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Checkpoints and curves.csv.", required=True)
_GAME = flags.DEFINE_string("game", "pong", "Game of the teacher.")


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  config = _CONFIG.value
  teacher = None
  if config.method == "sobolev":
    teacher, _ = train_teacher.load_teacher(config.teacher_workdir, _GAME.value)
  result = distill.train_and_evaluate(config, _WORKDIR.value, teacher_logits=teacher,
                                      log=lambda s: print(s, flush=True))
  print(json.dumps(result))


if __name__ == "__main__":
  app.run(main)

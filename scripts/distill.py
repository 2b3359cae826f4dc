r"""Distils a teacher's recorded rollouts into the SM section 3 student; resumes from --workdir.

    python scripts/distill.py --config=configs/distill.py:sobolev \
        --config.data_path=data/distillation/pong.npz \
        --teachers_dir=teachers --game=pong --config.train_fraction=0.1 \
        --workdir=workdirs/distill/pong_sobolev_10
"""

import json
import os

from absl import app
from absl import flags
from ml_collections import config_flags

from sobolev_tf import tf_startup  # pylint: disable=g-import-not-at-top
from sobolev_tf.atari import distill  # pylint: disable=g-import-not-at-top
from sobolev_tf.atari import games  # pylint: disable=g-import-not-at-top
from sobolev_tf.atari import train_teacher  # pylint: disable=g-import-not-at-top

_CONFIG = config_flags.DEFINE_config_file(
    "config", os.path.join(os.path.dirname(__file__), "..", "configs", "distill.py"),
    "Distillation configuration: configs/distill.py:<regular|sobolev>.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Checkpoints and curves.csv.", required=True)
_GAME = flags.DEFINE_string("game", "pong", "Game of the teacher (and of the data).")
_TEACHERS_DIR = flags.DEFINE_string(
    "teachers_dir", os.path.join(os.path.dirname(__file__), "..", "teachers"),
    "Directory of teacher workdirs, one per game: <teachers_dir>/<game>/ (default: the "
    "shipped teachers/).")


def main(argv):
  del argv
  tf_startup.default_script_verbosity()
  config = _CONFIG.value
  game = games.get_game(_GAME.value).name  # Unknown names fail for either method.
  teacher = None
  if config.method == "sobolev":
    teacher, _ = train_teacher.load_teacher(os.path.join(_TEACHERS_DIR.value, game), game)
  result = distill.train_and_evaluate(config, _WORKDIR.value, teacher_logits=teacher)
  print(json.dumps(result))


if __name__ == "__main__":
  app.run(main)

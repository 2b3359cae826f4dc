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
from sobolev_tf import checks  # pylint: disable=g-import-not-at-top
from sobolev_tf.atari import dataset  # pylint: disable=g-import-not-at-top
from sobolev_tf.atari import distill  # pylint: disable=g-import-not-at-top
from sobolev_tf.atari import games  # pylint: disable=g-import-not-at-top
from sobolev_tf.atari import train_teacher  # pylint: disable=g-import-not-at-top

_DEFAULT_CONFIG = os.path.join(os.path.dirname(__file__), "..", "configs", "distill.py")
_CONFIG = config_flags.DEFINE_config_file(
    "config", _DEFAULT_CONFIG,
    "Distillation configuration: configs/distill.py:<regular|sobolev>.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Checkpoints and curves.csv.", required=True)
_GAME = flags.DEFINE_string(
    "game", None, "Game of the teacher; it must be the data's game (default: the data's).")
_TEACHERS_DIR = flags.DEFINE_string(
    "teachers_dir", os.path.join(os.path.dirname(__file__), "..", "teachers"),
    "Directory of teacher workdirs, one per game: <teachers_dir>/<game>/ (default: the "
    "shipped teachers/).")


def main(argv):
  del argv
  tf_startup.default_script_verbosity()
  config = _CONFIG.value
  checks.check_config_kind(config, _DEFAULT_CONFIG)
  if _GAME.value is not None:
    games.get_game(_GAME.value)  # An unknown name fails first, for either method.
  data_game = dataset.read_meta(config.data_path).get("game")
  if _GAME.value is None and data_game is None:
    raise ValueError(f"{config.data_path} does not record its game: pass --game.")
  game = games.get_game(_GAME.value or data_game).name
  if data_game is not None and games.get_game(data_game).name != game:
    raise ValueError(f"--game={_GAME.value} but {config.data_path} holds {data_game} states; "
                     f"pass --game={data_game} or the dataset of {_GAME.value}.")
  teacher = None
  if config.method == "sobolev":
    teacher, _ = train_teacher.load_teacher(os.path.join(_TEACHERS_DIR.value, game), game)
  result = distill.train_and_evaluate(config, _WORKDIR.value, teacher_logits=teacher)
  print(json.dumps(result))


if __name__ == "__main__":
  app.run(main)

r"""Records a teacher's rollouts for distillation (SM section 3); never into git.

    python scripts/collect_atari.py --game=pong --teacher_workdir=workdirs/teachers/pong \
        --data_dir=data/distillation --num_states=100000
"""

import os

from absl import app
from absl import flags
from absl import logging

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from sobolev_tf.atari import collect  # pylint: disable=g-import-not-at-top
from sobolev_tf.atari import dataset  # pylint: disable=g-import-not-at-top
from sobolev_tf.atari import games  # pylint: disable=g-import-not-at-top
from sobolev_tf.atari import train_teacher  # pylint: disable=g-import-not-at-top

_GAME = flags.DEFINE_string("game", "pong", "Game name.")
_TEACHER = flags.DEFINE_string("teacher_workdir", None, "Teacher workdir (checkpoints/).",
                               required=True)
_DATA_DIR = flags.DEFINE_string("data_dir", "data/distillation", "Where <game>.npz goes.")
_NUM_STATES = flags.DEFINE_integer("num_states", 100_000, "Agent steps to record (paper: 100K).")
_SEED = flags.DEFINE_integer("seed", 0, "Environment and action seed.")


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  spec = games.get_game(_GAME.value)
  net, latest = train_teacher.load_teacher(_TEACHER.value, spec.name)
  data = collect.collect(net, spec.name, _NUM_STATES.value, seed=_SEED.value,
                         meta=dict(teacher_checkpoint=latest),
                         log=lambda s: print(s, flush=True))
  path = os.path.join(_DATA_DIR.value, f"{spec.name}.npz")
  dataset.save(data, path)
  print(f"wrote {path}: {len(data)} states, {len(data.frames)} frames, "
        f"{data.meta['episodes_completed']} complete episodes")


if __name__ == "__main__":
  app.run(main)

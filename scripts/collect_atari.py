r"""Records a teacher's rollouts for distillation (SM section 3); never into git.

    python scripts/collect_atari.py --game=pong --teachers_dir=teachers \
        --data_dir=data/distillation --num_states=100000
"""

import os

from absl import app
from absl import flags

from sobolev_tf import tf_startup  # pylint: disable=g-import-not-at-top
from sobolev_tf import checks  # pylint: disable=g-import-not-at-top
from sobolev_tf.atari import collect  # pylint: disable=g-import-not-at-top
from sobolev_tf.atari import dataset  # pylint: disable=g-import-not-at-top
from sobolev_tf.atari import games  # pylint: disable=g-import-not-at-top
from sobolev_tf.atari import train_teacher  # pylint: disable=g-import-not-at-top

_GAME = flags.DEFINE_string("game", "pong", "Game name.")
_TEACHERS_DIR = flags.DEFINE_string(
    "teachers_dir", os.path.join(os.path.dirname(__file__), "..", "teachers"),
    "Directory of teacher workdirs, one per game: <teachers_dir>/<game>/ (default: the "
    "shipped teachers/).")
_DATA_DIR = flags.DEFINE_string("data_dir", "data/distillation", "Where <game>.npz goes.")
_NUM_STATES = flags.DEFINE_integer("num_states", 100_000, "Agent steps to record (paper: 100K).",
                                   lower_bound=1)
_SEED = flags.DEFINE_integer("seed", 0, "Environment and action seed.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace an existing <data_dir>/<game>.npz.")


def main(argv):
  del argv
  tf_startup.default_script_verbosity()
  spec = games.get_game(_GAME.value)
  checks.check_writable_directory(_DATA_DIR.value, "dataset")  # Before the teacher plays.
  path = os.path.join(_DATA_DIR.value, f"{spec.name}.npz")
  if os.path.exists(path) and not _OVERWRITE.value:
    raise ValueError(f"{path} exists (the runs distilled from it would no longer match it); "
                     "pass --overwrite to replace it, or another --data_dir.")
  net, latest = train_teacher.load_teacher(os.path.join(_TEACHERS_DIR.value, spec.name),
                                           spec.name)
  data = collect.collect(net, spec.name, _NUM_STATES.value, seed=_SEED.value,
                         meta=dict(teacher_checkpoint=latest))
  dataset.save(data, path)
  print(f"wrote {path}: {len(data)} states, {len(data.frames)} frames, "
        f"{data.meta['episodes_completed']} complete episodes")


if __name__ == "__main__":
  app.run(main)

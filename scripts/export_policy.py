r"""Exports a teacher or a distilled student as a SavedModel (uint8 [B, 84, 84, 4] -> probabilities).

    python scripts/export_policy.py --game=pong --workdir=workdirs/teachers/pong \
        --saved_model=teachers/pong/saved_model --weights_dir=teachers/pong

    python scripts/export_policy.py --game=pong --student \
        --workdir=workdirs/distill_grid/pong/frac0.1/sobolev/lr0.0001/seed0 \
        --saved_model=exports/pong_sobolev_10

``--weights_dir`` (teachers) also writes the weights alone (no optimiser state; the shipped
teachers) to ``<weights_dir>/weights/``; ``load_teacher`` accepts ``<weights_dir>`` like a
workdir, and so the other scripts' ``--teachers_dir`` (the directory holding ``<game>/``).
"""


from absl import app
from absl import flags

from sobolev_tf import tf_startup  # pylint: disable=g-import-not-at-top
from sobolev_tf import checks  # pylint: disable=g-import-not-at-top
from sobolev_tf import files  # pylint: disable=g-import-not-at-top
from sobolev_tf.atari import distill  # pylint: disable=g-import-not-at-top
from sobolev_tf.atari import export  # pylint: disable=g-import-not-at-top
from sobolev_tf.atari import games  # pylint: disable=g-import-not-at-top
from sobolev_tf.atari import train_teacher  # pylint: disable=g-import-not-at-top

_GAME = flags.DEFINE_string("game", "pong", "Game name.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Teacher or distillation workdir.",
                                required=True)
_STUDENT = flags.DEFINE_bool("student", False, "--workdir is a distillation run (a student).")
_SAVED_MODEL = flags.DEFINE_string("saved_model", None, "Output directory.", required=True)
_WEIGHTS_DIR = flags.DEFINE_string("weights_dir", None, "Also write weights only here.")


def main(argv):
  del argv
  tf_startup.default_script_verbosity()
  spec = games.get_game(_GAME.value)
  if _STUDENT.value and _WEIGHTS_DIR.value:
    raise ValueError("--weights_dir ships teachers only; drop it with --student.")
  files.check_saved_model_destination(_SAVED_MODEL.value.rstrip("/"))  # Before any work.
  if _WEIGHTS_DIR.value:
    checks.check_writable_directory(_WEIGHTS_DIR.value, "weights")
    train_teacher.check_weights_destination(_WEIGHTS_DIR.value)
  if _STUDENT.value:
    net, latest = distill.load_student(_WORKDIR.value, spec.num_actions)
  else:
    net, latest = train_teacher.load_teacher(_WORKDIR.value, spec.name)
  export.export_policy(net, spec.name, spec.num_actions, _SAVED_MODEL.value)
  print(f"exported {latest} to {_SAVED_MODEL.value}")
  if _WEIGHTS_DIR.value:
    print(f"weights: {train_teacher.save_teacher_weights(net, _WEIGHTS_DIR.value)}")


if __name__ == "__main__":
  app.run(main)

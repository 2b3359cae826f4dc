r"""Mean score of a teacher (checkpoint) playing full games; protocol in sobolev_tf/atari/evaluation.py.

    python scripts/evaluate_policy.py --game=pong --workdir=workdirs/teachers/pong --episodes=10
"""

import json
import sys

from absl import app
from absl import flags

import sobolev_tf  # First: it imports TensorFlow without its C++ start-up lines.
import tensorflow as tf  # pylint: disable=g-import-not-at-top

from sobolev_tf import checks  # pylint: disable=g-import-not-at-top
from sobolev_tf import tf_startup  # pylint: disable=g-import-not-at-top
from sobolev_tf.atari import evaluation  # pylint: disable=g-import-not-at-top
from sobolev_tf.atari import games  # pylint: disable=g-import-not-at-top
from sobolev_tf.atari import train_teacher  # pylint: disable=g-import-not-at-top
from sobolev_tf.files import write_text_atomic  # pylint: disable=g-import-not-at-top

_GAME = flags.DEFINE_string("game", "pong", "Game name.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Teacher workdir (checkpoints/).", required=True)
_EPISODES = flags.DEFINE_integer("episodes", 10, "Games to score.", lower_bound=1)
_GREEDY = flags.DEFINE_bool("greedy", False, "Most probable action instead of sampling.")
_SEED = flags.DEFINE_integer("seed", 1000, "Environment and action-sampling seed.")
_OUTPUT = flags.DEFINE_string("output", None, "Also write the result as JSON here "
                              "(scripts/teachers_report.py reads <workdir>/evaluation.json).")


def main(argv):
  del argv
  tf_startup.default_script_verbosity()
  if _OUTPUT.value:  # Before the games are played.
    checks.check_output_file(_OUTPUT.value, "result")
    evaluation.check_result_destination(_OUTPUT.value)
  spec = games.get_game(_GAME.value)
  net, latest = train_teacher.load_teacher(_WORKDIR.value, spec.name)
  result = evaluation.evaluate_policy(tf.function(net), spec.name, _EPISODES.value,
                                      seed=_SEED.value, greedy=_GREEDY.value)
  result["checkpoint"] = latest
  result["command"] = "python scripts/evaluate_policy.py " + " ".join(sys.argv[1:])
  print(json.dumps(result))
  if _OUTPUT.value:
    write_text_atomic(_OUTPUT.value, json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
  app.run(main)

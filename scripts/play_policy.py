r"""Plays games with an exported policy (plain TensorFlow), reports scores, optionally a GIF.

    python scripts/play_policy.py --saved_model=teachers/pong/saved_model --game=pong \
        --episodes=3 --gif=pong.gif
"""

import json

from absl import app
from absl import flags

import sobolev_tf  # First: it imports TensorFlow without its C++ start-up lines.
import tensorflow as tf  # pylint: disable=g-import-not-at-top

from sobolev_tf import checks  # pylint: disable=g-import-not-at-top
from sobolev_tf import tf_startup  # pylint: disable=g-import-not-at-top
from sobolev_tf.atari import evaluation  # pylint: disable=g-import-not-at-top
from sobolev_tf.atari import export  # pylint: disable=g-import-not-at-top
from sobolev_tf.atari import games  # pylint: disable=g-import-not-at-top
from sobolev_tf.files import write_atomic  # pylint: disable=g-import-not-at-top

_SAVED_MODEL = flags.DEFINE_string("saved_model", None, "Exported policy.", required=True)
_GAME = flags.DEFINE_string("game", "pong", "Game name.")
_EPISODES = flags.DEFINE_integer("episodes", 3, "Games to play.", lower_bound=1)
_GREEDY = flags.DEFINE_bool("greedy", False, "Most probable action instead of sampling.")
_GIF = flags.DEFINE_string("gif", None, "Write the first game's frames as a GIF here.")
_GIF_STEPS = flags.DEFINE_integer("gif_steps", 2000, "At most this many agent steps in the GIF.",
                                  lower_bound=1)


def write_gif(logits_fn, game: str, path: str, max_steps: int, seed: int = 0) -> int:
  from PIL import Image  # pylint: disable=g-import-not-at-top
  env = games.VectorEnv(games.get_game(game), 1, seed=seed)
  obs = env.reset()
  images = []
  for step in range(max_steps):
    images.append(Image.fromarray(obs[0, ..., 3]).resize((168, 168)))
    action = tf.random.stateless_categorical(logits_fn(tf.constant(obs)), 1,
                                             seed=[seed, step])[:, 0].numpy()
    obs, _, game_over, _, _ = env.step(action)
    if game_over[0]:
      break
  env.close()
  write_atomic(path, lambda tmp: images[0].save(tmp, save_all=True, append_images=images[1:],
                                                duration=40, loop=0))
  return len(images)


def main(argv):
  del argv
  tf_startup.default_script_verbosity()
  if _GIF.value:  # Before the games are played.
    checks.check_output_file(_GIF.value, "GIF", suffix=".gif", starts_with=b"GIF8")
  logits_fn, _ = export.load_policy(_SAVED_MODEL.value, _GAME.value)
  result = evaluation.evaluate_policy(logits_fn, _GAME.value, _EPISODES.value,
                                      greedy=_GREEDY.value)
  print(json.dumps({k: v for k, v in result.items()}))
  if _GIF.value:
    n = write_gif(logits_fn, _GAME.value, _GIF.value, _GIF_STEPS.value)
    print(f"wrote {_GIF.value} ({n} frames)")


if __name__ == "__main__":
  app.run(main)

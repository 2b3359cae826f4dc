"""SavedModel export: reload without this package, identical outputs, play and GIF."""

import os
import subprocess
import sys
import tempfile

import numpy as np
import tensorflow as tf

import sobolev_tf as st
from sobolev_tf.atari import networks
from sobolev_tf.atari import export
from sobolev_tf.atari import games
from sobolev_tf.atari import train_teacher

_TEACHERS = os.path.join(os.path.dirname(__file__), "..", "..", "teachers")


def _plain_tensorflow_probabilities(saved_model: str, frames: np.ndarray) -> np.ndarray:
  """The SavedModel's serving probabilities, computed by a fresh interpreter that
  never imports sobolev_tf or sonnet."""
  with tempfile.NamedTemporaryFile(suffix=".npy", delete=False) as f:
    np.save(f, frames)
  frames_path = f.name
  code = (
      "import sys, numpy as np, tensorflow as tf\n"
      f"m = tf.saved_model.load({saved_model!r})\n"
      f"x = np.load({frames_path!r})\n"
      "p = m.signatures['serving_default'](frames=tf.constant(x))['probabilities']\n"
      "assert 'sobolev_tf' not in sys.modules and 'sonnet' not in sys.modules\n"
      "print(repr(p.numpy().tolist()))\n")
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
  try:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True, cwd="/")
  finally:
    os.remove(frames_path)
  return np.array(eval(out.stdout.strip().splitlines()[-1]))  # pylint: disable=eval-used


class ExportTest(tf.test.TestCase):

  def test_export_reload_in_plain_tensorflow_and_play(self):
    tf.random.set_seed(0)
    student = networks.AtariStudent(3)
    path = os.path.join(self.create_tempdir().full_path, "policy")
    export.export_policy(student, "pong", 3, path)
    self.assertFalse(os.path.exists(path + ".tmp"))
    frames = np.random.default_rng(0).integers(0, 255, (5, 84, 84, 4), dtype=np.uint8)
    expected = tf.nn.softmax(student(tf.constant(frames))).numpy()
    probs = _plain_tensorflow_probabilities(path, frames)
    self.assertAllClose(probs, expected, atol=1e-6)

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "scripts"))
    import play_policy  # pylint: disable=g-import-not-at-top
    logits_fn, policy = export.load_policy(path, "pong")
    self.assertEqual(int(policy.num_actions.numpy()), 3)
    gif = os.path.join(self.create_tempdir().full_path, "pong.gif")
    self.assertEqual(play_policy.write_gif(logits_fn, "pong", gif, max_steps=20), 20)
    self.assertGreater(os.path.getsize(gif), 1000)
    with self.assertRaisesRegex(ValueError, "No SavedModel directory"):
      export.load_policy(path + "-missing")

  def test_shipped_teachers_saved_models_match_their_weights(self):
    shipped = [g for g in sorted(games.GAMES)
               if os.path.isdir(os.path.join(_TEACHERS, g, train_teacher.WEIGHTS))]
    self.assertIn("pong", shipped)
    frames = np.random.default_rng(1).integers(0, 255, (4, 84, 84, 4), dtype=np.uint8)
    for game in shipped:
      with self.subTest(game=game):
        net, _ = train_teacher.load_teacher(os.path.join(_TEACHERS, game), game)
        expected = tf.nn.softmax(net(tf.constant(frames))).numpy()
        self.assertEqual(expected.shape, (4, games.get_game(game).num_actions))
        probs = _plain_tensorflow_probabilities(
            os.path.abspath(os.path.join(_TEACHERS, game, "saved_model")), frames)
        self.assertAllClose(probs, expected, atol=1e-5)


if __name__ == "__main__":
  tf.test.main()

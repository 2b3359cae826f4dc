"""SavedModel export: reload without this package, identical outputs, play and GIF."""

import os
import subprocess
import sys

import numpy as np
import tensorflow as tf

import sobolev_tf as st
from sobolev_tf.atari import export


class ExportTest(tf.test.TestCase):

  def test_export_reload_in_plain_tensorflow_and_play(self):
    tf.random.set_seed(0)
    student = st.AtariStudent(3)
    path = os.path.join(self.create_tempdir().full_path, "policy")
    export.export_policy(student, "pong", 3, path)
    self.assertFalse(os.path.exists(path + ".tmp"))
    frames = np.random.default_rng(0).integers(0, 255, (5, 84, 84, 4), dtype=np.uint8)
    expected = tf.nn.softmax(student(tf.constant(frames))).numpy()
    np.save(os.path.join(path, "..", "frames.npy"), frames)
    # A fresh interpreter that never imports sobolev_tf or sonnet.
    code = (
        "import sys, numpy as np, tensorflow as tf\n"
        f"m = tf.saved_model.load({path!r})\n"
        f"x = np.load({os.path.join(path, '..', 'frames.npy')!r})\n"
        "p = m.signatures['serving_default'](frames=tf.constant(x))['probabilities']\n"
        "assert 'sobolev_tf' not in sys.modules and 'sonnet' not in sys.modules\n"
        "print(repr(p.numpy().tolist()))\n")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True, cwd="/")
    probs = np.array(eval(out.stdout.strip().splitlines()[-1]))  # pylint: disable=eval-used
    self.assertAllClose(probs, expected, atol=1e-6)

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "scripts"))
    import play_policy  # pylint: disable=g-import-not-at-top
    logits_fn, policy = play_policy.load_policy(path)
    self.assertEqual(int(policy.num_actions.numpy()), 3)
    gif = os.path.join(self.create_tempdir().full_path, "pong.gif")
    self.assertEqual(play_policy.write_gif(logits_fn, "pong", gif, max_steps=20), 20)
    self.assertGreater(os.path.getsize(gif), 1000)
    with self.assertRaisesRegex(ValueError, "No SavedModel directory"):
      play_policy.load_policy(path + "-missing")


if __name__ == "__main__":
  tf.test.main()

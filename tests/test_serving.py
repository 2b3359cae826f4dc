"""export_with_derivatives: loaded by plain TensorFlow, equal to the in-memory derivatives."""

import os
import subprocess
import sys

import keras
import numpy as np
import sonnet as snt
import tensorflow as tf

import sobolev_tf as st
from sobolev_tf import files

# Loads and evaluates a SavedModel in a fresh interpreter that cannot import sobolev_tf.
_LOAD_SCRIPT = r"""
import sys
sys.modules["sobolev_tf"] = None  # Any import of the package now fails.
import numpy as np, tensorflow as tf
served = tf.saved_model.load(sys.argv[1])
out = served.signatures["serving_default"](x=tf.constant(np.load(sys.argv[2])))
np.savez(sys.argv[3], **{k: v.numpy() for k, v in out.items()})
"""


class ExportWithDerivativesTest(tf.test.TestCase):

  def _load_elsewhere(self, path, x):
    tmp = self.create_tempdir().full_path
    np.save(os.path.join(tmp, "x.npy"), x)
    out = os.path.join(tmp, "out.npz")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    run = subprocess.run([sys.executable, "-c", _LOAD_SCRIPT, path, os.path.join(tmp, "x.npy"),
                          out], capture_output=True, text=True, env=env, cwd=tmp, timeout=300)
    self.assertEqual(run.returncode, 0, msg=run.stderr[-3000:])
    return dict(np.load(out))

  def test_keras_vector_output_without_the_package(self):
    keras.utils.set_random_seed(0)
    net = keras.Sequential([keras.Input((3,)), keras.layers.Dense(8, "tanh"),
                            keras.layers.Dense(2)])
    x = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    path = os.path.join(self.create_tempdir().full_path, "surrogate")
    st.export_with_derivatives(net, path, tf.TensorSpec([None, 3], tf.float32), order=2)
    out = self._load_elsewhere(path, x)
    y, jac, hess = st.derivative_tensors(net, x, 2)
    self.assertEqual(out["derivative"].shape, (5, 2, 3))
    self.assertAllClose(out["value"], y)
    self.assertAllClose(out["derivative"], jac)
    self.assertAllClose(out["derivative_2"], hess)

  def test_sonnet_scalar_output_in_original_units(self):
    rng = np.random.default_rng(1)
    x = rng.normal(5.0, 3.0, (40, 2))
    y = np.sin(x[:, 0]) * x[:, 1]
    scaler = st.SobolevScaler().fit(x, y)

    class ScalarMLP(snt.Module):

      def __init__(self):
        super().__init__()
        self.mlp = snt.nets.MLP([8, 1], activation=tf.nn.softplus)

      def __call__(self, z):
        return self.mlp(z)[:, 0]

    net = ScalarMLP()
    original = scaler.in_original_units(net)
    path = os.path.join(self.create_tempdir().full_path, "scalar")
    xs = tf.constant(x[:6], tf.float64)
    net(xs)  # Creates the variables.
    st.export_with_derivatives(original, path, tf.TensorSpec([None, 2], tf.float64))
    out = self._load_elsewhere(path, x[:6])
    value, grad = st.value_and_gradient(original, xs)
    self.assertEqual(out["derivative"].shape, (6, 2))
    self.assertAllClose(out["value"], value)
    self.assertAllClose(out["derivative"], grad)
    # Original units: the chain rule of the scaler, by hand.
    _, grad_scaled = st.value_and_gradient(net, scaler.transform(x=xs))
    self.assertAllClose(grad, grad_scaled * scaler.y_scale / scaler.x_scale)

  def test_refuses_to_replace_other_files_and_bad_signatures(self):
    net = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    spec = tf.TensorSpec([None, 2], tf.float32)
    workdir = self.create_tempdir().full_path
    precious = os.path.join(workdir, "weights.npz")
    with open(precious, "w") as f:
      f.write("keep me")
    with self.assertRaisesRegex(ValueError, "weights.npz.*refusing to replace"):
      st.export_with_derivatives(net, workdir, spec)
    with open(precious) as f:
      self.assertEqual(f.read(), "keep me")
    path = os.path.join(workdir, "served")
    st.export_with_derivatives(net, path, spec)
    other = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, kernel_initializer="ones")])
    st.export_with_derivatives(other, path, [spec])  # An earlier export is replaced.
    self.assertFalse(os.path.exists(path + ".tmp") or os.path.exists(path + ".old"))
    out = tf.saved_model.load(path).signatures["serving_default"](x=tf.ones([3, 2]))
    self.assertAllClose(out["derivative"], np.ones((3, 1, 2)))  # The second model's Jacobian.

  def test_a_write_killed_between_its_renames_keeps_the_earlier_model(self):
    net = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, kernel_initializer="ones")])
    spec = tf.TensorSpec([None, 2], tf.float32)
    path = os.path.join(self.create_tempdir().full_path, "served")
    st.export_with_derivatives(net, path, spec)
    os.replace(path, path + ".old")  # Killed after moving the earlier model aside.

    def failing_save(tmp):
      raise RuntimeError("disk full")

    with self.assertRaisesRegex(RuntimeError, "disk full"):
      files.write_saved_model_atomic(path, failing_save)
    out = tf.saved_model.load(path).signatures["serving_default"](x=tf.ones([1, 2]))
    self.assertAllClose(out["value"], [[2.0]])
    with self.assertRaisesRegex(ValueError, "floating"):
      st.export_with_derivatives(net, path, tf.TensorSpec([None, 2], tf.int32))
    with self.assertRaisesRegex(ValueError, "one tf.TensorSpec"):
      st.export_with_derivatives(net, path, [spec, spec])
    with self.assertRaisesRegex(ValueError, "order must be"):
      st.export_with_derivatives(net, path, spec, order=0)


if __name__ == "__main__":
  tf.test.main()

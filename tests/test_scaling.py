"""SobolevScaler (chain rule against autodiff) and Huge & Savine's balancing."""

import os

import keras
import numpy as np
import tensorflow as tf

import sobolev_tf as st


def vector_fn(x):
  """``[B, 3] -> [B, 2]`` with non-trivial first and second derivatives."""
  return tf.stack([tf.sin(x[:, 0]) * x[:, 1] + x[:, 2]**2, tf.exp(0.3 * x[:, 0] * x[:, 2])], 1)


class SobolevScalerTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    rng = np.random.default_rng(0)
    self.x = tf.constant(rng.normal([1.0, -3.0, 10.0], [0.5, 4.0, 20.0], (50, 3)), tf.float64)
    self.y, self.dy, self.d2y = st.derivative_tensors(vector_fn, self.x, 2)
    self.scaler = st.SobolevScaler().fit(self.x, self.y, self.dy)

  def test_scaled_derivatives_are_those_of_the_scaled_function(self):
    sc = self.scaler
    self.assertAllClose(sc.x_offset, np.mean(self.x, 0))
    self.assertAllClose(sc.y_scale, np.std(self.y, 0))
    u, v, dv, d2v = sc.transform(self.x, self.y, self.dy, self.d2y)
    # g(u) = (f(c + s u) - m) / t, differentiated by autodiff.
    scaled_fn = lambda z: (vector_fn(z * sc.x_scale + sc.x_offset) - sc.y_offset) / sc.y_scale
    g, dg, d2g = st.derivative_tensors(scaled_fn, u, 2)
    self.assertAllClose(v, g)
    self.assertAllClose(dv, dg)
    self.assertAllClose(d2v, d2g)
    self.assertAllClose(np.mean(u, 0), np.zeros(3), atol=1e-12)
    self.assertAllClose(np.std(v, 0), np.ones(2))
    back = sc.inverse_transform(u, v, dv, d2v)
    for a, b in zip(back, (self.x, self.y, self.dy, self.d2y)):
      self.assertAllClose(a, b)

  def test_numpy_in_numpy_out_and_single_array(self):
    x = self.x.numpy()
    u = self.scaler.transform(x=x)
    self.assertIsInstance(u, np.ndarray)
    self.assertAllClose(u, self.scaler.transform(x=self.x))
    self.assertIsInstance(self.scaler.transform(x=tf.cast(self.x, tf.float32)), tf.Tensor)

  def test_model_in_original_units(self):
    sc = self.scaler
    u = sc.transform(x=self.x)
    net = lambda z: tf.stack([tf.tanh(z[:, 0] + z[:, 1]), z[:, 2] * z[:, 0]], 1)
    _, d_scaled = st.derivative_tensors(net, u, 1)
    y, d_original = st.derivative_tensors(sc.in_original_units(net), self.x, 1)
    y_back, d_back = sc.inverse_transform(y=net(u), dy=d_scaled)
    self.assertAllClose(y, y_back)
    self.assertAllClose(d_original, d_back)

  def test_fixed_statistics_and_constant_features(self):
    x = np.stack([np.linspace(-5, 5, 10), np.full(10, 2.0)], 1)
    y = np.full(10, 7.0)
    sc = st.SobolevScaler(x_offset=[0.0, 1.0]).fit(x, y)
    self.assertAllClose(sc.x_offset, [0.0, 1.0])
    self.assertAllClose(sc.x_scale, [np.std(x[:, 0]), 1.0])  # Constant input: scale 1.
    self.assertAllClose(sc.y_scale, 1.0)
    single = st.SobolevScaler().fit(x[:1], y[:1])
    self.assertAllClose(single.y_scale, 1.0)

  def test_errors(self):
    with self.assertRaisesRegex(ValueError, "not fitted"):
      st.SobolevScaler().transform(x=self.x)
    with self.assertRaisesRegex(ValueError, "x_scale must be positive"):
      st.SobolevScaler(x_scale=0.0)
    with self.assertRaisesRegex(ValueError, r"dy has shape \(50, 3, 2\)"):
      self.scaler.transform(dy=tf.transpose(self.dy, [0, 2, 1]))
    with self.assertRaisesRegex(ValueError, "x has shape"):
      self.scaler.transform(x=self.x[:, :2])
    with self.assertRaisesRegex(ValueError, "share a non-empty batch"):
      st.SobolevScaler().fit(self.x, self.y[:3])
    with self.assertRaisesRegex(ValueError, r"balance\(\) needs the gradients"):
      st.SobolevScaler().fit(self.x, self.y).balance()


class DerivativeBalanceTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    rng = np.random.default_rng(1)
    x = rng.uniform(-3, 3, (40, 2))
    y = np.sin(x[:, 0]) + 10 * x[:, 1]
    dy = np.stack([np.cos(x[:, 0]), np.full(40, 10.0)], 1)
    self.scaler = st.SobolevScaler().fit(x, y, dy)
    self.x, self.y, self.dy = (a.astype(np.float32) for a in self.scaler.transform(x, y, dy))

  def test_weights_are_huge_and_savine(self):
    balance = self.scaler.balance()
    rms = np.sqrt(np.mean(self.dy**2, axis=0))
    self.assertAllClose(balance.value_weight, 1 / 3)  # 1 / (1 + lam n), lam = 1, n = 2.
    self.assertAllClose(balance.derivative_weight, 2 / 3)
    self.assertAllClose(balance.partial_weights, 1 / rms**2 / 2, rtol=1e-5)
    self.assertAllClose(st.DerivativeBalance.from_derivatives(self.dy, lam=0.5).value_weight, 0.5)

  def test_sobolev_loss_with_balance_is_their_loss(self):
    balance = self.scaler.balance()
    net = lambda z: tf.reduce_sum(tf.tanh(z * [0.5, -1.0] + 0.1), axis=1)
    total, terms = st.sobolev_loss(net, self.x, (self.y, self.dy), balance=balance)
    pred, grad = (t.numpy() for t in st.value_and_gradient(net, self.x))
    lam = 1 / np.sqrt(np.mean(self.dy**2, axis=0))
    # alpha * MSE(y) + beta * MSE(lambda_j dy_j), the mean taken over examples and inputs.
    expected = (np.mean((pred - self.y)**2) / 3
                + 2 / 3 * np.mean((lam * (grad - self.dy))**2))
    self.assertAllClose(total, expected, rtol=1e-5)
    self.assertAllClose(terms["value"], np.mean((pred - self.y)**2), rtol=1e-5)
    with self.assertRaisesRegex(ValueError, "balance weighs first derivatives"):
      st.sobolev_loss(net, self.x, (self.y, self.dy), balance=balance, stochastic=True,
                      seed=[0, 0])
    with self.assertRaisesRegex(ValueError, "partial weights of shape"):
      st.sobolev_loss(lambda z: net(z)[:, None], self.x, (self.y[:, None], self.dy[:, None]),
                      balance=balance)

  def test_masked_gradients(self):
    rng = np.random.default_rng(4)
    x = rng.uniform(-3, 3, (30, 2))
    y = x[:, 0] * x[:, 1]
    dy = np.stack([x[:, 1], x[:, 0]], 1)
    mask = np.ones_like(dy)
    mask[:10, 0] = 0.0
    holes = np.where(mask > 0, dy, np.nan)
    scaler = st.SobolevScaler().fit(x, y, holes, dy_weight=mask)
    scaled = dy * scaler.x_scale / scaler.y_scale
    expected = np.sqrt([np.mean(scaled[10:, 0]**2), np.mean(scaled[:, 1]**2)])
    self.assertAllClose(scaler.scaled_gradient_rms, expected)
    self.assertTrue(np.all(np.isfinite(scaler.balance().partial_weights)))
    with self.assertRaisesRegex(ValueError, "NaN or Inf where dy_weight is > 0"):
      st.SobolevScaler().fit(x, y, holes)
    with self.assertRaisesRegex(ValueError, "rms must be finite"):
      st.DerivativeBalance.from_rms([np.nan, 1.0], num_inputs=2)

  def test_keras_model_with_balance_trains_on_it_and_saves_it(self):
    balance = self.scaler.balance()
    keras.utils.set_random_seed(0)
    net = keras.Sequential([keras.Input((2,)), keras.layers.Dense(8, "tanh"),
                            keras.layers.Dense(1)])
    ref = keras.models.clone_model(net)
    ref.set_weights(net.get_weights())
    y, dy = self.y[:, None], self.dy[:, None, :]
    with tf.GradientTape() as tape:
      total, _ = st.sobolev_loss(ref, self.x, (y, dy), balance=st.DerivativeBalance(
          balance.value_weight, balance.derivative_weight, balance.partial_weights[None]))
    grads = tape.gradient(total, ref.trainable_variables)
    model = st.SobolevModel(net, balance=st.DerivativeBalance(
        balance.value_weight, balance.derivative_weight, balance.partial_weights[None]))
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    before = [np.array(w) for w in net.get_weights()]
    model.fit(self.x, (y, dy), batch_size=40, epochs=1, verbose=0, shuffle=False)
    for b, a, g in zip(before, net.get_weights(), grads):
      self.assertAllClose(a - b, -0.1 * g.numpy(), atol=1e-6)
    path = os.path.join(self.create_tempdir().full_path, "balanced.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    self.assertAllClose(loaded.balance.partial_weights, model.balance.partial_weights)
    self.assertAllClose(loaded.balance.value_weight, 1 / 3)


if __name__ == "__main__":
  tf.test.main()

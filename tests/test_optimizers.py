"""The strategy-agnostic optimisers match Sonnet's on one device; schedules; errors."""

import sonnet as snt
import tensorflow as tf

from sobolev_tf import optimizers


def _run(make_opt, build: bool, steps: int = 5):
  w = tf.Variable(tf.constant([[1.0, -2.0], [0.5, 3.0]]))
  b = tf.Variable(tf.constant([0.1, -0.1]))
  opt = make_opt()
  if build:
    opt.build([w, b])
  for i in range(steps):
    with tf.GradientTape() as tape:
      loss = tf.reduce_sum((w @ tf.constant([[1.0], [2.0]]) - float(i)) ** 2) + tf.reduce_sum(b**3)
    opt.apply(tape.gradient(loss, [w, b]), [w, b])
  return w.numpy(), b.numpy()


class OptimizersTest(tf.test.TestCase):

  def test_momentum_sgd_matches_sonnet(self):
    ours = _run(lambda: optimizers.MomentumSGD(0.01, 0.9), build=True)
    ref = _run(lambda: snt.optimizers.Momentum(0.01, 0.9), build=False)
    for a, b in zip(ours, ref):
      self.assertAllClose(a, b, rtol=1e-6)

  def test_adam_matches_sonnet(self):
    ours = _run(lambda: optimizers.Adam(0.01), build=True)
    ref = _run(lambda: snt.optimizers.Adam(0.01), build=False)
    for a, b in zip(ours, ref):
      self.assertAllClose(a, b, rtol=1e-5)

  def test_weight_decay_is_l2_on_kernels_only(self):
    w = tf.Variable([[1.0, 2.0]])
    b = tf.Variable([3.0])
    opt = optimizers.MomentumSGD(0.1, momentum=0.0, weight_decay=0.5)
    opt.build([w, b])
    opt.apply([tf.zeros_like(w), tf.zeros_like(b)], [w, b])
    self.assertAllClose(w, [[0.95, 1.9]])  # w -= lr * wd * w
    self.assertAllClose(b, [3.0])          # Biases (rank 1) are not decayed.

  def test_piecewise_constant(self):
    schedule = optimizers.piecewise_constant(0.1, [40_000, 60_000, 80_000])
    for step, lr in [(0, 0.1), (39_999, 0.1), (40_000, 0.01), (60_000, 1e-3), (90_000, 1e-4)]:
      self.assertAllClose(schedule(tf.constant(step, tf.int64)), lr)
    self.assertAllClose(optimizers.piecewise_constant(0.5, [])(tf.constant(7)), 0.5)
    with self.assertRaisesRegex(ValueError, "boundaries"):
      optimizers.piecewise_constant(0.1, [5, 2])

  def test_errors(self):
    w = tf.Variable([1.0])
    opt = optimizers.Adam(0.1)
    with self.assertRaisesRegex(ValueError, "build"):
      opt.apply([tf.ones(1)], [w])
    opt.build([w])
    with self.assertRaisesRegex(ValueError, "different variables"):
      opt.apply([tf.ones(1)], [tf.Variable([2.0])])
    with self.assertRaisesRegex(ValueError, "weight_decay"):
      optimizers.MomentumSGD(0.1, weight_decay=-1.0)


if __name__ == "__main__":
  tf.test.main()

"""The seven benchmark functions: analytic gradients against TF autodiff in float64."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from sobolev_tf import regression


def _tf_value(name, p):
  x, y = p[:, 0], p[:, 1]
  pi = np.pi
  return {
      "ackley": lambda: (-20 * tf.exp(-0.2 * tf.sqrt(0.5 * (x**2 + y**2)))
                         - tf.exp(0.5 * (tf.cos(2 * pi * x) + tf.cos(2 * pi * y))) + np.e + 20),
      "beale": lambda: ((1.5 - x + x * y)**2 + (2.25 - x + x * y**2)**2
                        + (2.625 - x + x * y**3)**2),
      "booth": lambda: (x + 2 * y - 7)**2 + (2 * x + y - 5)**2,
      "bukin": lambda: 100 * tf.sqrt(tf.abs(y - 0.01 * x**2)) + 0.01 * tf.abs(x + 10),
      "mccormick": lambda: tf.sin(x + y) + (x - y)**2 - 1.5 * x + 2.5 * y + 1,
      "rosenbrock": lambda: 100 * (y - x**2)**2 + (x - 1)**2,
      "styblinski_tang": lambda: 0.5 * tf.reduce_sum(p**4 - 16 * p**2 + 5 * p, axis=1),
  }[name]()


class FunctionsTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(*sorted(regression.FUNCTIONS))
  def test_gradient_matches_autodiff(self, name):
    fn = regression.get_function(name)
    points = regression.sample_uniform(fn, 200, seed=0)
    p = tf.constant(points)
    with tf.GradientTape() as tape:
      tape.watch(p)
      v = _tf_value(name, p)
    value, grad = fn.value_and_gradient(points)
    self.assertAllClose(value, v, rtol=1e-12, atol=1e-10)
    self.assertAllClose(grad, tape.gradient(v, p), rtol=1e-9, atol=1e-9)

  @parameterized.parameters(*sorted(regression.FUNCTIONS))
  def test_samples_lie_in_domain(self, name):
    fn = regression.get_function(name)
    points = regression.sample_uniform(fn, 1000, seed=1)
    for axis, (lo, hi) in enumerate(fn.domain):
      self.assertTrue(np.all((points[:, axis] >= lo) & (points[:, axis] <= hi)))
    np.testing.assert_array_equal(points, regression.sample_uniform(fn, 1000, seed=1))

  def test_known_minima(self):
    cases = {"beale": [3, 0.5], "booth": [1, 3], "bukin": [-10, 1],
             "rosenbrock": [1, 1], "ackley": [0, 0]}
    for name, point in cases.items():
      self.assertAllClose(regression.get_function(name)(np.array([point])), [0.0], atol=1e-12)
    self.assertAllClose(regression.get_function("styblinski_tang")(
        np.array([[-2.903534, -2.903534]])), [-78.33233], atol=1e-4)

  def test_bukin_nondifferentiable_set_is_finite(self):
    fn = regression.get_function("bukin")
    points = np.array([[-10.0, 1.0], [-12.0, 1.44], [-10.0, 0.5]])  # On the parabola / x = -10.
    _, grad = fn.value_and_gradient(points)
    self.assertTrue(np.all(np.isfinite(grad)))
    self.assertAllClose(grad[0], [0.0, 0.0])
    self.assertAllClose(grad[1], [0.01 * np.sign(-2.0), 0.0])

  def test_errors(self):
    with self.assertRaisesRegex(ValueError, "Unknown function 'sphere'.*ackley"):
      regression.get_function("sphere")
    with self.assertRaisesRegex(ValueError, r"shape \[N, 2\]"):
      regression.get_function("booth")(np.zeros(3))
    with self.assertRaisesRegex(ValueError, "num_points"):
      regression.sample_uniform(regression.get_function("booth"), 0, seed=0)


if __name__ == "__main__":
  tf.test.main()

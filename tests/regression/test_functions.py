"""The seven benchmark functions: values at hand-computed points, analytic gradients against
central differences of the value functions (float64)."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from sobolev_tf import regression


def _central_differences(fn, points, h=1e-5):
  """``[N, 2]`` gradient of the value function alone, float64, error O(h^2)."""
  cols = []
  for i in range(2):
    e = np.zeros(2)
    e[i] = h
    cols.append((fn(points + e) - fn(points - e)) / (2 * h))
  return np.stack(cols, axis=1)


class FunctionsTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(*sorted(regression.FUNCTIONS))
  def test_gradient_matches_central_differences_of_the_value(self, name):
    # The analytic gradient against the value function itself (no second copy of a formula).
    fn = regression.get_function(name)
    points = regression.sample_uniform(fn, 200, seed=0)
    if name == "bukin":  # Keep clear of its kinks, y = 0.01 x^2 and x = -10.
      points = points[(np.abs(points[:, 1] - 0.01 * points[:, 0]**2) > 1e-2)
                      & (np.abs(points[:, 0] + 10) > 1e-2)]
    _, grad = fn.value_and_gradient(points)
    numerical = _central_differences(fn, points)
    scale = np.max(np.abs(numerical)) + 1.0
    self.assertAllClose(grad, numerical, rtol=1e-6, atol=1e-6 * scale)

  def test_values_at_hand_computed_points(self):
    cases = {  # f(x, y) worked out from the SM section 2 formulas.
        "booth": ([0.0, 0.0], 74.0), "rosenbrock": ([0.0, 0.0], 1.0),
        "mccormick": ([0.0, 0.0], 1.0), "beale": ([0.0, 0.0], 14.203125),
        "styblinski_tang": ([1.0, 1.0], -10.0), "bukin": ([-10.0, 0.0], 100.0),
        "ackley": ([1.0, 0.0], -20 * np.exp(-0.2 * np.sqrt(0.5)) - np.exp(0.5 * 2) + np.e + 20),
    }
    for name, (point, expected) in cases.items():
      self.assertAllClose(regression.get_function(name)(np.array([point])), [expected],
                          rtol=1e-12, msg=name)

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

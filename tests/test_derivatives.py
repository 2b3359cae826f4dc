"""Input derivatives: closed forms, finite differences (float64), execution modes."""

from absl.testing import parameterized
import numpy as np
import sonnet as snt
import tensorflow as tf

from sobolev_tf import derivatives as D


def cubic(x):
  """f(x) = sum_i x_i^3 per example; D^1 = 3x^2, D^2 = diag(6x), D^3 = 6 on the diagonal."""
  return tf.reduce_sum(x**3, axis=1)


def cubic_derivatives(x, order):
  x = np.asarray(x)
  b, d = x.shape
  if order == 1:
    return 3 * x**2
  if order == 2:
    return np.stack([np.diag(6 * r) for r in x])
  t = np.zeros((b, d, d, d))
  for i in range(d):
    t[:, i, i, i] = 6.0
  return t


def sin_sum(x):
  return tf.reduce_sum(tf.sin(x), axis=1)


def sin_derivatives(x, order):
  x = np.asarray(x)
  b, d = x.shape
  diag = [np.cos, lambda z: -np.sin(z), lambda z: -np.cos(z)][order - 1](x)
  t = np.zeros((b,) + (d,) * order)
  for i in range(d):
    t[(slice(None),) + (i,) * order] = diag[:, i]
  return t


def vector_fn(x):
  """f(x) = [sin(x0 x1), x0^2 + 3 x2]."""
  return tf.stack([tf.sin(x[:, 0] * x[:, 1]), x[:, 0]**2 + 3 * x[:, 2]], axis=1)


def vector_jacobian(x):
  x = np.asarray(x)
  c = np.cos(x[:, 0] * x[:, 1])
  j = np.zeros((x.shape[0], 2, 3))
  j[:, 0, 0] = c * x[:, 1]
  j[:, 0, 1] = c * x[:, 0]
  j[:, 1, 0] = 2 * x[:, 0]
  j[:, 1, 2] = 3.0
  return j


class SoftplusMLP:
  """f(x) = w2 . softplus(W1 x + b1) + b2 with closed-form gradient and Hessian."""

  def __init__(self, d, h, seed=0):
    rng = np.random.default_rng(seed)
    self.w1 = rng.normal(size=(d, h))
    self.b1 = rng.normal(size=(h,))
    self.w2 = rng.normal(size=(h,))

  def __call__(self, x):
    return tf.linalg.matvec(tf.nn.softplus(tf.matmul(x, self.w1) + self.b1), self.w2) + 0.5

  def gradient(self, x):
    s = 1 / (1 + np.exp(-(x @ self.w1 + self.b1)))
    return (s * self.w2) @ self.w1.T

  def hessian(self, x):
    s = 1 / (1 + np.exp(-(x @ self.w1 + self.b1)))
    return np.einsum("ih,bh,jh->bij", self.w1, s * (1 - s) * self.w2, self.w1)


def _x(shape, seed=0):
  return tf.constant(np.random.default_rng(seed).normal(size=shape), tf.float64)


class ClosedFormTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.product(order=[1, 2, 3], fn=["cubic", "sin"])
  def test_derivative_tensors(self, order, fn):
    f, closed = {"cubic": (cubic, cubic_derivatives), "sin": (sin_sum, sin_derivatives)}[fn]
    x = _x([4, 3])
    tensors = D.derivative_tensors(f, x, order)
    self.assertLen(tensors, order + 1)
    for j in range(1, order + 1):
      self.assertAllClose(tensors[j], closed(x, j), atol=1e-10)

  def test_softplus_mlp_gradient_and_hessian(self):
    f = SoftplusMLP(3, 8)
    x = _x([5, 3])
    y, g, h = D.hessian(f, x)
    self.assertEqual(y.shape, [5])
    self.assertAllClose(g, f.gradient(x.numpy()), atol=1e-10)
    self.assertAllClose(h, f.hessian(x.numpy()), atol=1e-10)
    _, g2 = D.value_and_gradient(f, x)
    self.assertAllClose(g2, g)

  def test_vector_output_jacobian(self):
    x = _x([4, 3])
    y, j = D.batch_jacobian(vector_fn, x)
    self.assertEqual(y.shape, [4, 2])
    self.assertAllClose(j, vector_jacobian(x), atol=1e-10)

  def test_multidimensional_input(self):
    f = lambda x: tf.reduce_sum(x**2, axis=[1, 2])
    x = _x([2, 3, 4])
    _, g = D.value_and_gradient(f, x)
    self.assertAllClose(g, 2 * x)
    _, _, h = D.derivative_tensors(f, x, 2)
    self.assertEqual(h.shape, [2, 3, 4, 3, 4])
    self.assertAllClose(tf.reshape(h, [2, 12, 12]), np.broadcast_to(2 * np.eye(12), (2, 12, 12)))

  def test_linear_model_has_zero_second_derivative(self):
    f = lambda x: tf.reduce_sum(2.0 * x, axis=1)
    _, g, h = D.derivative_tensors(f, _x([3, 2]), 2)
    self.assertAllClose(g, 2 * np.ones([3, 2]))
    self.assertAllClose(h, np.zeros([3, 2, 2]))

  @parameterized.parameters("forward", "double_reverse")
  def test_jvp_and_vjp(self, mode):
    x = _x([4, 3])
    v = _x([4, 3], seed=1)
    u = _x([4, 2], seed=2)
    jac = vector_jacobian(x)
    _, jv = D.jvp(vector_fn, x, v, mode=mode)
    self.assertAllClose(jv, np.einsum("boi,bi->bo", jac, v.numpy()))
    _, uj = D.vjp(vector_fn, x, u)
    self.assertAllClose(uj, np.einsum("boi,bo->bi", jac, u.numpy()))

  @parameterized.product(mode=["forward", "double_reverse"], order=[1, 2, 3])
  def test_directional_derivative(self, mode, order):
    x = _x([4, 3])
    vs = [_x([4, 3], seed=10 + k) for k in range(order)]
    outs = D.directional_derivative(sin_sum, x, vs, mode=mode)
    self.assertLen(outs, order + 1)
    full = sin_derivatives(x, order)
    expected = full
    for v in vs:
      expected = np.einsum("b...i,bi->b...", expected, v.numpy())
    self.assertAllClose(outs[-1], expected, atol=1e-10)

  @parameterized.product(mode=["forward", "double_reverse"], order=[1, 2])
  def test_projected_derivative_input_space(self, mode, order):
    f = SoftplusMLP(3, 8)
    x = _x([5, 3])
    v = D.random_unit_vectors([5, 3], 3, tf.float64)
    _, proj = D.projected_derivative(f, x, order, v, space="input", mode=mode)
    full = f.gradient(x.numpy()) if order == 1 else f.hessian(x.numpy())
    self.assertAllClose(proj, np.einsum("bi...,bi->b...", full, v.numpy()), atol=1e-10)

  def test_projected_derivative_output_space(self):
    x = _x([4, 3])
    u = D.random_unit_vectors([4, 2], 5, tf.float64)
    _, proj = D.projected_derivative(vector_fn, x, 1, u, space="output")
    self.assertAllClose(proj, np.einsum("boi,bo->bi", vector_jacobian(x), u.numpy()))
    _, proj_fn = D.projected_derivative(vector_fn, x, 1, lambda y: u, space="output")
    self.assertAllClose(proj_fn, proj)


def _per_example_blocks(jacobian, batch, out_size, in_size):
  """Diagonal blocks [B, out, in] of a full [B*out, B*in] Jacobian."""
  j = np.asarray(jacobian).reshape(batch, out_size, batch, in_size)
  return np.stack([j[b, :, b, :] for b in range(batch)])


class FiniteDifferenceTest(tf.test.TestCase, parameterized.TestCase):
  """Each order against central differences of the order below, in float64."""

  @parameterized.parameters(1, 2, 3)
  def test_derivative_tensors_against_finite_differences(self, order):
    f = SoftplusMLP(3, 6, seed=1)
    x = _x([3, 3], seed=4)
    lower = lambda z: D.derivative_tensors(f, z, order - 1)[-1] if order > 1 else f(z)
    _, numerical = tf.test.compute_gradient(lower, [x], delta=1e-4)
    ours = D.derivative_tensors(f, x, order)[-1].numpy()
    out_size = 3**(order - 1)
    blocks = _per_example_blocks(numerical[0], 3, out_size, 3)
    self.assertAllClose(ours.reshape(3, out_size, 3), blocks, atol=1e-5, rtol=1e-5)

  @parameterized.parameters("forward", "double_reverse")
  def test_jvp_against_finite_differences(self, mode):
    x = _x([3, 3], seed=5)
    v = _x([3, 3], seed=6)
    _, numerical = tf.test.compute_gradient(vector_fn, [x], delta=1e-5)
    jac = _per_example_blocks(numerical[0], 3, 2, 3)
    _, jv = D.jvp(vector_fn, x, v, mode=mode)
    self.assertAllClose(jv, np.einsum("boi,bi->bo", jac, v.numpy()), atol=1e-7)


class ExecutionModesTest(tf.test.TestCase, parameterized.TestCase):
  """Eager, tf.function and jit_compile agree, also with an unknown batch size."""

  def _compute(self, x, v):
    mlp = self._mlp
    f = lambda z: mlp(z)[:, 0]
    _, g, h = D.derivative_tensors(f, x, 2)
    _, jv = D.jvp(f, x, v)
    _, hv = D.projected_derivative(f, x, 2, v)
    third = D.directional_derivative(f, x, [v, v, v])[-1]
    return g, h, jv, hv, third

  def setUp(self):
    super().setUp()
    tf.random.set_seed(0)
    self._mlp = snt.nets.MLP([16, 16, 1], activation=tf.nn.softplus)
    self._x = tf.random.stateless_normal([6, 3], seed=[1, 2])
    self._v = D.random_unit_vectors([6, 3], 3)
    self._mlp(self._x)

  @parameterized.parameters(False, True)
  def test_agree(self, jit):
    eager = self._compute(self._x, self._v)
    spec = [tf.TensorSpec([None, 3], tf.float32)] * 2
    compiled = tf.function(self._compute, input_signature=spec, jit_compile=jit)
    for a, b in zip(eager, compiled(self._x, self._v)):
      self.assertAllClose(a, b, atol=1e-4, rtol=1e-4)
    # A second batch size through the same trace.
    for a, b in zip(self._compute(self._x[:2], self._v[:2]),
                    compiled(self._x[:2], self._v[:2])):
      self.assertAllClose(a, b, atol=1e-4, rtol=1e-4)

  def test_auto_mode_under_xla_avoids_forward_accumulator(self):
    self.assertEqual(D.forward_mode_for_jit(), "forward")
    modes = []

    @tf.function(jit_compile=True)
    def compiled():
      modes.append(D.forward_mode_for_jit())
      return tf.constant(0.0)

    compiled()
    self.assertEqual(modes, ["double_reverse"])


class RandomDirectionsTest(tf.test.TestCase):

  def test_unit_norm_and_reproducible(self):
    v = D.random_unit_vectors([64, 3, 4], [3, 4])
    self.assertAllClose(tf.reduce_sum(v**2, axis=[1, 2]), np.ones(64))
    self.assertAllEqual(v, D.random_unit_vectors([64, 3, 4], [3, 4]))
    self.assertNotAllClose(v, D.random_unit_vectors([64, 3, 4], [3, 5]))

  def test_uniform_on_sphere_estimator_is_unbiased(self):
    # For v uniform on S^{d-1}: <g, v>^2 = |g|^2 cos^2, cos^2 ~ Beta(1/2, (d-1)/2),
    # so d <g, v>^2 has mean |g|^2 and variance |g|^4 2(d-1)/(d+2).
    d, n = 5, 20000
    g = tf.constant([1.0, -2.0, 0.5, 3.0, 0.0], tf.float64)
    v = D.random_unit_vectors([n, d], [7, 7], tf.float64)
    samples = d * tf.linalg.matvec(v, g)**2
    norm2 = float(tf.reduce_sum(g**2))
    std_of_mean = norm2 * np.sqrt(2 * (d - 1) / (d + 2) / n)
    self.assertLess(abs(float(tf.reduce_mean(samples)) - norm2), 4 * std_of_mean)
    # Sanity of the variance formula itself (4 sigma of the sample variance is loose).
    self.assertAllClose(float(tf.math.reduce_variance(samples)),
                        norm2**2 * 2 * (d - 1) / (d + 2), rtol=0.1)


class ErrorsTest(tf.test.TestCase):

  def test_output_independent_of_input(self):
    w = tf.Variable([[1.0]])
    const = lambda x: tf.ones([tf.shape(x)[0], 1]) @ w
    with self.assertRaisesRegex(ValueError, "does not depend on its input x"):
      D.value_and_gradient(const, tf.ones([2, 3]))
    with self.assertRaisesRegex(ValueError, "does not depend on its input x"):
      D.derivative_tensors(const, tf.ones([2, 3]), 1)
    with self.assertRaisesRegex(ValueError, "does not depend on its input x"):
      D.vjp(const, tf.ones([2, 3]), tf.ones([2, 1]))

  def test_bad_arguments(self):
    x = tf.ones([2, 3])
    with self.assertRaisesRegex(ValueError, "order"):
      D.derivative_tensors(sin_sum, x, -1)
    with self.assertRaisesRegex(ValueError, "floating"):
      D.derivative_tensors(sin_sum, tf.ones([2, 3], tf.int32), 1)
    with self.assertRaisesRegex(ValueError, "v must have the shape of x"):
      D.jvp(sin_sum, x, tf.ones([2, 4]))
    with self.assertRaisesRegex(ValueError, "mode"):
      D.jvp(sin_sum, x, x, mode="sideways")
    with self.assertRaisesRegex(ValueError, "space"):
      D.projected_derivative(sin_sum, x, 1, x, space="diagonal")
    with self.assertRaisesRegex(ValueError, "one output per example"):
      D.value_and_gradient(vector_fn, x)
    with self.assertRaisesRegex(ValueError, "u must have the shape"):
      D.vjp(vector_fn, x, tf.ones([2, 3]))


if __name__ == "__main__":
  tf.test.main()

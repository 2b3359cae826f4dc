"""The Sobolev objective (eq. 1 and eq. 2), its gradients, errors and finite differences."""

from absl.testing import parameterized
import numpy as np
import sonnet as snt
import tensorflow as tf

import sobolev_tf as st
from sobolev_tf import losses as L


def functional_mlp(params, x):
  """A softplus MLP whose parameters are one flat float64 vector (for compute_gradient)."""
  d, h = 2, 5
  w1 = tf.reshape(params[:d * h], [d, h])
  b1 = params[d * h:d * h + h]
  w2 = tf.reshape(params[d * h + h:d * h + 2 * h], [h, 1])
  b2 = params[-1]
  return (tf.matmul(tf.nn.softplus(tf.matmul(x, w1) + b1), w2) + b2)[:, 0]


NUM_PARAMS = 2 * 5 + 5 + 5 + 1


def target_fn(x):
  return tf.sin(x[:, 0]) * tf.cos(x[:, 1])


def vector_target_fn(x):
  """Three outputs ``[B, 3]``, for output-space projections."""
  return tf.stack([tf.sin(x[:, 0]) * tf.cos(x[:, 1]), x[:, 0] * x[:, 1],
                   tf.cos(x[:, 0] + 2 * x[:, 1])], axis=1)


def vector_model(params):
  """A softplus MLP with three outputs: the functional MLP at three shifted inputs."""
  return lambda x: tf.stack([functional_mlp(params, x), functional_mlp(params, x + 0.5),
                             functional_mlp(params, 2.0 * x)], axis=1)


class SobolevLossGradientTest(tf.test.TestCase, parameterized.TestCase):
  """The double-backprop path: d(loss)/d(params) against finite differences, float64."""

  @parameterized.named_parameters(
      ("eq1_order1", dict(derivative_weights=(1.0,))),
      ("eq1_order2", dict(derivative_weights=(1.0, 0.5))),
      ("eq2_input_forward", dict(stochastic=True, jvp_mode="forward", derivative_weights=(1.0, 0.3))),
      ("eq2_input_double_reverse", dict(stochastic=True, jvp_mode="double_reverse")),
      ("eq2_l2_norm", dict(stochastic=True, derivative_loss="l2_norm")),
      ("eq1_l1", dict(derivative_loss="l1")),
      ("eq1_sample_weight", dict(sample_weight=[0.0, 0.5, 1.0, 1.5, 2.0, 0.3])),
      ("eq2_output_vector", dict(stochastic=True, projection_space="output",
                                 derivative_loss="l2_norm", vector=True)),
  )
  def test_parameter_gradient(self, kwargs):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(-1, 1, (6, 2)), tf.float64)
    params = tf.constant(rng.normal(size=NUM_PARAMS) * 0.7, tf.float64)
    kwargs = dict(kwargs)
    if kwargs.get("stochastic"):
      kwargs["seed"] = [3, 4]

    vector = kwargs.pop("vector", False)

    def loss(p):
      model = vector_model(p) if vector else (lambda z: functional_mlp(p, z))
      total, _ = st.sobolev_loss(model, x, teacher=vector_target_fn if vector else target_fn,
                                 **kwargs)
      return total

    theoretical, numerical = tf.test.compute_gradient(loss, [params], delta=1e-6)
    self.assertAllClose(theoretical[0], numerical[0], atol=1e-6, rtol=1e-5)


class SobolevLossValueTest(tf.test.TestCase, parameterized.TestCase):

  def setUp(self):
    super().setUp()
    rng = np.random.default_rng(1)
    self.x = tf.constant(rng.uniform(-1, 1, (8, 2)), tf.float64)
    self.params = tf.constant(rng.normal(size=NUM_PARAMS), tf.float64)
    self.model = lambda z: functional_mlp(self.params, z)

  def test_eq1_terms_match_hand_computation(self):
    y, g = st.value_and_gradient(target_fn, self.x)
    total, terms = st.sobolev_loss(self.model, self.x, (y, g), derivative_weights=(2.0,))
    my, mg = st.value_and_gradient(self.model, self.x)
    value = np.mean((my - y)**2)
    deriv = np.mean(np.sum((mg - g)**2, axis=1))
    self.assertAllClose(terms["value"], value)
    self.assertAllClose(terms["derivative_1"], deriv)
    self.assertAllClose(total, value + 2.0 * deriv)
    self.assertAllClose(terms["total"], total)

  def test_target_formats_agree(self):
    y, g, h = st.derivative_tensors(target_fn, self.x, 2)
    ref, _ = st.sobolev_loss(self.model, self.x, st.SobolevTargets(y, [g, h]),
                             derivative_weights=(1.0, 1.0))
    for targets in [(y, g, h), (y, [g, h]), {"y": y, "dy": g, "d2y": h}]:
      total, _ = st.sobolev_loss(self.model, self.x, targets, derivative_weights=(1.0, 1.0))
      self.assertAllClose(total, ref)
    teacher_total, _ = st.sobolev_loss(self.model, self.x, teacher=target_fn,
                                       derivative_weights=(1.0, 1.0))
    self.assertAllClose(teacher_total, ref)

  @parameterized.parameters("input", "output")
  def test_stochastic_tensor_targets_equal_teacher(self, space):
    # Vector outputs: with one output an output-space unit vector is +-1 and eq. 2 is eq. 1.
    y, g = st.derivative_tensors(vector_target_fn, self.x, 1)
    kw = dict(stochastic=True, seed=[1, 1], projection_space=space, num_projections=3)
    with_tensors, terms = st.sobolev_loss(vector_model(self.params), self.x, (y, g), **kw)
    with_teacher, _ = st.sobolev_loss(vector_model(self.params), self.x,
                                      teacher=vector_target_fn, **kw)
    self.assertAllClose(with_tensors, with_teacher)
    _, full = st.sobolev_loss(vector_model(self.params), self.x, (y, g))
    self.assertNotAllClose(terms["derivative_1"], full["derivative_1"])

  def test_output_space_projection_by_hand(self):
    # grad_x <m(x) - f(x), u> with u on the unit sphere of R^3, per example.
    model = vector_model(self.params)
    u = st.random_unit_vectors([8, 3], [4, 4], dtype=tf.float64)
    _, terms = st.sobolev_loss(model, self.x, teacher=vector_target_fn, stochastic=True,
                               projection_space="output", directions=u[None])
    _, jm = st.batch_jacobian(model, self.x)
    _, jf = st.batch_jacobian(vector_target_fn, self.x)
    expected = np.mean(np.sum(np.einsum("bo,boi->bi", u, jm - jf)**2, axis=1))
    self.assertAllClose(terms["derivative_1"], expected)

  def test_stochastic_estimate_is_unbiased_when_rescaled(self):
    # Replicate one point n times: the batch mean averages n independent directions.
    n, d = 20000, 2
    x = tf.repeat(self.x[:1], n, axis=0)
    _, terms = st.sobolev_loss(self.model, x, teacher=target_fn, stochastic=True,
                               seed=[5, 6], rescale_projections=True)
    _, full = st.sobolev_loss(self.model, self.x[:1], teacher=target_fn)
    norm2 = float(full["derivative_1"])
    std_of_mean = norm2 * np.sqrt(2 * (d - 1) / (d + 2) / n)
    self.assertGreater(norm2, 0.0)
    self.assertLess(abs(float(terms["derivative_1"]) - norm2), 4 * std_of_mean)

  def test_zero_when_model_equals_teacher(self):
    for kw in [dict(), dict(stochastic=True, seed=[0, 1], derivative_loss="l2_norm",
                            projection_space="output")]:
      total, terms = st.sobolev_loss(self.model, self.x, teacher=self.model, **kw)
      self.assertAllClose(total, 0.0)
      self.assertAllClose(terms["derivative_1"], 0.0)

  def test_teacher_gets_no_gradient_and_student_does(self):
    tf.random.set_seed(0)
    student = snt.nets.MLP([8, 3], activation=tf.nn.tanh)
    teacher = snt.nets.MLP([8, 3], activation=tf.nn.tanh)
    x = tf.random.normal([5, 4])
    student(x), teacher(x)
    log_pi = lambda net: (lambda s: tf.nn.log_softmax(net(s)))
    with tf.GradientTape(persistent=True) as tape:
      total, terms = st.sobolev_loss(
          log_pi(student), x, teacher=log_pi(teacher),
          value_loss=st.categorical_kl_from_log_probs, derivative_loss="l2_norm",
          stochastic=True, projection_space="output", seed=[1, 2])
    self.assertGreater(float(terms["derivative_1"]), 0.0)
    self.assertGreater(float(terms["value"]), 0.0)
    teacher_grads = tape.gradient(total, teacher.trainable_variables)
    self.assertTrue(all(g is None for g in teacher_grads))
    student_grads = tape.gradient(total, student.trainable_variables)
    self.assertTrue(all(g is not None and float(tf.norm(g)) > 0 for g in student_grads))

  def test_kl_direction_and_value(self):
    p = np.array([[0.7, 0.2, 0.1]])
    q = np.array([[0.2, 0.5, 0.3]])
    kl = st.categorical_kl_from_log_probs(tf.constant(np.log(q)), tf.constant(np.log(p)))
    self.assertAllClose(kl, [np.sum(p * np.log(p / q))])  # KL(prediction || target)
    self.assertNotAllClose(kl, [np.sum(q * np.log(q / p))])

  def test_l2_norm_has_finite_gradient_at_zero(self):
    a = tf.constant([[1.0, 2.0]])
    with tf.GradientTape() as tape:
      tape.watch(a)
      loss = tf.reduce_sum(L.l2_norm(a, a))
    self.assertAllEqual(tape.gradient(loss, a), [[0.0, 0.0]])

  def test_per_order_losses_and_callable(self):
    y, g, h = st.derivative_tensors(target_fn, self.x, 2)
    custom = lambda t, p: tf.reduce_sum(tf.abs(tf.reshape(t - p, [tf.shape(t)[0], -1]))**3, 1)
    _, terms = st.sobolev_loss(self.model, self.x, (y, g, h), derivative_weights=(1.0, 1.0),
                               derivative_loss=["l1", custom])
    mh = st.derivative_tensors(self.model, self.x, 2)[2]
    self.assertAllClose(terms["derivative_2"],
                        np.mean(np.sum(np.abs(mh - h)**3, axis=(1, 2))))


class ErrorsTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.x = tf.random.stateless_normal([4, 2], seed=[0, 0])
    self.model = lambda z: tf.reduce_sum(tf.sin(z), axis=1)
    self.y, self.g = st.value_and_gradient(self.model, self.x)

  def test_mismatched_derivative_shape_names_both_shapes(self):
    with self.assertRaisesRegex(ValueError, r"order 1 has shape \(4, 1, 2\).*\(4, 2\)"):
      st.sobolev_loss(self.model, self.x, (self.y, self.g[:, None, :]))
    with self.assertRaisesRegex(ValueError, r"targets values \(y\) has shape"):
      st.sobolev_loss(self.model, self.x, (self.y[:, None], self.g))

  def test_nan_and_inf_targets(self):
    bad = tf.tensor_scatter_nd_update(self.g, [[1, 1]], [np.nan])
    with self.assertRaisesRegex(ValueError, "derivative of order 1 contains NaN or Inf"):
      st.sobolev_loss(self.model, self.x, (self.y, bad))
    with self.assertRaisesRegex(ValueError, r"values \(y\) contains NaN or Inf"):
      st.sobolev_loss(self.model, self.x, (self.y + np.inf, self.g))
    graph_loss = tf.function(lambda y, g: st.sobolev_loss(self.model, self.x, (y, g))[0])
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError, "contains NaN or Inf"):
      graph_loss(self.y, bad)

  def test_order_not_provided(self):
    with self.assertRaisesRegex(ValueError, "order 2 but targets provide derivatives up to order 1"):
      st.sobolev_loss(self.model, self.x, (self.y, self.g), derivative_weights=(1.0, 1.0))

  def test_model_independent_of_input(self):
    const = lambda z: tf.zeros([tf.shape(z)[0]]) + tf.Variable(1.0)
    with self.assertRaisesRegex(ValueError, "does not depend on its input x"):
      st.sobolev_loss(const, self.x, (self.y, self.g))

  def test_bad_arguments(self):
    with self.assertRaisesRegex(ValueError, "exactly one of targets"):
      st.sobolev_loss(self.model, self.x)
    with self.assertRaisesRegex(ValueError, "derivative_loss must be one of"):
      st.sobolev_loss(self.model, self.x, (self.y, self.g), derivative_loss="l7")
    with self.assertRaisesRegex(ValueError, "projection_space"):
      st.sobolev_loss(self.model, self.x, (self.y, self.g), projection_space="both")
    with self.assertRaisesRegex(ValueError, "seed is required"):
      st.sobolev_loss(self.model, self.x, (self.y, self.g), stochastic=True)
    with self.assertRaisesRegex(ValueError, "unknown keys"):
      st.sobolev_loss(self.model, self.x, {"y": self.y, "grad": self.g})
    with self.assertRaisesRegex(ValueError, "num_projections"):
      st.sobolev_loss(self.model, self.x, (self.y, self.g), stochastic=True, seed=[0, 0],
                      num_projections=0)


class WeightsTest(tf.test.TestCase, parameterized.TestCase):
  """Per-example and per-partial weights: hand computation in every execution mode."""

  def setUp(self):
    super().setUp()
    rng = np.random.default_rng(2)
    self.x = rng.uniform(-1, 1, (6, 2)).astype(np.float32)
    self.params = tf.constant(rng.normal(size=NUM_PARAMS), tf.float32)
    self.model = lambda z: functional_mlp(self.params, z)
    self.y, self.g = (t.numpy() for t in st.value_and_gradient(target_fn, self.x))
    self.w = np.array([0.0, 1.0, 2.0, 0.5, 1.0, 3.0], np.float32)
    self.mask = np.array([[1, 0], [0, 1], [1, 1], [0, 0], [1, 0], [0.5, 2]], np.float32)

  def _expected(self):
    my, mg = (t.numpy() for t in st.value_and_gradient(self.model, self.x))
    value = np.sum(self.w * (my - self.y)**2) / 6
    deriv = np.sum(self.w * np.sum(self.mask * (mg - self.g)**2, axis=1)) / 6
    return value, deriv

  @parameterized.parameters("eager", "function", "jit")
  def test_sample_and_partial_weights(self, mode):
    holes = np.where(self.mask > 0, self.g, np.nan).astype(np.float32)

    def loss(x, y, g, m, w):
      return st.sobolev_loss(self.model, x, {"y": y, "dy": g, "dy_weight": m},
                             sample_weight=w)[1]

    if mode != "eager":
      spec = lambda a: tf.TensorSpec([None] + list(a.shape[1:]), tf.float32)
      loss = tf.function(loss, jit_compile=mode == "jit", input_signature=[
          spec(self.x), spec(self.y), spec(holes), spec(self.mask), spec(self.w)])
    terms = loss(self.x, self.y, holes, self.mask, self.w)
    value, deriv = self._expected()
    self.assertAllClose(terms["value"], value, rtol=1e-5)
    self.assertAllClose(terms["derivative_1"], deriv, rtol=1e-5)

  def test_masked_nan_targets_give_finite_parameter_gradients(self):
    holes = np.where(self.mask > 0, self.g, np.nan).astype(np.float32)
    filled = np.where(self.mask > 0, self.g, 1e4).astype(np.float32)
    grads = []
    for targets in (holes, filled):
      params = tf.Variable(self.params)
      with tf.GradientTape() as tape:
        total, _ = st.sobolev_loss(lambda z: functional_mlp(params, z), self.x,
                                   {"y": self.y, "dy": targets, "dy_weight": self.mask})
      grads.append(tape.gradient(total, params).numpy())
    self.assertTrue(np.all(np.isfinite(grads[0])))
    self.assertAllClose(grads[0], grads[1])

  def test_weight_errors(self):
    bad = np.where(self.mask > 0, self.g, np.nan).astype(np.float32)
    with self.assertRaisesRegex(ValueError, r"where its weight is > 0\) contains NaN"):
      st.sobolev_loss(self.model, self.x, {"y": self.y, "dy": bad, "dy_weight": np.ones((6, 2))})
    with self.assertRaisesRegex(ValueError, "'dy_weight' must be >= 0"):
      st.sobolev_loss(self.model, self.x, {"y": self.y, "dy": self.g, "dy_weight": -self.mask})
    with self.assertRaisesRegex(ValueError, r"'dy_weight' has shape \(6, 1\)"):
      st.sobolev_loss(self.model, self.x, {"y": self.y, "dy": self.g, "dy_weight": self.mask[:, :1]})
    with self.assertRaisesRegex(ValueError, "sample_weight has 5 entries"):
      st.sobolev_loss(self.model, self.x, (self.y, self.g), sample_weight=self.w[:5])
    with self.assertRaisesRegex(ValueError, "sample_weight must be >= 0"):
      st.sobolev_loss(self.model, self.x, (self.y, self.g), sample_weight=-self.w)
    with self.assertRaisesRegex(ValueError, "need full derivatives"):
      st.sobolev_loss(self.model, self.x, {"y": self.y, "dy": self.g, "dy_weight": self.mask},
                      stochastic=True, seed=[0, 0])
    with self.assertRaisesRegex(ValueError, "up to order 2 but derivative_weights has 1 entry"):
      st.sobolev_loss(self.model, self.x, (self.y, self.g, np.zeros((6, 2, 2), np.float32)))
    with self.assertRaisesRegex(ValueError, "without the derivatives"):
      st.sobolev_loss(self.model, self.x, {"y": self.y, "d2y_weight": self.mask, "dy": self.g})
    with self.assertRaisesRegex(ValueError, "must accept weights="):
      st.sobolev_loss(self.model, self.x, {"y": self.y, "dy": self.g, "dy_weight": self.mask},
                      derivative_loss=lambda t, p: tf.reduce_sum(tf.abs(t - p), axis=1))


class SobolevTermsTest(tf.test.TestCase):
  """The pure per-example core: hand computation, and its errors."""

  def test_per_example_terms_by_hand(self):
    rng = np.random.default_rng(7)
    pred = [tf.constant(rng.normal(size=s), tf.float32) for s in ((4,), (4, 2), (4, 2, 2))]
    targ = [tf.constant(rng.normal(size=s), tf.float32) for s in ((4,), (4, 2), (4, 2, 2))]
    w = tf.constant(rng.uniform(0, 2, (4, 2, 2)), tf.float32)
    terms = st.sobolev_terms(pred, targ, derivative_loss=["squared_l2", "l1"],
                             partial_weights=[None, w])
    p, t = [a.numpy() for a in pred], [a.numpy() for a in targ]
    self.assertAllClose(terms["value"], (p[0] - t[0])**2)
    self.assertAllClose(terms["derivative_1"], np.sum((p[1] - t[1])**2, axis=1))
    self.assertAllClose(terms["derivative_2"], np.sum(w.numpy() * np.abs(p[2] - t[2]), (1, 2)))
    no_value = st.sobolev_terms(pred[:2], [None, targ[1]])
    self.assertEqual(set(no_value), {"derivative_1"})

  def test_errors(self):
    v, g = tf.zeros([3]), tf.zeros([3, 2])
    with self.assertRaisesRegex(ValueError, "both be \\[value, D\\^1"):
      st.sobolev_terms([v, g], [v])
    with self.assertRaisesRegex(ValueError, "partial_weights has 2 entries for 1"):
      st.sobolev_terms([v, g], [v, g], partial_weights=[None, None])
    with self.assertRaisesRegex(ValueError, "must accept weights="):
      st.sobolev_terms([v, g], [v, g], derivative_loss=lambda t, p: t[:, 0] - p[:, 0],
                       partial_weights=[tf.ones([3, 2])])
    with self.assertRaisesRegex(ValueError, r"order 1 has shape \(3, 1\)"):
      st.sobolev_terms([v, g], [v, g[:, :1]])
    with self.assertRaisesRegex(AttributeError, "moved in 0.2.0: use sobolev_tf.squared_l2"):
      st.squared_error  # pylint: disable=pointless-statement


class ProjectedTargetsTest(tf.test.TestCase, parameterized.TestCase):
  """Targets given already projected: their form is declared, never guessed from ranks."""

  @parameterized.parameters(
      # B = P = d: a full [B, d] gradient and projected [P, B] targets share a rank and shape.
      dict(space="input", batch=3, projections=3, vector=False),
      dict(space="input", batch=4, projections=3, vector=False),
      # Output space, 3 outputs: full [B, 3, d] and projected [P, B, d] share a rank.
      dict(space="output", batch=3, projections=3, vector=True),
      dict(space="output", batch=4, projections=2, vector=True),
  )
  def test_projected_targets_equal_the_teacher(self, space, batch, projections, vector):
    rng = np.random.default_rng(5)
    d = 3
    x = tf.constant(rng.uniform(-1, 1, (batch, d)), tf.float64)
    w = tf.constant(rng.normal(size=(d, 3)), tf.float64)
    model = lambda z: tf.tanh(tf.matmul(z, w)) if vector else tf.reduce_sum(tf.tanh(z @ w), 1)
    teacher = lambda z: tf.sin(z) if vector else tf.reduce_sum(tf.sin(z), 1)
    shape = [projections, batch, 3 if (space == "output") else d]
    v = st.random_unit_vectors(shape, [1, 2], dtype=tf.float64, batch_dims=2)
    projected = tf.stack([st.projected_derivative(teacher, x, 1, v[p], space=space)[1]
                          for p in range(projections)])
    kw = dict(stochastic=True, projection_space=space, num_projections=projections,
              directions=v)
    from_teacher, _ = st.sobolev_loss(model, x, teacher=teacher, **kw)
    given, _ = st.sobolev_loss(model, x, (teacher(x), projected), projected_targets=True, **kw)
    self.assertAllClose(given, from_teacher)
    full, _ = st.sobolev_loss(model, x, st.derivative_tensors(teacher, x, 1), **kw)
    self.assertAllClose(full, from_teacher)

  def test_b_p_d_three_by_hand(self):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(-1, 1, (3, 3)), tf.float64)
    model = lambda z: tf.reduce_sum(z**2, axis=1)
    v = st.random_unit_vectors([3, 3, 3], [0, 1], dtype=tf.float64, batch_dims=2)
    projected = tf.constant(rng.normal(size=(3, 3)), tf.float64)  # [P, B]
    _, terms = st.sobolev_loss(model, x, (model(x), projected), stochastic=True,
                               num_projections=3, directions=v, projected_targets=True)
    model_proj = np.einsum("bi,pbi->pb", 2 * x.numpy(), v.numpy())
    self.assertAllClose(terms["derivative_1"], np.mean((model_proj - projected.numpy())**2))

  def test_errors(self):
    x = tf.zeros([4, 3])
    model = lambda z: tf.reduce_sum(z**2, axis=1)
    v = tf.ones([3, 4, 3]) / np.sqrt(3.0)
    with self.assertRaisesRegex(ValueError, "projected_targets=True needs"):
      st.sobolev_loss(model, x, (tf.zeros([4]), tf.zeros([3, 4])), projected_targets=True)
    with self.assertRaisesRegex(ValueError, r"projected targets are \[num_projections=3"):
      st.sobolev_loss(model, x, (tf.zeros([4]), tf.zeros([2, 4])), stochastic=True,
                      num_projections=3, directions=v, projected_targets=True)
    with self.assertRaisesRegex(ValueError, "need projected_targets=True"):
      st.sobolev_loss(model, x, (tf.zeros([4]), tf.zeros([3, 4, 3, 1])), stochastic=True,
                      num_projections=3, directions=v)
    with self.assertRaisesRegex(ValueError, "first dimension must be num_projections=2"):
      st.sobolev_loss(model, x, teacher=model, stochastic=True, num_projections=2, directions=v)


class FiniteDifferenceTargetsTest(tf.test.TestCase):

  def test_against_closed_form(self):
    fn = lambda z: np.stack([np.sin(z[:, 0]) * z[:, 1], z[:, 0]**2], axis=1)
    x = np.random.default_rng(0).normal(size=(5, 2))
    y, jac, hess = st.finite_difference_derivatives(fn, x, order=2, step=1e-4)
    self.assertAllClose(y, fn(x))
    expected_jac = np.zeros((5, 2, 2))
    expected_jac[:, 0, 0] = np.cos(x[:, 0]) * x[:, 1]
    expected_jac[:, 0, 1] = np.sin(x[:, 0])
    expected_jac[:, 1, 0] = 2 * x[:, 0]
    self.assertAllClose(jac, expected_jac, atol=1e-7)
    expected_hess = np.zeros((5, 2, 2, 2))
    expected_hess[:, 0, 0, 0] = -np.sin(x[:, 0]) * x[:, 1]
    expected_hess[:, 0, 0, 1] = expected_hess[:, 0, 1, 0] = np.cos(x[:, 0])
    expected_hess[:, 1, 0, 0] = 2.0
    self.assertAllClose(hess, expected_hess, atol=1e-5)

  def test_bad_arguments(self):
    with self.assertRaisesRegex(ValueError, "order must be 1 or 2"):
      st.finite_difference_derivatives(np.sin, np.zeros((1, 1)), order=3)
    with self.assertRaisesRegex(ValueError, "step must be positive"):
      st.finite_difference_derivatives(np.sin, np.zeros((1, 1)), step=0.0)


class ItLearnsTest(tf.test.TestCase):

  def test_sobolev_fits_sin_better_from_ten_points(self):
    """A small MLP fits sin on [-2pi, 2pi] from 10 points better with derivatives."""
    x_train = tf.constant(np.linspace(-2 * np.pi, 2 * np.pi, 10)[:, None], tf.float32)
    x_test = tf.constant(np.linspace(-2 * np.pi, 2 * np.pi, 400)[:, None], tf.float32)
    targets = (tf.sin(x_train[:, 0]), tf.cos(x_train))
    errors = {}
    for sobolev in (False, True):
      tf.random.set_seed(0)
      mlp = snt.nets.MLP([32, 32, 1], activation=tf.nn.tanh)
      model = lambda z: mlp(z)[:, 0]
      opt = snt.optimizers.Adam(1e-2)

      def step(_):
        with tf.GradientTape() as tape:
          if sobolev:
            loss, _ = st.sobolev_loss(model, x_train, targets)
          else:
            loss = tf.reduce_mean(st.squared_l2(targets[0], model(x_train)))
        opt.apply(tape.gradient(loss, mlp.trainable_variables), mlp.trainable_variables)
        return {"loss": loss}

      st.multi_step(step, 1000)(0)
      errors[sobolev] = float(tf.reduce_mean((model(x_test) - tf.sin(x_test[:, 0]))**2))
    self.assertLess(errors[True], errors[False] / 10)


if __name__ == "__main__":
  tf.test.main()

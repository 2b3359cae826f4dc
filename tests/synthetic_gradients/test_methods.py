"""Synthetic-gradient methods on a tiny split network: who gets which signal."""

from absl.testing import parameterized
import numpy as np
import sonnet as snt
import tensorflow as tf

from sobolev_tf import derivatives
from sobolev_tf import losses
from sobolev_tf.synthetic_gradients import methods as sg


def _tiny(seed=0):
  tf.random.set_seed(seed)
  parts = [snt.Sequential([snt.Conv2D(4, 3), tf.nn.relu]),
           snt.Sequential([snt.Conv2D(4, 3, stride=2), tf.nn.relu]),
           snt.Sequential([snt.Flatten(), snt.Linear(3)])]
  x = tf.random.stateless_normal([5, 8, 8, 2], seed=[seed, 1])
  y = tf.constant([0, 1, 2, 1, 0])
  return parts, x, y


def _modules(method):
  if method == "direct":
    return [sg.DirectSG(3, channels=8), sg.DirectSG(3, channels=8)]
  return [sg.LossPredictor(3, channels=8), sg.LossPredictor(3, channels=8)]


def _snapshot(module):
  return [v.numpy().copy() for v in module.trainable_variables]


class MethodsTest(tf.test.TestCase, parameterized.TestCase):

  def test_noprop_lower_parts_do_not_change(self):
    parts, x, y = _tiny()
    step = sg.SyntheticGradientStep(parts, [], "noprop", snt.optimizers.SGD(0.1))
    step(x, y)  # Builds variables.
    before = [_snapshot(p) for p in parts]
    step(x, y)
    for a, b in zip(before[:2], parts[:2]):
      for u, v in zip(a, b.trainable_variables):
        self.assertAllEqual(u, v)
    self.assertTrue(any(np.abs(u - v.numpy()).max() > 0
                        for u, v in zip(before[2], parts[2].trainable_variables)))

  @parameterized.parameters("direct", "vfbn", "critic", "sobolev")
  def test_lower_parts_follow_the_synthetic_gradient_only(self, method):
    parts, x, y = _tiny()
    modules = _modules(method)
    step = sg.SyntheticGradientStep(parts, modules, method, snt.optimizers.SGD(1.0),
                                    snt.optimizers.Adam(1e-3))
    step(x, y)  # Builds every variable.
    # Expected update of part k: -(dh_k/dtheta_k)^T SG_k(h_k) / B, from module k as it is now.
    with tf.GradientTape(persistent=True) as tape:
      h0 = parts[0](x)
      h1 = parts[1](h0)
      loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, parts[2](h1)))
    sg0, sg1 = (sg.synthetic_gradient(method, m, h, y) for m, h in zip(modules, (h0, h1)))
    expected = [tape.gradient(h0, parts[0].trainable_variables, output_gradients=sg0 / 5.0),
                tape.gradient(h1, parts[1].trainable_variables, output_gradients=sg1 / 5.0)]
    true = [tape.gradient(loss, p.trainable_variables) for p in parts[:2]]
    # The lowest part below a higher synthetic gradient: SG_1 carried down through part 1.
    through_upper = tape.gradient(h1, parts[0].trainable_variables, output_gradients=sg1 / 5.0)
    before = [_snapshot(p) for p in parts[:2]]
    step(x, y)
    for k in range(2):
      for b, v, e, t in zip(before[k], parts[k].trainable_variables, expected[k], true[k]):
        self.assertAllClose(b - v.numpy(), e, atol=1e-5, msg=f"part {k}")
        self.assertNotAllClose(e, t)  # The true gradient never reaches a lower part.
    for e, u in zip(expected[0], through_upper):
      self.assertNotAllClose(e, u)  # Part 0 follows its own module, not module 1.

  def test_targets_with_batch_norm_are_the_backprop_gradient(self):
    # BatchNorm in training mode couples examples: the target of example i is
    # d(sum_j L_j)/dh_i = B dL/dh_i, which differs from the per-example dL_i/dh_i.
    from sobolev_tf.synthetic_gradients import cifar  # pylint: disable=g-import-not-at-top
    tf.random.set_seed(0)
    parts = cifar.split_network(widths=(4, 4, 4), strides=(1, 2, 1), splits=(1,),
                                num_classes=3, batch_norm=True)
    x = tf.random.stateless_normal([6, 8, 8, 3], seed=[0, 2])
    y = tf.constant([0, 1, 2, 1, 0, 2])
    with tf.GradientTape(persistent=True) as tape:
      h = parts[0](x)
      per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(y, parts[1](h))
      loss = tf.reduce_mean(per_example)
      singles = [per_example[i] for i in range(6)]
    targets = tape.gradient(per_example, h)
    self.assertAllClose(targets, 6.0 * tape.gradient(loss, h), rtol=1e-5, atol=1e-6)
    own = tf.stack([tape.gradient(singles[i], h)[i] for i in range(6)])
    self.assertNotAllClose(targets, own)  # The batch statistics carry h_i to other losses.
    # The step fits its module to exactly these targets.
    module = sg.LossPredictor(3, channels=4)
    step = sg.SyntheticGradientStep(parts, [module], "vfbn", snt.optimizers.SGD(0.0),
                                    snt.optimizers.SGD(0.1))
    step(x, y)  # Builds the module (SGD 0.0: the main network stays put).
    before = _snapshot(module)
    with tf.GradientTape() as module_tape:
      expected_loss, _ = sg.module_loss("vfbn", module, h, y, per_example, targets)
    grads = module_tape.gradient(expected_loss, module.trainable_variables)
    step(x, y)
    for b, v, g in zip(before, module.trainable_variables, grads):
      self.assertAllClose(b - v.numpy(), 0.1 * g.numpy(), atol=1e-6)

  @parameterized.parameters("vfbn", "critic", "sobolev")
  def test_module_loss_is_eq1_with_l1(self, method):
    module = sg.LossPredictor(3, channels=4)
    h = tf.random.stateless_normal([4, 5, 5, 2], seed=[3, 5])
    y = tf.constant([0, 1, 2, 0])
    values = tf.random.stateless_uniform([4], seed=[3, 6])
    grads = tf.random.stateless_normal([4, 5, 5, 2], seed=[3, 7])
    value_weight, derivative_weight = {"vfbn": (0.0, 1.0), "critic": (1.0, 0.0),
                                       "sobolev": (1.0, 1.0)}[method]
    expected, expected_terms = losses.sobolev_loss(
        lambda z: module(z, y), h, (values, grads), value_weight=value_weight,
        derivative_weights=(derivative_weight,), value_loss=lambda t, p: tf.abs(t - p),
        derivative_loss="l1")
    total, terms = sg.module_loss(method, module, h, y, values, grads)
    self.assertAllClose(total, expected)
    self.assertEqual(sorted(terms), sorted(expected_terms))
    for name, term in terms.items():
      self.assertAllClose(term, expected_terms[name], msg=name)
    with self.assertRaisesRegex(ValueError, "loss_grads has shape"):
      sg.module_loss(method, module, h, y, values, grads[..., :1])

  def test_backprop_uses_true_gradients(self):
    parts, x, y = _tiny()
    step = sg.SyntheticGradientStep(parts, [], "backprop", snt.optimizers.SGD(1.0))
    step(x, y)
    with tf.GradientTape() as tape:
      loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
          y, parts[2](parts[1](parts[0](x)))))
    grads = tape.gradient(loss, parts[0].trainable_variables)
    before = _snapshot(parts[0])
    step(x, y)
    for b, v, g in zip(before, parts[0].trainable_variables, grads):
      self.assertAllClose(b - v.numpy(), g, atol=1e-5)

  def test_errors(self):
    parts, _, _ = _tiny()
    with self.assertRaisesRegex(ValueError, "Unknown method 'hogwild'"):
      sg.SyntheticGradientStep(parts, [], "hogwild", snt.optimizers.SGD(1.0))
    with self.assertRaisesRegex(ValueError, "2 splits need 2 modules"):
      sg.SyntheticGradientStep(parts, [], "sobolev", snt.optimizers.SGD(1.0))


class OptionsTest(tf.test.TestCase, parameterized.TestCase):
  """DNI-style bootstrapped targets and the SM 4.1 dm/dy term (both off by default)."""

  def test_label_gradient_is_dm_dy_of_the_one_hot_label(self):
    module = sg.LossPredictor(3, channels=4)
    h = tf.random.stateless_normal([4, 5, 5, 2], seed=[3, 3], dtype=tf.float32)
    y = tf.one_hot([0, 2, 1, 2], 3)
    with tf.GradientTape() as tape:
      tape.watch(y)
      m = -tf.reduce_sum(y * tf.nn.log_softmax(module.logits(h)), axis=1)
    self.assertAllClose(sg.label_gradient(module, h), tape.gradient(m, y), atol=1e-6)
    self.assertAllClose(tf.reduce_sum(y * sg.label_gradient(module, h), 1),
                        module(h, tf.argmax(y, 1)), atol=1e-6)

  def test_label_gradient_term(self):
    module = sg.LossPredictor(3, channels=4)
    h = tf.random.stateless_normal([4, 5, 5, 2], seed=[3, 4])
    y = tf.constant([0, 1, 2, 0])
    values, grads = tf.ones([4]), tf.zeros_like(h)
    log_probs = tf.nn.log_softmax(module.logits(h))  # The module's own: term is zero.
    total0, terms0 = sg.module_loss("sobolev", module, h, y, values, grads)
    total, terms = sg.module_loss("sobolev", module, h, y, values, grads, log_probs, 2.0)
    self.assertAllClose(terms["label_gradient"], 0.0)
    self.assertAllClose(total, total0)
    _, terms = sg.module_loss("sobolev", module, h, y, values, grads, log_probs + 0.5, 2.0)
    self.assertAllClose(terms["label_gradient"], 1.5)  # L1 norm over 3 classes of 0.5.
    with self.assertRaisesRegex(ValueError, "label_log_probs"):
      sg.module_loss("critic", module, h, y, values, grads, None, 1.0)
    parts, _, _ = _tiny()
    with self.assertRaisesRegex(ValueError, "label_gradient_weight needs a loss-predictor"):
      sg.SyntheticGradientStep(parts, _modules("direct"), "direct", snt.optimizers.SGD(1.0),
                               label_gradient_weight=1.0)

  @parameterized.parameters("direct", "sobolev")
  def test_bootstrapped_targets_come_from_the_module_above(self, method):
    parts, x, y = _tiny()
    modules = _modules(method)
    step = sg.SyntheticGradientStep(parts, modules, method, snt.optimizers.SGD(0.1),
                                    snt.optimizers.Adam(1e-3), bootstrap=True)
    step(x, y)  # Builds every variable.
    with tf.GradientTape(persistent=True) as tape:
      h0 = parts[0](x)
      h1 = parts[1](h0)
      logits = parts[2](h1)
      per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits)
    true_grads = tape.gradient(per_example, [h0, h1])
    sgs = [sg.synthetic_gradient(method, m, h, y) for m, h in zip(modules, [h0, h1])]
    targets = [step._module_target(k, tape, [h0, h1], y, per_example,
                                   tf.nn.log_softmax(logits), true_grads, sgs)
               for k in range(2)]
    # Top split: the true loss and gradient.
    self.assertAllClose(targets[1][0], per_example)
    self.assertAllClose(targets[1][1], true_grads[1])
    # Split 0: module 1's synthetic gradient carried back through part 1.
    carried = tape.gradient(h1, h0, output_gradients=sgs[1])
    self.assertAllClose(targets[0][1], carried)
    self.assertNotAllClose(targets[0][1], true_grads[0])
    if method == "sobolev":
      self.assertAllClose(targets[0][0], modules[1](h1, y))
    metrics = step(x, y)
    self.assertTrue(np.isfinite(metrics["module_loss_0"].numpy()))


class QuadraticLossTest(tf.test.TestCase):

  def test_sobolev_module_recovers_the_gradient_of_a_known_loss(self):
    """L_i(h) = ||h_i - c||^2: a loss predictor trained on (L, dL/dh) learns dm/dh = 2(h - c)."""
    tf.random.set_seed(0)
    c = tf.constant([0.5, -1.0, 2.0])
    mlp = snt.nets.MLP([32, 32, 1], activation=tf.nn.softplus)
    module = lambda h, labels: mlp(h)[:, 0]
    opt = snt.optimizers.Adam(1e-2)
    labels = tf.zeros([64], tf.int32)

    @tf.function
    def train(step):
      h = tf.random.stateless_normal([64, 3], seed=[step, 0])
      with tf.GradientTape() as tape:
        loss, _ = sg.module_loss("sobolev", module, h, labels,
                                 tf.reduce_sum((h - c)**2, 1), 2 * (h - c))
      opt.apply(tape.gradient(loss, mlp.trainable_variables), mlp.trainable_variables)
      return loss

    for step in range(600):
      train(tf.constant(step, tf.int64))
    h = tf.random.stateless_normal([200, 3], seed=[999, 1])
    _, grad = derivatives.value_and_gradient(lambda z: module(z, None), h)
    cos = tf.reduce_sum(grad * 2 * (h - c), 1) / (
        tf.norm(grad, axis=1) * tf.norm(2 * (h - c), axis=1))
    self.assertGreater(float(tf.reduce_mean(cos)), 0.95)


if __name__ == "__main__":
  tf.test.main()


_MIRRORED_SCRIPT = r"""
import numpy as np, sonnet as snt, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from sobolev_tf.synthetic_gradients import methods as sg

def build():
  tf.random.set_seed(0)
  parts = [snt.Sequential([snt.Conv2D(4, 3), tf.nn.relu]),
           snt.Sequential([snt.Flatten(), snt.Linear(3)])]
  return parts, [sg.LossPredictor(3, channels=8)]

x = tf.random.stateless_normal([8, 6, 6, 2], seed=[0, 1])
y = tf.constant([0, 1, 2, 1, 0, 2, 2, 1])
results = []
for devices in (["/cpu:0"], ["/cpu:0", "/cpu:1"]):
  strategy = snt.distribute.Replicator(devices)  # A MirroredStrategy that Sonnet optimizers accept.
  with strategy.scope():
    parts, modules = build()
    h = parts[0](x)  # Variables are created in the strategy's scope, outside replica context.
    parts[1](h), modules[0](h, y)
    step = sg.SyntheticGradientStep(parts, modules, "sobolev", snt.optimizers.SGD(0.5),
                                    snt.optimizers.SGD(0.5))
  ds = strategy.experimental_distribute_dataset(
      tf.data.Dataset.from_tensors((x, y)).repeat().unbatch().batch(8))
  train = tf.function(lambda batch: strategy.run(step, args=batch))
  it = iter(ds)
  for _ in range(3):
    train(next(it))
  results.append([v.numpy() for p in parts + modules for v in p.trainable_variables])
for a, b in zip(*results):
  np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
print("SAME", len(results[0]))
"""


class DistributedTest(tf.test.TestCase):

  def test_mirrored_two_devices_equal_one_device_on_the_same_global_batch(self):
    import os, subprocess, sys  # pylint: disable=g-import-not-at-top,multiple-imports
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    out = subprocess.run([sys.executable, "-c", _MIRRORED_SCRIPT], capture_output=True,
                         text=True, env=env, cwd=os.path.join(os.path.dirname(__file__), "..", ".."))
    self.assertEqual(out.returncode, 0, msg=out.stderr[-3000:])
    self.assertIn("SAME", out.stdout)

"""multi_step runs the same steps as calling the step function one by one."""

import numpy as np
import sonnet as snt
import tensorflow as tf

import sobolev_tf as st
from sobolev_tf.atari import networks
from sobolev_tf import regression


def _setup():
  tf.random.set_seed(0)
  mlp = regression.regression_mlp(hidden_sizes=(8, 8))
  x = tf.random.stateless_uniform([4, 10, 2], seed=[0, 1], minval=-1, maxval=1)
  y = tf.reduce_sum(x**2, axis=-1)
  opt = snt.optimizers.Adam(1e-2)
  model = lambda z: mlp(z)[:, 0]

  def step(i):
    b = i % 4
    with tf.GradientTape() as tape:
      xb = tf.gather(x, b)
      loss, _ = st.sobolev_loss(model, xb, (tf.gather(y, b), 2 * xb))
    opt.apply(tape.gradient(loss, mlp.trainable_variables), mlp.trainable_variables)
    return {"loss": loss}

  return mlp, step


class MultiStepTest(tf.test.TestCase):

  def test_equals_single_steps(self):
    mlp_a, step_a = _setup()
    single = tf.function(step_a)
    for i in range(6):
      last_a = single(tf.constant(i, tf.int64))
    for jit in (False, True):
      mlp_b, step_b = _setup()
      run = st.multi_step(step_b, 3, jit_compile=jit)
      run(0)
      last_b = run(3)
      self.assertAllClose(last_a["loss"], last_b["loss"], rtol=1e-5)
      for a, b in zip(mlp_a.trainable_variables, mlp_b.trainable_variables):
        self.assertAllClose(a, b, rtol=1e-5, atol=1e-6)

  def test_bad_steps_per_call(self):
    with self.assertRaisesRegex(ValueError, "steps_per_call"):
      st.multi_step(lambda i: {}, 0)


class NetsTest(tf.test.TestCase):

  def test_strided_conv_matches_tf_conv_and_its_input_gradient(self):
    for k, s, size in [(8, 4, 84), (4, 2, 20), (3, 2, 9)]:
      conv = networks.StridedConv2D(5, k, stride=s)
      x = tf.random.stateless_normal([2, size, size, 3], seed=[k, s], dtype=tf.float64)
      with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        ours = conv(x)
        ref = tf.nn.conv2d(x, conv.w, s, "VALID") + conv.b
      self.assertAllClose(ours, ref)
      u = tf.random.stateless_normal(ref.shape, seed=[1, 1], dtype=tf.float64)
      self.assertAllClose(tape.gradient(ours, x, output_gradients=u),
                          tape.gradient(ref, x, output_gradients=u))

  def test_shapes(self):
    frames = tf.zeros([2, 84, 84, 4], tf.uint8)
    teacher = networks.AtariTeacher(6)
    logits, value = teacher.logits_and_value(frames)
    self.assertEqual(logits.shape, [2, 6])
    self.assertEqual(value.shape, [2])
    self.assertEqual(networks.AtariStudent(3)(frames).shape, [2, 3])
    self.assertEqual(regression.regression_mlp()(tf.zeros([5, 2])).shape, [5, 1])
    with self.assertRaisesRegex(ValueError, "num_actions"):
      networks.AtariStudent(0)


class PeriodicCheckpointerTest(tf.test.TestCase):

  def test_period_force_and_errors(self):
    saved = []
    every_call = st.training.PeriodicCheckpointer(saved.append, minutes=0.0)
    self.assertTrue(every_call.maybe_save(1))
    hourly = st.training.PeriodicCheckpointer(saved.append, minutes=60.0)
    self.assertFalse(hourly.maybe_save(2))
    self.assertTrue(hourly.maybe_save(3, force=True))
    self.assertEqual(saved, [1, 3])
    with self.assertRaisesRegex(ValueError, "checkpoint_minutes must be >= 0"):
      st.training.PeriodicCheckpointer(saved.append, minutes=-1.0)


class ScheduleTest(tf.test.TestCase):

  def test_one_cycle_is_huge_and_savine_values(self):
    # Their notebook: (0, 1e-8), (0.2, 0.1), (0.6, 0.01), (0.9, 1e-6), (1, 1e-8), linear between.
    schedule = st.training.one_cycle(0.1)
    fractions = np.array([0.0, 0.1, 0.2, 0.4, 0.6, 0.75, 0.9, 0.95, 1.0, 1.5])
    expected = [1e-8, 0.05 + 0.5e-8, 0.1, 0.055, 0.01, 0.005 + 0.5e-6, 1e-6, 0.5e-6 + 0.5e-8,
                1e-8, 1e-8]
    self.assertAllClose(schedule(fractions), expected, rtol=1e-6)
    self.assertAllClose(schedule(tf.constant(fractions, tf.float32)), expected, rtol=1e-4)
    for jit in (False, True):
      at = tf.function(schedule, jit_compile=jit)
      self.assertAllClose(at(tf.constant(0.4)), 0.055, rtol=1e-5)

  def test_cosine_and_constant(self):
    cosine = st.training.CosineDecay(1e-3)
    self.assertAllClose([cosine(0.0), cosine(0.5), cosine(1.0)], [1e-3, 5e-4, 0.0])
    self.assertAllClose(cosine(tf.constant([0.0, 0.5, 1.0])), [1e-3, 5e-4, 0.0])
    self.assertAllClose(st.training.CosineDecay(1.0, final=0.1)(1.0), 0.1)
    constant = st.training.learning_rate_schedule("constant", 3e-4)
    self.assertAllClose(constant(tf.constant([0.0, 0.7])), [3e-4, 3e-4])
    self.assertAllClose(constant(0.3), 3e-4)

  def test_bad_schedules(self):
    with self.assertRaisesRegex(ValueError, "increasing fractions"):
      st.training.PiecewiseLinear(((0.5, 1.0), (0.2, 1.0)))
    with self.assertRaisesRegex(ValueError, "rates >= 0"):
      st.training.PiecewiseLinear(((0.0, float("nan")),))
    with self.assertRaisesRegex(ValueError, "peak > 0"):
      st.training.CosineDecay(0.0)
    with self.assertRaisesRegex(ValueError, "peak > 0"):
      st.training.one_cycle(-1.0)
    with self.assertRaisesRegex(ValueError, "Unknown learning-rate schedule 'linear'"):
      st.training.learning_rate_schedule("linear", 1.0)


if __name__ == "__main__":
  tf.test.main()

"""Distillation on a few synthetic frames: both methods, metrics, resume."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import tensorflow as tf

import sobolev_tf as st
from sobolev_tf.atari import networks
from configs import distill as distill_configs
from sobolev_tf.atari import dataset
from sobolev_tf.atari import distill


def _synthetic_dataset(path, teacher, num_states=48, episode_length=8):
  rng = np.random.default_rng(0)
  writer = dataset.StackedFrameWriter()
  for i in range(num_states):
    state = rng.integers(0, 255, (84, 84, 4), dtype=np.uint8)
    log_probs = tf.nn.log_softmax(teacher(tf.constant(state[None]))).numpy()[0]
    writer.add(state, log_probs, int(np.argmax(log_probs)), 0.0, i // episode_length, True)
  dataset.save(writer.build({"game": "pong"}), path)


class DistillTest(tf.test.TestCase):

  def _teacher_and_small_dataset(self, seed: int):
    """A random teacher and 24 states of its log-probabilities in 8 episodes."""
    tf.random.set_seed(seed)
    teacher = networks.AtariTeacher(3)
    root = self.create_tempdir().full_path
    data_path = os.path.join(root, "pong.npz")
    _synthetic_dataset(data_path, teacher, num_states=24, episode_length=3)
    return teacher, root, data_path, dataset.load(data_path)

  def _teacher_and_random_frames(self, seed: int, batch_size: int):
    """A random teacher, uint8 frames ``[batch_size, 84, 84, 4]`` and its log-probs."""
    tf.random.set_seed(seed)
    teacher = networks.AtariTeacher(3)
    frames = tf.cast(tf.random.stateless_uniform([batch_size, 84, 84, 4], [0, seed],
                                                 maxval=255, dtype=tf.int32), tf.uint8)
    return teacher, frames, tf.nn.log_softmax(teacher(frames))

  def test_tiny_end_to_end_both_methods_and_resume(self):
    tf.random.set_seed(0)
    teacher = networks.AtariTeacher(3)
    root = self.create_tempdir().full_path
    data_path = os.path.join(root, "pong.npz")
    _synthetic_dataset(data_path, teacher)
    for method in distill.METHODS:
      config = distill_configs.get_config("quick")
      config.method = method
      config.data_path = data_path
      workdir = os.path.join(root, method)
      result = distill.train_and_evaluate(config, workdir, teacher_logits=teacher,
                                          log=lambda s: None)
      self.assertEqual(result["steps"], 4)
      self.assertBetween(result["action_error"], 0.0, 1.0)
      self.assertGreater(result["kl"], 0.0)
      with open(os.path.join(workdir, "curves.csv")) as f:
        self.assertEqual(f.readline().strip(), "step,split,action_error,kl")
      config.num_steps = 6
      messages = []
      resumed = distill.train_and_evaluate(config, workdir, teacher_logits=teacher,
                                           log=messages.append)
      self.assertIn(f"[{method}] resumed at step 4", messages)
      self.assertEqual(resumed["steps"], 6)
      with open(os.path.join(workdir, "curves.csv")) as f:
        rows = [tuple(line.split(",")[:2]) for line in f.read().splitlines()[1:]]
      self.assertEqual(rows, [(str(s), split) for s in (2, 4, 6)
                              for split in ("test", "validation")])

  def test_derivative_term_reaches_the_student_update(self):
    teacher, frames, target = self._teacher_and_random_frames(seed=1, batch_size=4)
    distillers = {alpha: distill.Distiller(3, "sobolev", 1e-3, alpha=alpha, teacher_logits=teacher)
                  for alpha in (0.0, 1.0)}
    for d in distillers.values():
      d.student(frames)
    start = [v.numpy() for v in distillers[0.0].student.trainable_variables]
    for v, value in zip(distillers[1.0].student.trainable_variables, start):
      v.assign(value)  # The same student in both.
    grads = {}
    for alpha, d in distillers.items():
      with tf.GradientTape() as tape:
        total = d.loss(frames, target)["total"]
      grads[alpha] = tape.gradient(total, d.student.trainable_variables)
      terms = d.train_step(frames, target)
      self.assertGreater(float(terms["derivative_1"]), 0.0)
    for g0, g1 in zip(grads[0.0], grads[1.0]):
      self.assertNotAllClose(g0, g1)  # The derivative term changes the gradient ...
    updates = [[v.numpy() - s for v, s in zip(d.student.trainable_variables, start)]
               for d in distillers.values()]
    self.assertTrue(any(np.abs(u0 - u1).max() > 1e-7 for u0, u1 in zip(*updates)))  # ... and the step.

  def test_float16_cache_refuses_out_of_range_jacobians(self):
    teacher, _, _, data = self._teacher_and_small_dataset(seed=3)
    del teacher
    # Logits 1e10 * mean(frame) * (1, 2, 3): d log pi_1 / d pixel = 1e10 * (1 - 3) / 28,224.
    steep = lambda s: 1e10 * tf.reduce_mean(tf.cast(s, tf.float32), axis=[1, 2, 3])[:, None] * [
        1.0, 2.0, 3.0]
    d = distill.Distiller(3, "sobolev", 1e-3, alpha=1.0, teacher_logits=steep)
    with self.assertRaisesRegex(ValueError, "beyond float16.*jacobian_cache_gb=0"):
      distill.teacher_jacobians(d, data, np.arange(4), batch_size=4)

  def test_cached_teacher_jacobian_gives_the_same_loss(self):
    teacher, root, data_path, data = self._teacher_and_small_dataset(seed=2)
    d = distill.Distiller(3, "sobolev", 1e-3, alpha=1.0, teacher_logits=teacher)
    index = np.arange(4, 10)
    jac = distill.teacher_jacobians(d, data, index, batch_size=4)
    self.assertEqual(jac.shape, (6, 3, 84, 84, 4))
    self.assertEqual(jac.dtype, np.float16)
    frames = tf.constant(data.states(index))
    log_probs = tf.constant(data.log_probs[index])
    on_the_fly = d.loss(frames, log_probs)
    cached = d.loss(frames, log_probs, tf.constant(jac))
    self.assertGreater(float(on_the_fly["derivative_1"]), 0.0)
    self.assertAllClose(cached["derivative_1"], on_the_fly["derivative_1"], rtol=2e-3)
    self.assertAllClose(cached["value"], on_the_fly["value"], rtol=1e-4, atol=1e-6)
    # End to end with the cache (training states fit in the budget).
    config = distill_configs.get_config("quick")
    config.data_path = data_path
    config.jacobian_cache_gb = 1.0
    messages = []
    result = distill.train_and_evaluate(config, os.path.join(root, "cached"),
                                        teacher_logits=teacher, log=messages.append)
    self.assertEqual(result["steps"], 4)
    self.assertTrue(any("cached the teacher's input Jacobians" in m for m in messages))

  def test_step_on_rows_equals_step_on_the_numpy_batch(self):
    teacher, root, data_path, data = self._teacher_and_small_dataset(seed=3)
    train = np.arange(3, 15)
    rows = np.array([0, 2, 2, 7, 11])
    for cached in (False, True):
      pair = [distill.Distiller(3, "sobolev", 1e-3, teacher_logits=teacher, seed=5)
              for _ in range(2)]
      for d in pair:
        d.student(tf.constant(data.states(train[:1])))
      for a, b in zip(*[d.student.variables for d in pair]):
        b.assign(a)
      jac = distill.teacher_jacobians(pair[0], data, train) if cached else None
      expected = pair[0].train_step(
          tf.constant(data.states(train[rows])), tf.constant(data.log_probs[train[rows]]),
          None if jac is None else tf.constant(jac[rows]))
      extra = {} if jac is None else {"teacher_jacobians": tf.constant(jac)}
      actual = pair[1].train_step_on_rows(
          tf.constant(rows, tf.int32), tf.constant(data.frames),
          tf.constant(data.stacks[train].astype(np.int32)),
          tf.constant(data.log_probs[train]), **extra)
      self.assertAllClose(actual["total"], expected["total"], rtol=1e-5)
      self.assertGreater(float(actual["derivative_1"]), 0.0)
      for a, b in zip(*[d.student.variables for d in pair]):
        self.assertAllClose(a, b, rtol=1e-5, atol=1e-7)

  def test_squared_derivative_loss_squares_the_norm(self):
    teacher, frames, target = self._teacher_and_random_frames(seed=3, batch_size=1)
    norm, squared = (distill.Distiller(3, "sobolev", 1e-3, teacher_logits=teacher,
                                       derivative_loss=loss)
                     for loss in distill.DERIVATIVE_LOSSES)
    norm.student(frames)
    squared.student(frames)
    for a, b in zip(squared.student.variables, norm.student.variables):
      a.assign(b)
    # One example and the same direction (seed and step): the term is squared.
    by_norm = float(norm.loss(frames, target)["derivative_1"])
    self.assertGreater(by_norm, 0.0)
    self.assertAllClose(squared.loss(frames, target)["derivative_1"], by_norm ** 2, rtol=1e-4)

  def test_errors(self):
    with self.assertRaisesRegex(ValueError, "Unknown derivative_loss 'l1'"):
      distill.Distiller(3, "sobolev", 1e-3, derivative_loss="l1")
    with self.assertRaisesRegex(ValueError, "Unknown method 'dagger'"):
      distill.Distiller(3, "dagger", 1e-3)
    with self.assertRaisesRegex(ValueError, "needs teacher_logits"):
      distill.Distiller(3, "sobolev", 1e-3)
    with self.assertRaisesRegex(ValueError, "variant"):
      distill_configs.get_config("dagger")



_KILLABLE_RUN = r"""
import os, sys
sys.path.insert(0, os.getcwd())
from configs import distill as distill_configs
from sobolev_tf.atari import distill
from tests import kill
data_path, workdir, method, kill_at = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
teacher = kill.fixed_teacher(3, seed=123)
config = distill_configs.get_config("quick")
config.update(method=method, data_path=data_path, num_steps=6, eval_every=2,
              checkpoint_minutes=0.0)
if kill_at:  # After this step's evaluation was logged, before its checkpoint.
  kill.sigkill_at_checkpoint(lambda step, calls: step == kill_at)
distill.train_and_evaluate(config, workdir, teacher_logits=teacher, log=lambda s: None)
"""


class KillAndResumeTest(tf.test.TestCase):

  def test_sigkill_then_the_same_command_equals_an_uninterrupted_run(self):
    root = self.create_tempdir().full_path
    tf.random.set_seed(0)
    data_path = os.path.join(root, "pong.npz")
    _synthetic_dataset(data_path, networks.AtariTeacher(3), num_states=24, episode_length=3)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

    def run(workdir, kill_at):
      return subprocess.run([sys.executable, "-c", _KILLABLE_RUN, data_path, workdir, "sobolev",
                             str(kill_at)], cwd=repo, env=env, capture_output=True, text=True,
                            timeout=600)

    straight, killed = os.path.join(root, "straight"), os.path.join(root, "killed")
    self.assertEqual(run(straight, 0).returncode, 0)
    first = run(killed, 4)
    self.assertEqual(first.returncode, -signal.SIGKILL, msg=first.stderr[-2000:])
    with open(os.path.join(killed, "curves.csv")) as f:
      self.assertIn("\n4,test,", f.read())  # Logged after the step-3 checkpoint.
    second = run(killed, 0)
    self.assertEqual(second.returncode, 0, msg=second.stderr[-2000:])
    for name in ("curves.csv",):
      with open(os.path.join(straight, name)) as a, open(os.path.join(killed, name)) as b:
        self.assertEqual(a.read(), b.read())  # Same values, every step once.
    with open(os.path.join(straight, "result.json")) as a, \
        open(os.path.join(killed, "result.json")) as b:
      ra, rb = json.load(a), json.load(b)
    for key in ("kl", "action_error", "steps"):
      self.assertEqual(ra[key], rb[key])
    weights = [tf.train.load_checkpoint(tf.train.latest_checkpoint(os.path.join(d, "checkpoints")))
               for d in (straight, killed)]
    names = [n for n in weights[0].get_variable_to_shape_map() if n.startswith("student/")]
    self.assertNotEmpty(names)
    for n in names:
      np.testing.assert_array_equal(weights[0].get_tensor(n), weights[1].get_tensor(n), err_msg=n)


if __name__ == "__main__":
  tf.test.main()

"""Bad input is refused up front, with an error naming it, and nothing already written is lost."""

import os
import subprocess
import sys

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from configs import distill as distill_configs
from configs import regression as regression_configs
from configs import synthetic_gradients as sg_configs
from configs import teacher as teacher_configs
from sobolev_tf import training
from sobolev_tf.atari import dataset
from sobolev_tf.atari import distill
from sobolev_tf.atari import train_teacher
from sobolev_tf.regression import experiment
from sobolev_tf.synthetic_gradients import trainer as sg_trainer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def regression(workdir, **overrides):
  config = regression_configs.get_config("quick")
  config.update(overrides)
  experiment.train_and_evaluate(config, os.path.join(workdir, "work"),
                                os.path.join(workdir, "out"), "test")


def distillation(workdir, **overrides):
  config = distill_configs.get_config("quick")
  config.update(overrides)
  distill.train_and_evaluate(config, os.path.join(workdir, "work"))


def synthetic_gradients(workdir, **overrides):
  config = sg_configs.get_config("quick")
  config.update(overrides)
  sg_trainer.train_and_evaluate(config, os.path.join(workdir, "work"))


def teacher(workdir, **overrides):
  config = teacher_configs.get_config("quick")
  config.update(overrides)
  train_teacher.train_and_evaluate(config, os.path.join(workdir, "work"))


# (trainer, config overrides, the error's words).
BAD_CONFIGS = [
    (regression, dict(num_steps=0), r"config.num_steps must be > 0, got 0"),
    (regression, dict(steps_per_call=0), r"config.steps_per_call must be > 0"),
    (regression, dict(batch_size=-4), r"config.batch_size must be > 0, got -4"),
    (regression, dict(num_steps=1000, steps_per_call=300), r"multiple of config.steps_per_call"),
    (regression, dict(functions=("sphere",)), r"Unknown function 'sphere'"),
    (distillation, dict(num_steps=-1), r"config.num_steps must be > 0, got -1"),
    (distillation, dict(eval_every=0), r"config.eval_every must be > 0"),
    (distillation, dict(batch_size=0), r"config.batch_size must be > 0"),
    (distillation, dict(train_fraction=1.5), r"config.train_fraction must be in \(0, 1\)"),
    (synthetic_gradients, dict(num_steps=0), r"config.num_steps must be > 0"),
    (synthetic_gradients, dict(steps_per_call=0), r"config.steps_per_call must be > 0"),
    (synthetic_gradients, dict(eval_every=0), r"config.eval_every must be > 0"),
    (teacher, dict(total_frames=-5), r"config.total_frames must be > 0, got -5"),
    (teacher, dict(num_envs=0), r"config.num_envs must be > 0, got 0"),
]


class BadConfigTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(*BAD_CONFIGS)
  def test_refused_before_anything_is_written(self, trainer, overrides, message):
    root = self.create_tempdir().full_path
    with self.assertRaisesRegex(ValueError, message):
      trainer(root, **overrides)
    self.assertEqual(os.listdir(root), [])

  def test_fit_full_batch_names_num_steps(self):
    with self.assertRaisesRegex(ValueError, "num_steps must be an integer >= 1, got -10"):
      training.fit_full_batch(lambda x: x, tf.zeros([2, 1]), tf.zeros([2]), tf.zeros([2, 1]),
                              sobolev=False, learning_rate=1e-3, num_steps=-10)

  def test_dataset_corrupted_in_place_names_the_file(self):
    path = os.path.join(self.create_tempdir().full_path, "pong.npz")
    writer = dataset.StackedFrameWriter()
    rng = np.random.default_rng(0)
    for i in range(8):
      writer.add(rng.integers(0, 255, (84, 84, 4), dtype=np.uint8), np.log(np.ones(3) / 3),
                 0, 0.0, 0, i == 0)
    dataset.save(writer.build({"game": "pong"}), path)
    with open(path, "r+b") as f:  # Flip bytes inside the compressed frames.
      f.seek(os.path.getsize(path) // 2)
      f.write(b"\xff" * 64)
    with self.assertRaisesRegex(ValueError, f"{path} is truncated or corrupt"):
      dataset.load(path)


def run_script(name, *args):
  env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
  return subprocess.run([sys.executable, os.path.join(ROOT, "scripts", name), *args],
                        capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)


class BadFlagTest(tf.test.TestCase):

  def test_collect_with_no_states_keeps_the_existing_dataset(self):
    data_dir = self.create_tempdir().full_path
    path = os.path.join(data_dir, "pong.npz")
    with open(path, "wb") as f:
      f.write(b"an existing dataset")
    result = run_script("collect_atari.py", "--game=pong", f"--data_dir={data_dir}",
                        "--num_states=0")
    self.assertNotEqual(result.returncode, 0)
    self.assertIn("num_states", result.stderr)
    with open(path, "rb") as f:
      self.assertEqual(f.read(), b"an existing dataset")

  def test_report_only_on_a_missing_workdir_keeps_the_report(self):
    out = self.create_tempdir().full_path
    with open(os.path.join(out, "figure4.md"), "w") as f:
      f.write("the committed report")
    result = run_script("distill_grid.py", "--config=configs/distill.py:grid_quick",
                        "--report_only", "--workdir=does/not/exist", "--data_dir=unused",
                        f"--output_dir={out}")
    self.assertNotEqual(result.returncode, 0)
    self.assertIn("no grid workdir does/not/exist", result.stderr)
    with open(os.path.join(out, "figure4.md")) as f:
      self.assertEqual(f.read(), "the committed report")

  def test_distill_game_other_than_the_data_game_is_refused(self):
    root = self.create_tempdir().full_path
    path = os.path.join(root, "pong.npz")
    writer = dataset.StackedFrameWriter()
    for i in range(8):
      writer.add(np.zeros((84, 84, 4), np.uint8), np.log(np.ones(3) / 3), 0, 0.0, 0, i == 0)
    dataset.save(writer.build({"game": "pong"}), path)
    workdir = os.path.join(root, "work")
    for method in ("regular", "sobolev"):
      result = run_script("distill.py", f"--config=configs/distill.py:{method}",
                          f"--config.data_path={path}", "--game=breakout", f"--workdir={workdir}")
      self.assertNotEqual(result.returncode, 0)
      self.assertIn(f"--game=breakout but {path} holds pong states", result.stderr)
      self.assertFalse(os.path.exists(workdir))

  def test_unwritable_gif_or_result_is_refused_before_any_game(self):
    blocker = os.path.join(self.create_tempdir().full_path, "a_file")
    with open(blocker, "w") as f:
      f.write("not a directory")
    for script, flag, what in (("play_policy.py", "--gif", "GIF"),
                               ("evaluate_policy.py", "--output", "result")):
      args = ["--saved_model=unused"] if script == "play_policy.py" else ["--workdir=unused"]
      result = run_script(script, *args, f"{flag}={blocker}/out")
      self.assertNotEqual(result.returncode, 0)
      self.assertIn(f"Cannot write the {what} to {blocker}", result.stderr)

  def test_unknown_method_fails_before_any_training(self):
    workdir = self.create_tempdir().full_path
    result = run_script("synthetic_gradients.py", "--config=configs/synthetic_gradients.py:quick",
                        "--methods=backprop,bogus", f"--workdir={workdir}")
    self.assertNotEqual(result.returncode, 0)
    self.assertIn("Unknown methods ['bogus']", result.stderr)
    self.assertEqual(os.listdir(workdir), [])


if __name__ == "__main__":
  tf.test.main()

"""Bad input is refused up front, with an error naming it, and nothing already written is lost."""

import json
import os
import shutil
import signal
import subprocess
import sys
import types
from unittest import mock
import warnings

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from configs import distill as distill_configs
from configs import regression as regression_configs
from configs import synthetic_gradients as sg_configs
from configs import teacher as teacher_configs
from sobolev_tf import checks
from sobolev_tf import training
from sobolev_tf.atari import dataset
from sobolev_tf.atari import distill
from sobolev_tf.atari import train_teacher
from sobolev_tf.regression import experiment
from sobolev_tf.regression import networks as regression_networks
from sobolev_tf.regression import report as regression_report
from sobolev_tf.synthetic_gradients import distribute
from sobolev_tf.synthetic_gradients import trainer as sg_trainer
from tests import kill

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
    (teacher, dict(learning_rate=float("nan")), r"config.learning_rate must be a number"),
    (teacher, dict(discount=1.5), r"config.discount must be in \(0, 1\], got 1.5"),
    (regression, dict(hidden_sizes=(0,)), r"config.hidden_sizes must be positive widths"),
    (regression, dict(functions=()), r"config.functions is empty: no run to train"),
    (regression, dict(eval_steps=(-5, 100)), r"config.eval_steps must be positive steps"),
    (regression, dict(seeds=()), r"config.seeds must be a non-empty list"),
    (regression, dict(seeds=(-1,)), r"config.seeds must be a non-empty list of integers >= 0"),
    (regression, dict(sizes=(True,)), r"config.sizes must be a non-empty list of integers >= 1, "
     r"got \(True,\)"),
    (regression, dict(methods=("",), extra_methods=()), r"config.methods is empty"),
    (regression, dict(derivative_weight=float("nan")), r"config.derivative_weight must be a"),
    (regression, dict(balance=1.0, standardize=False), r"config.balance needs config.standardize"),
    (regression, dict(balance=1.0, extra_methods=("stochastic",)), r"not \['stochastic'\]"),
    (regression, dict(activation="gelu"), r"Unknown activation 'gelu'"),
    (synthetic_gradients, dict(learning_rate=float("nan")), r"config.learning_rate must be a"),
    (synthetic_gradients, dict(eval_batch_size=0), r"config.eval_batch_size must be > 0"),
    (synthetic_gradients, dict(max_test_examples=-1), r"config.max_test_examples must be >= 0"),
    (synthetic_gradients, dict(num_classes=0), r"config.num_classes must be > 0"),
]


class BadConfigTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(*BAD_CONFIGS)
  def test_refused_before_anything_is_written(self, trainer, overrides, message):
    root = self.create_tempdir().full_path
    with self.assertRaisesRegex(ValueError, message):
      trainer(root, **overrides)
    self.assertEqual(os.listdir(root), [])

  def test_library_loss_weights_and_model_type(self):
    import sobolev_tf as st  # pylint: disable=g-import-not-at-top
    model = lambda z: tf.reduce_sum(z, axis=1)
    x, y, dy = tf.ones([4, 2]), tf.ones([4]), tf.ones([4, 2])
    for kwargs, words in ((dict(derivative_weights=-1.0), "derivative_weights must be finite"),
                          (dict(derivative_weights=(float("nan"),)), "derivative_weights must"),
                          (dict(value_weight=-1.0), "value_weight must be finite and >= 0")):
      with self.assertRaisesRegex(ValueError, words):
        st.sobolev_loss(model, x, (y, dy), **kwargs)
      with self.assertRaisesRegex(ValueError, words):
        st.SobolevModel(tf.keras.Sequential([tf.keras.layers.Dense(1)]), **kwargs)
    with self.assertRaisesRegex(ValueError, "model must be a Keras model or layer.*function"):
      st.SobolevModel(model)

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


class LibraryInputTest(tf.test.TestCase):
  """The library's functions: clear errors (and warnings) for inputs that used to pass or
  fail deep inside TensorFlow."""

  def test_sobolev_loss_inputs(self):
    import sobolev_tf as st  # pylint: disable=g-import-not-at-top
    dense = tf.keras.Sequential([tf.keras.Input((2,)), tf.keras.layers.Dense(1)])
    model = lambda z: dense(z)[:, 0]
    x, y, dy = tf.ones([4, 2]), tf.ones([4]), tf.ones([4, 2])
    bad_x = tf.constant([[0.0, 1.0], [np.nan, 1.0], [1.0, 1.0], [0.0, 0.0]])
    cases = [
        (dict(x=bad_x), r"inputs x contains NaN or Inf"),
        (dict(x=tf.ones([0, 2]), targets=(tf.ones([0]), tf.ones([0, 2]))),
         r"x has an empty batch \(shape \(0, 2\)\)"),
        (dict(jvp_mode="fast"), r"jvp_mode must be one of \('forward', 'double_reverse', 'auto'\)"),
        (dict(x=tf.ones([4, 2], tf.float64)), r"x has dtype float64 but the model returns float32"),
    ]
    for kwargs, words in cases:
      with self.subTest(words=words):
        args = dict(dict(x=x, targets=(y, dy)), **kwargs)
        with self.assertRaisesRegex(ValueError, words):
          st.sobolev_loss(model, args.pop("x"), args.pop("targets"), **args)
    in_graph = tf.function(lambda z: st.sobolev_loss(model, z, (y, dy))[0])
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError, "inputs x contains NaN or Inf"):
      in_graph(bad_x)
    # Float64 targets of a float32 model are cast, as NumPy arrays always were.
    loss, _ = st.sobolev_loss(model, x, (tf.cast(y, tf.float64), tf.cast(dy, tf.float64)))
    self.assertEqual(loss.dtype, tf.float32)
    # A model that cannot take the input's dtype: the fix is named.
    w = tf.Variable(tf.ones([2, 1]))
    with self.assertRaisesRegex(ValueError, r"could not be applied to x of dtype float64.*tf.cast"):
      st.sobolev_loss(lambda z: tf.matmul(z, w)[:, 0], tf.ones([4, 2], tf.float64), (y, dy))

  def test_dead_second_order_terms_and_mixed_examples_warn(self):
    import sobolev_tf as st  # pylint: disable=g-import-not-at-top
    relu = tf.keras.Sequential([tf.keras.Input((2,)), tf.keras.layers.Dense(8, "relu"),
                                tf.keras.layers.Dense(1)])
    x = tf.random.stateless_normal([6, 2], seed=[0, 1])
    targets = (tf.zeros([6]), tf.zeros([6, 2]), tf.zeros([6, 2, 2]))
    with self.assertWarnsRegex(UserWarning, "derivative of order 2 is 0 on this whole batch"):
      st.sobolev_loss(lambda z: relu(z)[:, 0], x, targets, derivative_weights=(1.0, 1.0))
    model = st.SobolevModel(relu, derivative_weights=(1.0, 1.0))
    model.compile(optimizer="sgd")
    with self.assertWarnsRegex(UserWarning, r"activations \(linear, relu\) have zero second"):
      model.fit(x.numpy(), (tf.zeros([6, 1]), tf.zeros([6, 1, 2]), tf.zeros([6, 1, 2, 2])),
                epochs=1, verbose=0)
    batch_norm = tf.keras.Sequential([tf.keras.Input((2,)), tf.keras.layers.Dense(4),
                                      tf.keras.layers.BatchNormalization(),
                                      tf.keras.layers.Dense(1)])
    self.assertTrue(st.mixed_examples(lambda z: batch_norm(z, training=True), x))
    self.assertFalse(st.mixed_examples(lambda z: batch_norm(z, training=False), x))
    self.assertTrue(st.mixed_examples(lambda z: z - tf.reduce_mean(z, 0), x))
    centred = st.SobolevModel(batch_norm)
    centred.compile(optimizer="sgd")
    with self.assertWarnsRegex(UserWarning, "mixes the examples of a batch"):
      centred.fit(x.numpy(), (tf.zeros([6, 1]), tf.zeros([6, 1, 2])), epochs=1, verbose=0)

  def test_scaler_training_and_export_inputs(self):
    import sobolev_tf as st  # pylint: disable=g-import-not-at-top
    x = np.ones((5, 2))
    x[2, 1] = np.inf
    with self.assertRaisesRegex(ValueError, r"x holds NaN or Inf \(first at index \(2, 1\)\)"):
      st.SobolevScaler().fit(x, np.ones(5))
    with self.assertRaisesRegex(ValueError, r"y holds NaN or Inf"):
      st.SobolevScaler().fit(np.ones((5, 2)), np.array([1.0, np.nan, 0, 0, 0]))
    for rate in (float("nan"), -1.0, 0.0):
      with self.assertRaisesRegex(ValueError, "learning_rate must be a finite number > 0"):
        training.fit_full_batch(lambda x: x, tf.zeros([2, 1]), tf.zeros([2]), tf.zeros([2, 1]),
                                sobolev=False, learning_rate=rate, num_steps=10)
    dense = tf.keras.Sequential([tf.keras.Input((2,)), tf.keras.layers.Dense(1)])
    root = self.create_tempdir().full_path
    with self.assertRaisesRegex(ValueError, r"input_signature .* does not fit the model: calling "
                                r"it on a batch of shape \(None, 3\)"):
      st.export_with_derivatives(dense, os.path.join(root, "served"),
                                 tf.TensorSpec([None, 3], tf.float32))
    self.assertEqual(os.listdir(root), [])
    locked = os.path.join(root, "locked")
    os.makedirs(locked)
    os.chmod(locked, 0o500)
    try:
      if not os.access(locked, os.W_OK):  # Root writes anywhere: nothing to test there.
        with self.assertRaisesRegex(ValueError, f"Cannot write the SavedModel to {locked}"):
          st.export_with_derivatives(dense, os.path.join(locked, "served"),
                                     tf.TensorSpec([None, 2], tf.float32))
    finally:
      os.chmod(locked, 0o700)


class ConfigKindTest(tf.test.TestCase):

  def test_every_variant_passes_and_other_files_are_named(self):
    configs = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")
    variants = {"demo.py": ("quick",), "distill.py": ("regular", "sobolev", "quick", "grid",
                                                      "grid_quick"),
                "regression.py": ("full", "fixed_budget", "fixed_budget_full", "paper", "quick"),
                "regression_sensitivity.py": ("quick",),
                "synthetic_gradients.py": ("cifar10", "cifar10_cpu", "imagenet", "imagenet3",
                                           "quick"),
                "teacher.py": ("pong", "breakout", "space_invaders", "quick")}
    loaded = []
    for name, names in variants.items():
      for variant in names:
        config = checks.load_config_file(f"{os.path.join(configs, name)}:{variant}")
        checks.check_config_kind(config, os.path.join(configs, name))
        loaded.append((name, config))
    for name, config in loaded:
      if name == "distill.py":
        checks.check_config_kind(config, os.path.join(configs, "distill.py:grid"))
      for other in variants:
        if other != name:
          with self.assertRaisesRegex(ValueError, rf"not a config for this script: it lacks .*"
                                      rf"takes configs/{other}\["):
            checks.check_config_kind(config, os.path.join(configs, other))


class ResumeUnderAnotherConfigTest(tf.test.TestCase):
  """A workdir holds weights, not what they were trained for: another config is refused."""

  def _tiny_regression(self, **overrides):
    config = regression_configs.get_config("quick")
    config.update(dict(dict(hidden_sizes=(8, 8), num_steps=20, steps_per_call=10,
                            eval_steps=(10,), num_test=50, grid_resolution=0,
                            checkpoint_minutes=0.0), **overrides))
    return config

  def test_regression_group_of_other_runs_or_settings(self):
    workdir = self.create_tempdir().full_path
    runs = [experiment.Run("booth", 20, "sobolev", 0)]
    experiment.train_group(runs, self._tiny_regression(), workdir, log=lambda s: None)
    experiment.train_group(runs, self._tiny_regression(num_steps=40), workdir,
                           log=lambda s: None)  # A longer budget continues the run.
    checkpoint = os.path.join(workdir, "checkpoints", "n20_relu_order1")
    for other_runs, overrides, words in (
        ([experiment.Run("beale", 20, "sobolev", 0)], {}, r"runs: \[\['booth'"),
        ([experiment.Run("booth", 20, "stochastic", 0)], {}, r"runs: .*'sobolev'.* there"),
        (runs, dict(learning_rate=0.1), r"learning_rate: 0.0003 there, 0.1 now"),
        (runs, dict(derivative_weight=10.0), r"derivative_weight: 1.0 there, 10.0 now")):
      with open(os.path.join(checkpoint, "run_config.json"), "rb") as f:
        recorded = f.read()
      with self.assertRaisesRegex(ValueError, f"{checkpoint} holds a run of another "
                                  f"configuration .*{words}"):
        experiment.train_group(other_runs, self._tiny_regression(num_steps=40, **overrides),
                               workdir, log=lambda s: None)
      with open(os.path.join(checkpoint, "run_config.json"), "rb") as f:
        self.assertEqual(f.read(), recorded)

  def test_a_failed_start_is_not_recorded(self):
    workdir = self.create_tempdir().full_path
    path = os.path.join(workdir, "run_config.json")
    training.check_same_config(path, {"lr": 1.0, "data": "typo"}, resuming=False)
    training.check_same_config(path, {"lr": 1.0, "data": "right"}, resuming=False)
    training.check_same_config(path, {"lr": 1.0, "data": "right", "steps": 9}, resuming=True,
                               ignore=("steps",))
    with self.assertRaisesRegex(ValueError, "data: 'right' there, 'other' now"):
      training.check_same_config(path, {"lr": 1.0, "data": "other"}, resuming=True)
    missing = os.path.join(workdir, "elsewhere", "run_config.json")
    with self.assertRaisesRegex(ValueError, f"{missing} is missing"):
      training.check_same_config(missing, {"lr": 1.0}, resuming=True)
    # A worker that does not record (its workdir need not be shared) leaves that to the chief.
    self.assertEqual(training.check_same_config(missing, {"lr": 1.0}, resuming=True,
                                                record=False), {"lr": 1.0})

  def test_synthetic_gradients_finished_run_of_another_config(self):
    workdir = self.create_tempdir().full_path
    config = sg_configs.get_config("quick")
    config.method = "noprop"
    os.makedirs(os.path.join(workdir, "noprop"))
    with open(os.path.join(workdir, "noprop", "result.json"), "w") as f:
      f.write(json.dumps({"finished": True, "steps": config.num_steps,
                          "config": config.to_dict()}, default=str))
    same, other = run_scripts(
        ("synthetic_gradients.py", "--config=configs/synthetic_gradients.py:quick",
         "--methods=noprop", f"--workdir={workdir}"),
        ("synthetic_gradients.py", "--config=configs/synthetic_gradients.py:quick",
         "--methods=noprop", "--config.learning_rate=0.5", f"--workdir={workdir}"))
    self.assertEqual(same.returncode, 0, msg=same.stderr[-2000:])
    self.assertIn("finished earlier", same.stdout)
    self.assertNotEqual(other.returncode, 0)
    self.assertIn("is a run of another configuration (learning_rate: 0.1 there, 0.5 now)",
                  other.stderr)


def run_script(name, *args):
  env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
  return subprocess.run([sys.executable, os.path.join(ROOT, "scripts", name), *args],
                        capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)


def run_scripts(*command_lines):
  """Each ``(script, *args)`` as ``run_script`` runs it, all in one process that starts
  TensorFlow once (``tests/script_runner.py``): results with ``returncode``, ``stdout``,
  ``stderr``, in order."""
  env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
  done = subprocess.run([sys.executable, "-m", "tests.script_runner", json.dumps(command_lines)],
                        capture_output=True, text=True, timeout=600, cwd=ROOT, env=env)
  if done.returncode:
    raise AssertionError(f"tests/script_runner.py failed: {done.stderr[-3000:]}")
  return [types.SimpleNamespace(**r) for r in json.loads(done.stdout.strip().splitlines()[-1])]


class BadFlagTest(tf.test.TestCase):

  def test_collect_with_no_states_keeps_the_existing_dataset(self):
    data_dir = self.create_tempdir().full_path
    path = os.path.join(data_dir, "pong.npz")
    with open(path, "wb") as f:
      f.write(b"an existing dataset")
    no_states, result = run_scripts(
        ("collect_atari.py", "--game=pong", f"--data_dir={data_dir}", "--num_states=0"),
        ("collect_atari.py", "--game=pong", f"--data_dir={data_dir}", "--num_states=20"))
    self.assertNotEqual(no_states.returncode, 0)
    self.assertIn("num_states", no_states.stderr)
    self.assertNotEqual(result.returncode, 0)
    self.assertIn(f"{path} exists", result.stderr)
    self.assertIn("--overwrite", result.stderr)
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
    results = run_scripts(*(("distill.py", f"--config=configs/distill.py:{method}",
                             f"--config.data_path={path}", "--game=breakout",
                             f"--workdir={workdir}") for method in ("regular", "sobolev")))
    for result in results:
      self.assertNotEqual(result.returncode, 0)
      self.assertIn(f"--game=breakout but {path} holds pong states", result.stderr)
      self.assertFalse(os.path.exists(workdir))

  def test_unwritable_gif_or_result_is_refused_before_any_game(self):
    blocker = os.path.join(self.create_tempdir().full_path, "a_file")
    with open(blocker, "w") as f:
      f.write("not a directory")
    results = run_scripts(("play_policy.py", "--saved_model=unused", f"--gif={blocker}/out.gif"),
                          ("evaluate_policy.py", "--workdir=unused", f"--output={blocker}/out.gif"))
    for what, result in zip(("GIF", "result"), results):
      self.assertNotEqual(result.returncode, 0)
      self.assertIn(f"Cannot write the {what} to {blocker}", result.stderr)

  def test_checked_before_any_work(self):
    root = self.create_tempdir().full_path
    cases = [
        (("benchmark.py", "--cases=regression,bogus"), "unknown cases ['bogus']"),
        (("benchmark.py", "--min_seconds=nan"), "--min_seconds must be a finite number"),
        (("benchmark.py", "--min_seconds=inf"), "--min_seconds must be a finite number"),
        (("synthetic_gradients.py", "--config=configs/regression.py:quick",
          f"--workdir={root}/grid"), "--config is not a config for this script: it lacks"),
        (("distill_grid.py", "--config=configs/teacher.py:quick", f"--workdir={root}/grid",
          f"--data_dir={root}", f"--output_dir={root}/out"),
         "This script takes configs/distill.py[:<variant>]"),
        (("sg_report.py", f"--workdir={root}", f"--workdir={root}", f"--output={root}/report"),
         "--workdir names a directory twice"),
        (("play_policy.py", "--saved_model=unused", f"--gif={root}/pong.png"),
         f"GIF path {root}/pong.png must end in .gif"),
        (("sg_report.py", "--workdir=workdirs/sg_misspelt", f"--output={root}/report"),
         "No workdir workdirs/sg_misspelt"),
        (("distill_grid.py", "--config=configs/distill.py:grid_quick",
          "--config.fractions=(0.5,1.5)", f"--workdir={root}/grid", f"--data_dir={root}",
          f"--output_dir={root}/out"), r"config.fractions must be in (0, 1), got 1.5"),
        (("distill_grid.py", "--config=configs/distill.py:grid_quick", f"--workdir={root}/grid",
          f"--data_dir={root}", f"--output_dir={root}/out", f"--merge_report={root}/none"),
         "No final.csv in the report directory"),
        (("demo.py", "--config=configs/demo.py:quick", f"--output={root}"), "is a directory"),
        (("export_policy.py", f"--workdir={ROOT}/teachers/pong", f"--saved_model={root}/sm",
          f"--weights_dir={root}/wd"), f"{root}/wd/weights holds files that are not part of a "
         "teacher's weights (notes.txt)"),
    ]
    _write(f"{root}/wd/weights/notes.txt", "a user's")
    for (args, words), result in zip(cases, run_scripts(*(args for args, _ in cases))):
      self.assertNotEqual(result.returncode, 0, msg=args)
      self.assertIn(words, result.stderr, msg=args)
      self.assertNotIn("s/step", result.stdout + result.stderr, msg=args)  # Nothing timed.
    self.assertFalse(os.path.exists(os.path.join(root, "grid", "pong")))
    self.assertFalse(os.path.exists(os.path.join(root, "report.md")))
    self.assertFalse(os.path.exists(os.path.join(root, "sm")))  # Checked before the export.

  def test_teachers_report_pairs_and_evaluations(self):
    root = self.create_tempdir().full_path
    workdir = os.path.join(root, "pong")
    os.makedirs(workdir)
    with open(os.path.join(workdir, "episodes.csv"), "w") as f:
      f.write("frames,score,length\n")  # No finished game yet: a valid report.
    out = os.path.join(root, "out")
    result = run_script("teachers_report.py", f"--workdirs=pong:{workdir}", f"--output_dir={out}")
    self.assertEqual(result.returncode, 0, msg=result.stderr[-2000:])
    with open(os.path.join(workdir, "evaluation.json"), "w") as f:
      f.write(json.dumps({"game": "pong", "mean": 1.0, "std": 0.5, "episodes": 3}))
    cases = [((f"--workdirs={workdir}",), "is not game:workdir"),
             ((f"--workdirs=breakout:{workdir}",), "evaluates pong, not breakout"),
             ((f"--workdirs=pong:{workdir},pong:{workdir}",), "pong is given twice")]
    results = run_scripts(*(("teachers_report.py", *args, f"--output_dir={root}/other")
                            for args, _ in cases))
    for (args, words), result in zip(cases, results):
      self.assertNotEqual(result.returncode, 0, msg=args)
      self.assertIn(words, result.stderr, msg=args)
    self.assertFalse(os.path.exists(os.path.join(root, "other", "teachers.md")))

  def test_teacher_of_another_game_than_the_data(self):
    root = self.create_tempdir().full_path
    path = os.path.join(root, "pong.npz")
    writer = dataset.StackedFrameWriter()
    for i in range(16):  # Eight episodes of two states.
      writer.add(np.zeros((84, 84, 4), np.uint8), np.log(np.ones(3) / 3), 0, 0.0, i // 2,
                 i % 2 == 0)
    dataset.save(writer.build({"game": "pong"}), path)
    config = distill_configs.get_config("sobolev")
    config.update(data_path=path, train_fraction=0.5, validation_fraction=0.25)
    with self.assertRaisesRegex(ValueError, "The teacher has 4 actions but .*pong.npz records 3"):
      distill.train_and_evaluate(config, os.path.join(root, "work"),
                                 teacher_logits=kill.fixed_teacher(4, seed=0))

  def test_unknown_method_fails_before_any_training(self):
    workdir = self.create_tempdir().full_path
    result = run_script("synthetic_gradients.py", "--config=configs/synthetic_gradients.py:quick",
                        "--methods=backprop,bogus", f"--workdir={workdir}")
    self.assertNotEqual(result.returncode, 0)
    self.assertIn("Unknown methods ['bogus']", result.stderr)
    self.assertEqual(os.listdir(workdir), [])


def _write(path, text):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w") as f:
    f.write(text)
  return path


def _read(path):
  with open(path) as f:
    return f.read()


def _whole_teacher(seed):
  """A teacher of pong with every variable built (``load_teacher`` restores the value head
  too), its policy's weights drawn from ``seed``."""
  net = kill.fixed_teacher(3, seed=seed)
  net.logits_and_value(tf.zeros([1, 84, 84, 4], tf.uint8))
  return net


def _sg_run(workdir, method="backprop", config_name="cifar10_cpu", **result):
  """A finished run of scripts/synthetic_gradients.py as its trainer leaves it."""
  config = sg_configs.get_config(config_name).to_dict()
  config.update(method=method, seed=0)
  run = os.path.join(workdir, method)
  _write(os.path.join(run, "curve.csv"), "step,images,wall_seconds,train_loss,test_top1,test_top5\n"
         f"4,256,1.0,2.0,0.2,0.6\n{config['num_steps']},512,2.0,1.5,0.3,0.7\n")
  _write(os.path.join(run, "result.json"), json.dumps(dict(
      dict(finished=True, steps=config["num_steps"], test_top1=0.3, test_top5=0.7, method=method,
           config=config), **result), default=str))
  return run


class NothingWrittenIsLostTest(tf.test.TestCase):
  """Reports, outputs and weights: what exists is replaced only by what is meant to replace it."""

  def test_outputs_over_files_they_do_not_own(self):
    root = self.create_tempdir().full_path
    notes = "notes, not a report\n"
    section = lambda name: f"<!-- section: {name} -->\ntables\n<!-- end of section: {name} -->\n"
    kept = [_write(f"{root}/sg/cifar10.md", "# Synthetic gradients on CIFAR-10 (section 4.3, "
                   "Table 1), config `cifar10_cpu`\nshipped\n"),
            _write(f"{root}/notes.md", notes), _write(f"{root}/bench.md", section("steps")),
            _write(f"{root}/peers.md", section("peers")), _write(f"{root}/t/teachers.md", notes),
            _write(f"{root}/out.json", notes), _write(f"{root}/keep.gif", notes),
            _write(f"{root}/run_config.json", json.dumps({"learning_rate": 0.1})),
            _write(f"{root}/grid_out/figure4.md", "# Policy distillation (section 4.2, Figure 4)")]
    before = [_read(path) for path in kept]
    _write(f"{root}/pong/episodes.csv", "frames,score,length\n")
    _write(f"{root}/student/curves.csv", "step,split,action_error,kl\n2,test,0.5,0.1\n")
    _write(f"{root}/student/result.json", json.dumps({"method": "regular", "steps": 2}))
    os.makedirs(f"{root}/empty")
    os.makedirs(f"{root}/grid")
    cases = [
        (("sg_report.py", f"--workdir={root}/empty", f"--output={root}/sg/cifar10"),
         f"No finished run in {root}/empty: refusing to replace {root}/sg/cifar10.md"),
        (("sg_report.py", f"--workdir={root}/student", f"--output={root}/sg/cifar10"),
         f"No finished run in {root}/student: refusing to replace {root}/sg/cifar10.md"),
        (("sg_report.py", f"--workdir={root}/empty", f"--output={root}/notes"),
         f"{root}/notes.md exists and is not a report written earlier"),
        (("demo.py", "--config=configs/demo.py:quick", f"--output={root}/notes.md"),
         f"{root}/notes.md exists and is not a report written earlier"),
        (("benchmark.py", "--cases=", f"--output={root}/bench.md"), "--cases is empty"),
        (("benchmark_peers.py", "--cases=", f"--output={root}/peers.md"), "--cases is empty"),
        (("teachers_report.py", f"--workdirs=pong:{root}/pong", f"--output_dir={root}/t"),
         f"{root}/t/teachers.md exists and is not a report written earlier"),
        (("evaluate_policy.py", f"--workdir={ROOT}/teachers/pong", f"--output={root}/out.json"),
         f"{root}/out.json exists and is not a result written earlier"),
        (("evaluate_policy.py", f"--workdir={ROOT}/teachers/pong",
          f"--output={root}/run_config.json"),
         f"{root}/run_config.json exists and is not a result written earlier ({root}/"
         "run_config.json: mean must be a number, got None."),
        (("play_policy.py", f"--saved_model={ROOT}/teachers/pong/saved_model",
          f"--gif={root}/keep.gif"), f"{root}/keep.gif exists and is not a GIF written earlier"),
        (("distill_grid.py", "--config=configs/distill.py:grid_quick", "--report_only",
          f"--workdir={root}/grid", f"--data_dir={root}", f"--output_dir={root}/grid_out"),
         f"No finished run in {root}/grid: refusing to replace {root}/grid_out/figure4.md"),
    ]
    for (args, words), result in zip(cases, run_scripts(*(args for args, _ in cases))):
      self.assertNotEqual(result.returncode, 0, msg=args)
      self.assertIn(words, result.stderr, msg=args)
    self.assertEqual([_read(path) for path in kept], before)
    self.assertEqual(sorted(os.listdir(f"{root}/sg")), ["cifar10.md"])
    from sobolev_tf.atari import evaluation  # pylint: disable=g-import-not-at-top
    for ours in ("evaluation.json", "evaluation30.json"):  # Results are replaced.
      evaluation.check_result_destination(os.path.join(ROOT, "teachers", "pong", ours))

  def test_teacher_weights_survive_a_kill_between_the_two_renames(self):
    root = self.create_tempdir().full_path
    shipped, _ = train_teacher.load_teacher(os.path.join(ROOT, "teachers", "pong"), "pong")
    path = train_teacher.save_teacher_weights(shipped, os.path.join(root, "pong"))
    directory = os.path.dirname(path)
    frames = tf.zeros([1, 84, 84, 4], tf.uint8)
    replace = os.replace

    def killed_at_the_last_rename(src, dst):
      if dst == directory:  # The new weights' move into place.
        raise KeyboardInterrupt
      replace(src, dst)

    with mock.patch.object(os, "replace", killed_at_the_last_rename):
      with self.assertRaises(KeyboardInterrupt):
        train_teacher.save_teacher_weights(_whole_teacher(seed=1),
                                           os.path.join(root, "pong"))
    loaded, loaded_path = train_teacher.load_teacher(os.path.join(root, "pong"), "pong")
    self.assertEqual(loaded_path, os.path.join(directory + ".old", "weights"))  # The earlier.
    self.assertAllClose(loaded(frames), shipped(frames))
    self.assertFalse(os.path.exists(directory))  # A reader moves nothing.
    newer = _whole_teacher(seed=2)
    self.assertEqual(train_teacher.save_teacher_weights(newer, os.path.join(root, "pong")), path)
    self.assertEqual(sorted(os.listdir(os.path.join(root, "pong"))), ["weights"])
    self.assertAllClose(train_teacher.load_teacher(os.path.join(root, "pong"), "pong")[0](frames),
                        newer(frames))

  def test_teacher_weights_saved_again_after_a_save_killed_while_writing(self):
    root = self.create_tempdir().full_path
    directory = os.path.join(root, "pong", "weights")
    earlier = _whole_teacher(seed=0)
    train_teacher.save_teacher_weights(earlier, os.path.join(root, "pong"))

    class KilledCheckpoint:  # Dies as tf.train.Checkpoint.write can: its shards half written.
      def __init__(self, **unused):
        pass

      def write(self, prefix):
        _write(f"{prefix}_temp/part-00000-of-00001.data-00000-of-00001", "half")
        os.kill(os.getpid(), signal.SIGKILL)

    pid = os.fork()  # The child runs no TensorFlow op: only Python file operations.
    if pid == 0:
      try:
        with mock.patch.object(tf.train, "Checkpoint", KilledCheckpoint):
          train_teacher.save_teacher_weights(earlier, os.path.join(root, "pong"))
      finally:
        os._exit(1)
    self.assertEqual(os.waitpid(pid, 0)[1], signal.SIGKILL)
    self.assertIn("weights_temp", os.listdir(directory + ".tmp"))  # What the kill left.
    frames = tf.zeros([1, 84, 84, 4], tf.uint8)
    self.assertAllClose(train_teacher.load_teacher(os.path.join(root, "pong"), "pong")[0](frames),
                        earlier(frames))
    newer = _whole_teacher(seed=1)
    train_teacher.save_teacher_weights(newer, os.path.join(root, "pong"))
    self.assertEqual(sorted(os.listdir(os.path.join(root, "pong"))), ["weights"])
    self.assertAllClose(train_teacher.load_teacher(os.path.join(root, "pong"), "pong")[0](frames),
                        newer(frames))

  def test_weights_beside_directories_of_the_temporary_names(self):
    for leftover in ("weights.tmp", "weights.old"):
      with self.subTest(leftover=leftover):
        root = self.create_tempdir().full_path
        train_teacher.save_teacher_weights(_whole_teacher(seed=0), root)
        users = _write(os.path.join(root, leftover, "important.txt"), "keep")
        with self.assertRaisesRegex(ValueError, f"{root}/{leftover} holds files that are not "
                                    r"part of a teacher's weights \(important.txt\)"):
          train_teacher.save_teacher_weights(_whole_teacher(seed=1), root)
        self.assertEqual(_read(users), "keep")
        self.assertEqual(sorted(os.listdir(root)), ["weights", leftover])


def _tiny_regression(config):
  """``config`` (a regression config) shrunk to one cell of a few steps."""
  config.update(dict(functions=("booth",), sizes=(20,), seeds=(0,), hidden_sizes=(4,),
                     num_steps=4, steps_per_call=2, eval_steps=(2,), num_test=10,
                     grid_resolution=0, checkpoint_minutes=0.0, second_order_sizes=(),
                     jit_compile=False))
  return config


class ReportsReplaceOnlyTheirOwnTest(tf.test.TestCase):
  """Report writers replace their own earlier files and refuse, before any work, others."""

  def test_scripts_refuse_files_they_do_not_own(self):
    root = self.create_tempdir().full_path
    notes = "notes, not a report\n"
    kept = {name: _write(f"{root}/{name}", notes) for name in (
        "fig/figure2.md", "fig_png/curves.png", "sens/sensitivity_curves.csv",
        "conv/convergence.md", "pricing/table.md", "pricing_png/dimension.png",
        "pricing_json/surrogate_market.json", "pricing_model/surrogate/notes.txt",
        "bench/notes.md", "peers/notes.md")}
    figure2 = ("reproduce_figure2.py", "--config=configs/regression.py:quick")
    pricing = ("pricing.py", "--config=configs/pricing.py:quick")
    cases = [
        ((*figure2, f"--workdir={root}/w/fig", f"--output_dir={root}/fig"), "fig/figure2.md"),
        ((*figure2, f"--workdir={root}/w/fig_png", f"--output_dir={root}/fig_png"),
         "fig_png/curves.png"),
        (("regression_sensitivity.py", "--config=configs/regression_sensitivity.py:quick",
          f"--workdir={root}/w/sens", f"--output_dir={root}/sens"),
         "sens/sensitivity_curves.csv"),
        (("regression_convergence.py", "--config=configs/regression_convergence.py:quick",
          f"--workdir={root}/w/conv", f"--output_dir={root}/conv"), "conv/convergence.md"),
        ((*pricing, f"--workdir={root}/w/pricing", f"--output_dir={root}/pricing"),
         "pricing/table.md"),
        ((*pricing, f"--workdir={root}/w/pricing_png", f"--output_dir={root}/pricing_png"),
         "pricing_png/dimension.png"),
        ((*pricing, f"--workdir={root}/w/pricing_json", f"--output_dir={root}/pricing_json"),
         "pricing_json/surrogate_market.json"),
        (("benchmark.py", "--cases=regression", f"--output={root}/bench/notes.md"),
         "bench/notes.md"),
        (("benchmark_peers.py", "--cases=profile", f"--output={root}/peers/notes.md"),
         "peers/notes.md"),
    ]
    for (args, name), result in zip(cases, run_scripts(*(args for args, _ in cases))):
      self.assertNotEqual(result.returncode, 0, msg=args)
      self.assertIn(f"{root}/{name} exists and is not a", result.stderr, msg=args)
    result, = run_scripts((*pricing, f"--workdir={root}/w/pricing_model",
                           f"--output_dir={root}/pricing_model"))
    self.assertNotEqual(result.returncode, 0)
    self.assertIn(f"{root}/pricing_model/surrogate holds files that are not part of a "
                  "SavedModel (notes.txt)", result.stderr)
    for path in kept.values():
      self.assertEqual(_read(path), notes)
    for workdir in os.listdir(f"{root}/w"):  # Refused before any training.
      self.assertEqual(os.listdir(f"{root}/w/{workdir}"), [], msg=workdir)
    for directory in ("fig", "sens", "conv", "pricing", "bench", "peers"):  # Nothing written.
      self.assertLen(os.listdir(f"{root}/{directory}"), 1, msg=directory)

  def test_reports_rerun_into_their_own_earlier_output(self):
    from configs import pricing as pricing_configs  # pylint: disable=g-import-not-at-top
    from configs import regression_convergence  # pylint: disable=g-import-not-at-top
    from configs import regression_sensitivity  # pylint: disable=g-import-not-at-top
    from sobolev_tf.pricing import experiment as pricing  # pylint: disable=g-import-not-at-top
    from sobolev_tf.regression import convergence  # pylint: disable=g-import-not-at-top
    from sobolev_tf.regression import sensitivity  # pylint: disable=g-import-not-at-top
    root = self.create_tempdir().full_path
    figure2 = _tiny_regression(regression_configs.get_config("quick"))
    study = regression_sensitivity.get_config("quick")
    _tiny_regression(study.base)
    study.settings = dict(default=dict(num_steps=4), tanh=dict(num_steps=4, activation="tanh"),
                          paper_text=dict(num_steps=4, standardize=False))
    convergence_config = regression_convergence.get_config("quick")
    _tiny_regression(convergence_config.base)
    for name in convergence_config.order:
      convergence_config.settings[name].num_steps = 8 if name == "softplus_400" else 4
    prices = pricing_configs.get_config("quick")
    prices.update(dict(parts=("table", "curve"), seeds=(0,), num_test=16,
                       table=(("bachelier", 3, (64,)),), plot_cases=(("bachelier", 3, 64),)))
    prices.curve.sizes = (64,)
    prices.export.m, prices.estimator.epochs = 64, 1
    runs = [
        lambda: experiment.train_and_evaluate(figure2, f"{root}/w/fig", f"{root}/out", "test"),
        lambda: sensitivity.train_and_evaluate(study, f"{root}/w/sens", f"{root}/out", "test"),
        lambda: convergence.train_and_evaluate(convergence_config, f"{root}/w/conv",
                                               f"{root}/out", "test"),
        lambda: pricing.train_and_evaluate(prices, f"{root}/w/pricing", f"{root}/out", "test"),
    ]
    for run in runs:
      run()
    written = lambda: {name: os.stat(f"{root}/out/{name}").st_mtime_ns
                       for name in os.listdir(f"{root}/out")}
    first = written()
    self.assertContainsSubset(["figure2.md", "figure2.csv", "curves.png", "sensitivity.md",
                               "sensitivity_curves.csv", "convergence.png", "table.md",
                               "curve.csv", "surrogate", "surrogate_market.json"], first)
    for run in runs:  # Each replaces its own report, in a directory the others share.
      run()
    again = written()
    self.assertCountEqual(again, first)
    self.assertEqual([name for name in first if again[name] == first[name]], [])

  def test_committed_reports_are_their_writers_own(self):
    """Re-running into a config's default results directory replaces what it wrote there."""
    from configs import pricing as pricing_configs  # pylint: disable=g-import-not-at-top
    from configs import regression_convergence  # pylint: disable=g-import-not-at-top
    from configs import regression_sensitivity  # pylint: disable=g-import-not-at-top
    from sobolev_tf import files  # pylint: disable=g-import-not-at-top
    from sobolev_tf.pricing import experiment as pricing  # pylint: disable=g-import-not-at-top
    from sobolev_tf.regression import convergence  # pylint: disable=g-import-not-at-top
    from sobolev_tf.regression import sensitivity  # pylint: disable=g-import-not-at-top
    checked = []
    for variant in ("default", "full", "fixed_budget", "fixed_budget_full", "quick", "paper"):
      config = regression_configs.get_config(variant)
      for name, first in experiment.report_starts(config).items():
        checked.append(os.path.join(ROOT, config.results_dir, name))
        checks.check_output_file(checked[-1], "report", starts_with=first)
    sensitivity.check_report_destination(
        os.path.join(ROOT, regression_sensitivity.get_config().results_dir), "sensitivity",
        sensitivity.TITLE)
    sensitivity.check_report_destination(
        os.path.join(ROOT, regression_convergence.get_config().results_dir), "convergence",
        convergence.TITLE, plots=(convergence.CURVES_PLOT,))
    for variant in ("default", "curve", "dimension", "dimension_peak_0_01", "seeds20"):
      config = pricing_configs.get_config(variant)
      for name, first in pricing.report_starts(config).items():
        checked.append(os.path.join(ROOT, config.results_dir, name))
        checks.check_output_file(checked[-1], "pricing report", starts_with=first)
    files.check_saved_model_destination(os.path.join(ROOT, "results", "pricing", "surrogate"))
    checks.check_output_file(os.path.join(ROOT, "results", "benchmarks.md"), "report",
                             starts_with=files.SECTIONS_START)
    for name in ("regression/figure2.md", "regression/paper/curves.png", "pricing/table.md",
                 "pricing/surrogate_market.json", "pricing/dimension_peak_0_01/dimension.md"):
      self.assertIn(os.path.join(ROOT, "results", name), checked)
      self.assertTrue(os.path.exists(os.path.join(ROOT, "results", name)), msg=name)

  def test_sections_are_added_only_to_files_of_sections(self):
    from sobolev_tf import files  # pylint: disable=g-import-not-at-top
    root = self.create_tempdir().full_path
    shared = os.path.join(root, "benchmarks.md")
    shutil.copy(os.path.join(ROOT, "results", "benchmarks.md"), shared)
    files.write_section(shared, "steps", "# new steps")
    files.write_section(shared, "peers", "## new peers")
    text = _read(shared)
    self.assertTrue(text.startswith("<!-- section: steps -->\n# new steps\n"))
    self.assertIn("<!-- section: peers -->\n## new peers\n<!-- end of section: peers -->", text)
    notes = _write(os.path.join(root, "notes.md"), "# My notes\n")
    with self.assertRaisesRegex(ValueError, f"{notes} exists and is not a Markdown file of "
                                "named sections"):
      files.write_section(notes, "steps", "tables")
    self.assertEqual(_read(notes), "# My notes\n")
    files.write_section(os.path.join(root, "new.md"), "peers", "## peers")  # A new file.

  def test_saved_regressor_destination(self):
    import sobolev_tf as st  # pylint: disable=g-import-not-at-top
    root = self.create_tempdir().full_path
    rng = np.random.default_rng(0)
    x, y, dy = rng.uniform(size=(16, 2)), rng.uniform(size=16), rng.uniform(size=(16, 2))
    model = st.SobolevRegressor(hidden_layers=(4,), epochs=1, verbose=False).fit(x, y, dy)
    saved = model.save(os.path.join(root, "regressor"))
    self.assertEqual(model.save(saved), saved)  # Its own earlier save is replaced.
    users = _write(os.path.join(root, "notes", "notes.txt"), "keep")
    foreign = _write(os.path.join(root, "other", "estimator.json"), '{"format": "theirs"}')
    cases = [
        (os.path.join(root, "notes"), f"{root}/notes holds files that are not part of a saved "
         r"SobolevRegressor \(notes.txt\)"),
        (users, f"{users} exists and is not a directory"),
        (os.path.join(root, "other"), f"{foreign} exists and is not a saved SobolevRegressor's "
         "estimator.json"),
    ]
    for path, words in cases:
      with self.subTest(path=path):
        with self.assertRaisesRegex(ValueError, words):
          model.save(path)
    self.assertEqual(_read(users), "keep")
    self.assertEqual(_read(foreign), '{"format": "theirs"}')
    self.assertEqual(sorted(os.listdir(root)), ["notes", "other", "regressor"])


class ReportsCheckWhatTheyReadTest(tf.test.TestCase):

  def test_synthetic_gradients_report(self):
    from sobolev_tf.synthetic_gradients import report  # pylint: disable=g-import-not-at-top
    named = sg_configs.get_config("cifar10_cpu").to_dict()
    cases = [
        (dict(test_top1=1.7), r"backprop/result.json: test_top1 must be a fraction in \[0, 1\], "
         "got 1.7"),
        (dict(test_top5=float("nan")), r"test_top5 must be a fraction in \[0, 1\], got nan"),
        (dict(steps=None), r"steps must be a positive integer, got None"),
        (dict(finished=False), r"No finished run in .*: refusing to replace .*/r.md"),
        (dict(config_name="quick"), r"backprop/result.json is a run of another config than "
         r"'cifar10_cpu' \(batch_size: 8 there, 64 now;"),
        (dict(curve_row="8000,512,2.0,1.5,0.3,0.7\n"), r"curve.csv holds step 8000 twice"),
        (dict(result_text="{cut"), r"backprop/result.json is not valid JSON"),
    ]
    for change, words in cases:
      with self.subTest(words=words):
        root = self.create_tempdir().full_path
        change = dict(change)
        curve_row, text = change.pop("curve_row", None), change.pop("result_text", None)
        run = _sg_run(os.path.join(root, "seed0"), config_name=change.pop("config_name",
                                                                          "cifar10_cpu"), **change)
        if curve_row:
          with open(os.path.join(run, "curve.csv"), "a") as f:
            f.write(curve_row)
        if text:
          _write(os.path.join(run, "result.json"), text)
        with self.assertRaisesRegex(ValueError, words):
          report.write_report([os.path.join(root, "seed0")], "cifar10_cpu",
                              os.path.join(root, "out", "r"), "cmd", named_config=named)
        self.assertFalse(os.path.exists(os.path.join(root, "out")))
    root = self.create_tempdir().full_path
    _sg_run(os.path.join(root, "seed0"))
    report.write_report([os.path.join(root, "seed0")], "cifar10_cpu", os.path.join(root, "r"),
                        "cmd", named_config=named)
    self.assertIn("| Backprop | 94.3% (backprop) | 30.0 |", _read(os.path.join(root, "r.md")))

  def test_files_read_back_are_named(self):
    from sobolev_tf import files  # pylint: disable=g-import-not-at-top
    from sobolev_tf import loggers  # pylint: disable=g-import-not-at-top
    from sobolev_tf.atari import distill_grid  # pylint: disable=g-import-not-at-top
    from sobolev_tf.atari import evaluation  # pylint: disable=g-import-not-at-top
    root = self.create_tempdir().full_path
    final = "game,fraction,method,learning_rate,alpha,seeds,train_states,action_error," \
            "action_error_std,kl_std,wall_minutes\npong,0.5,regular,0.001,0,2,10,0.5,0.1,0.01,1\n"
    curves = "game,fraction,method,seed,selected,step,split,action_error,kl\n" \
             "pong,0.5,regular,0,True,2,test,0.5,0.2\n"
    _write(f"{root}/merge/final.csv", final)
    _write(f"{root}/merge/curves.csv", curves)
    episodes = _write(f"{root}/pong/episodes.csv", "frames,score,length\n8,-21.0,900\noops,1,2\n")
    cases = [
        (lambda: distill_grid.read_report(f"{root}/merge"),
         f"{root}/merge/final.csv lacks the columns kl "),
        (lambda: loggers.read_rows(episodes, train_teacher.EPISODE_COLUMNS,
                                   train_teacher.EPISODE_TYPES, "frames", None),
         f"Malformed CSV file {episodes}, line 3: invalid literal for int"),
        (lambda: files.read_json(_write(f"{root}/result.json", "{cut")),
         f"{root}/result.json is not valid JSON"),
        (lambda: evaluation.read_result(_write(f"{root}/evaluation.json", json.dumps(dict(
            game="pong", mean="high", std=1, episodes=3))), "pong"),
         f"{root}/evaluation.json: mean must be a number, got 'high'"),
        (lambda: files.read_csv(_write(f"{root}/short.csv", "a,b,c\n1,2\n")),
         f"Malformed CSV file {root}/short.csv, line 2: 2 cells for 3 columns"),
        (lambda: files.read_csv(_write(f"{root}/long.csv", "a,b\n1,2,3\n")),
         f"Malformed CSV file {root}/long.csv, line 2: 3 cells for 2 columns"),
        (lambda: distill_grid.final_validation_kl(os.path.dirname(_write(
            f"{root}/run/curves.csv", "step,split,action_error,kl\n2,validation,0.5,0.1\n"
            "2,test,0.5,0.1\n2,validation,0.5,0.1\n"))),
         rf"{root}/run/curves.csv holds step 2 twice for \{{'split': 'validation'\}}"),
    ]
    for read, words in cases:
      with self.subTest(words=words):
        with self.assertRaisesRegex(ValueError, words):
          read()
    result, = run_scripts(("teachers_report.py", f"--workdirs=pong:{root}/pong",
                           f"--output_dir={root}/out"))
    self.assertNotEqual(result.returncode, 0)
    self.assertIn(f"Malformed CSV file {episodes}, line 3", result.stderr)


class ResumeChecksItsRecordsTest(tf.test.TestCase):
  """A resumed run refuses when what it appends to or compares with was lost or edited."""

  def _finished(self, name, train):
    """A finished quick run of ``train(workdir)``, copied for each case."""
    cache = os.path.join(self.get_temp_dir(), f"finished_{name}")
    if not os.path.exists(cache):
      train(cache)
    workdir = os.path.join(self.create_tempdir().full_path, name)
    shutil.copytree(cache, workdir)
    return workdir

  def _distill(self, workdir, num_steps=6, **overrides):
    data = os.path.join(self.get_temp_dir(), "pong.npz")
    if not os.path.exists(data):
      writer = dataset.StackedFrameWriter()
      for i in range(16):  # Eight episodes of two states.
        writer.add(np.zeros((84, 84, 4), np.uint8), np.log(np.ones(3) / 3), 0, 0.0, i // 2,
                   i % 2 == 0)
      dataset.save(writer.build({"game": "pong"}), data)
    config = distill_configs.get_config("quick")
    config.update(dict(dict(method="regular", data_path=data, num_steps=num_steps, eval_every=2,
                            checkpoint_minutes=0.0, train_fraction=0.5,
                            validation_fraction=0.25), **overrides))
    distill.train_and_evaluate(config, workdir, log=lambda s: None)

  def _teacher(self, workdir, total_frames=80):
    config = teacher_configs.get_config("quick")
    config.total_frames = total_frames
    train_teacher.train_and_evaluate(config, workdir, log=lambda s: None)

  def _regression(self, workdir, num_steps=4, **overrides):
    config = regression_configs.get_config("quick")
    config.update(dict(dict(hidden_sizes=(4,), num_steps=num_steps, steps_per_call=1,
                            eval_steps=(1, 2), num_test=10, grid_resolution=0,
                            checkpoint_minutes=0.0), **overrides))
    experiment.train_group([experiment.Run("booth", 20, "sobolev", 0)], config, workdir,
                           log=lambda s: None)

  def test_lost_or_edited_records_are_refused(self):
    def drop_lines(path, first, count=1):
      lines = _read(path).splitlines(True)
      _write(path, "".join(lines[:first] + lines[first + count:]))

    def repeat_line(path, index):
      lines = _read(path).splitlines(True)
      _write(path, "".join(lines[:index + 1] + lines[index:]))

    curves = "curves/n20_relu_order1.csv"
    cases = [  # (run, file changed, change, the error's words)
        ("distill", "curves.csv", os.remove, r"curves.csv is missing, but the run resumes at "
         r"step 6: the rows logged before it would be lost"),
        ("distill", "curves.csv", lambda p: repeat_line(p, 1), r"curves.csv holds step 2 twice "
         r"for \{'split': 'test'\}"),
        ("distill", "curves.csv", lambda p: drop_lines(p, 1, 2), r"curves.csv has no row at step "
         r"2, an evaluation before the restored step"),
        ("distill", "run_config.json", os.remove, r"run_config.json is missing: nothing records "
         "what the run beside it was trained for"),
        ("teacher", "run_config.json", os.remove, r"run_config.json is missing"),
        ("teacher", "episodes.csv", os.remove, r"episodes.csv is missing, but the run resumes at "
         r"frames 80"),
        ("teacher", "episodes.csv", lambda p: _write(p, _read(p) + "80,1.0,5\n40,1.0,5\n"),
         r"episodes.csv: frames 40 comes after 80"),
        ("regression", curves, os.remove, r"n20_relu_order1.csv is missing"),
        ("regression", curves, lambda p: drop_lines(p, 1), r"n20_relu_order1.csv has no row at "
         r"step 1"),
        ("regression", curves, lambda p: repeat_line(p, 1), r"n20_relu_order1.csv holds step 1 "
         r"twice for \{'function': 'booth'"),
        ("regression", "checkpoints/n20_relu_order1/run_config.json", os.remove,
         r"run_config.json is missing"),
    ]
    trainers = dict(distill=(self._distill, lambda w: self._distill(w, num_steps=8)),
                    teacher=(self._teacher, lambda w: self._teacher(w, total_frames=160)),
                    regression=(self._regression, lambda w: self._regression(w, num_steps=6)))
    for name, changed, change, words in cases:
      with self.subTest(name=name, words=words):
        first, resume = trainers[name]
        workdir = self._finished(name, first)
        change(os.path.join(workdir, changed))
        with self.assertRaisesRegex(ValueError, words):
          resume(workdir)
    for name, (first, resume) in trainers.items():  # Untouched, each resumes.
      resume(self._finished(name, first))

  def test_pricing_cells_without_their_record(self):
    from configs import pricing as pricing_configs  # pylint: disable=g-import-not-at-top
    from sobolev_tf.pricing import experiment as pricing  # pylint: disable=g-import-not-at-top
    workdir = self.create_tempdir().full_path
    header = ",".join(pricing.CSV_COLUMNS) + "\n"  # A run that had fitted no cell yet.
    cells = _write(os.path.join(workdir, "cells.csv"), header)
    with self.assertRaisesRegex(ValueError, f"{workdir}/run_config.json is missing: nothing "
                                "records what the run beside it was trained for"):
      pricing.run_cells([], pricing_configs.get_config("quick"), workdir)
    self.assertEqual(sorted(os.listdir(workdir)), ["cells.csv"])
    self.assertEqual(_read(cells), header)


  def test_resumes_under_other_evaluation_settings(self):
    steps = lambda path: sorted({int(line.split(",")[0]) for line in _read(path).splitlines()[1:]})
    workdir = self._finished("distill", self._distill)  # Evaluated at 2, 4, 6.
    self._distill(workdir, num_steps=12, eval_every=3)  # At 9 and 12.
    self._distill(workdir, num_steps=14, eval_every=2)  # At 14.
    curves = os.path.join(workdir, "curves.csv")
    self.assertEqual(steps(curves), [2, 4, 6, 9, 12, 14])
    lines = _read(curves).splitlines(True)
    _write(curves, "".join(line for line in lines if not line.startswith("9,")))
    with self.assertRaisesRegex(ValueError, "curves.csv has no row at step 9"):
      self._distill(workdir, num_steps=16, eval_every=4)  # Still checked, under its settings.

    workdir = self._finished("regression", self._regression)  # At 1, 2 and 4 (the last).
    self._regression(workdir, num_steps=8, steps_per_call=2, eval_steps=(5,))  # At 6 and 8.
    self._regression(workdir, num_steps=10, steps_per_call=1, eval_steps=(1, 2, 9))  # 9, 10.
    self.assertEqual(steps(os.path.join(workdir, "curves", "n20_relu_order1.csv")),
                     [1, 2, 4, 6, 8, 9, 10])


class SelectionsAndMismatchesTest(tf.test.TestCase):

  def test_script_flags(self):
    root = self.create_tempdir().full_path
    teacher_workdir = self.create_tempdir().full_path
    from sobolev_tf.atari import a2c  # pylint: disable=g-import-not-at-top
    teacher = a2c.A2CLearner(4).net
    teacher.logits_and_value(tf.zeros([1, 84, 84, 4], tf.uint8))
    tf.train.Checkpoint(net=teacher).save(os.path.join(teacher_workdir, "checkpoints", "ckpt"))
    _write(os.path.join(teacher_workdir, "episodes.csv"), "step,split,kl\n2,test,0.5\n")
    blocker = _write(os.path.join(teacher_workdir, "blocker"), "a file")
    pong = os.path.dirname(_write(os.path.join(self.create_tempdir().full_path, "episodes.csv"),
                                  "frames,score,length\n"))
    reg = ("--config=configs/regression.py:quick", "--config.num_steps=2",
           "--config.steps_per_call=1", "--config.hidden_sizes=(4,)")
    cases = [
        (("regression.py", *reg, "--methods="), "--methods is empty: name at least one"),
        (("regression.py", *reg, "--methods=sobolev,sobolev"), "--methods names sobolev twice"),
        (("synthetic_gradients.py", "--config=configs/synthetic_gradients.py:quick", "--methods=",
          f"--workdir={root}/sg"), "--methods is empty"),
        (("demo.py", "--config=configs/demo.py:quick", "--config.hidden_sizes=(0,)", "--output="),
         "config.hidden_sizes must be positive widths, e.g. (256, 256), got (0,)"),
        (("demo.py", "--config=configs/demo.py:quick", "--config.seeds=()", "--output="),
         "config.seeds must be a non-empty list of integers >= 0, got ()"),
        (("evaluate_policy.py", "--game=breakout", f"--workdir={ROOT}/teachers/pong"),
         "teachers/pong/weights/weights holds a teacher of 3 actions (pong), not of breakout (4 "
         "actions): pass --game=pong"),
        (("export_policy.py", "--student", f"--workdir={teacher_workdir}", "--game=breakout",
          f"--saved_model={root}/out"), "holds a teacher, not a distilled student: give a "
         "distillation workdir (scripts/export_policy.py exports a teacher without --student)"),
        (("play_policy.py", f"--saved_model={ROOT}/teachers/pong/saved_model", "--game=breakout"),
         "is a policy of pong (3 actions), not of breakout: pass --game=pong"),
        (("benchmark_peers.py", "--sizes=abc", f"--output={root}/b.md"),
         "--sizes must be training set sizes (integers >= 2), got ['abc']"),
        (("benchmark_peers.py", "--cases=jenn", "--jenn_problems=bogus", f"--output={root}/b.md"),
         "Unknown --jenn_problems ['bogus']"),
        (("synthetic_gradients.py", "--config=configs/synthetic_gradients.py:quick",
          "--methods=noprop,noprop", f"--workdir={root}/sg"), "--methods names noprop twice"),
        (("sg_report.py", f"--workdir={teacher_workdir}", "--config_name=bogus",
          f"--output={root}/r"), "Unknown synthetic-gradient config variant 'bogus'"),
        (("regression.py", *reg, f"--workdir={blocker}"), f"Cannot write the checkpoints to "
         f"{blocker}"),
        (("export_policy.py", f"--workdir={ROOT}/teachers/pong", f"--saved_model={root}/out",
          f"--weights_dir={blocker}"), f"Cannot write the weights to {blocker}"),
        (("teachers_report.py", "--workdirs=", f"--output_dir={root}/out"),
         "--workdirs is empty: give game:workdir pairs"),
        (("teachers_report.py", f"--workdirs=pong:{pong}", f"--output_dir={blocker}"),
         f"Cannot write the report to {blocker}"),
        (("teachers_report.py", f"--workdirs=pong:{teacher_workdir}", f"--output_dir={root}/o"),
         "episodes.csv: expected columns frames,score,length, got step,split,kl"),
    ]
    for (args, words), result in zip(cases, run_scripts(*(args for args, _ in cases))):
      self.assertNotEqual(result.returncode, 0, msg=args)
      self.assertIn(words, result.stderr, msg=args)
    self.assertEqual(os.listdir(root), [])
    self.assertEqual(_read(blocker), "a file")

  def test_checkpoints_and_saved_models_of_another_kind(self):
    from sobolev_tf.atari import a2c  # pylint: disable=g-import-not-at-top
    from sobolev_tf.atari import export  # pylint: disable=g-import-not-at-top
    from sobolev_tf.atari import networks  # pylint: disable=g-import-not-at-top
    import sobolev_tf as st  # pylint: disable=g-import-not-at-top
    root = self.create_tempdir().full_path
    frames = tf.zeros([1, 84, 84, 4], tf.uint8)
    teacher = a2c.A2CLearner(3).net
    teacher.logits_and_value(frames)
    tf.train.Checkpoint(net=teacher).save(os.path.join(root, "teacher", "checkpoints", "ckpt"))
    student = networks.AtariStudent(3)
    student(frames)
    tf.train.Checkpoint(student=student).save(os.path.join(root, "student", "checkpoints", "ckpt"))
    dense = tf.keras.Sequential([tf.keras.Input((2,)), tf.keras.layers.Dense(1)])
    st.export_with_derivatives(dense, os.path.join(root, "served"),
                               tf.TensorSpec([None, 2], tf.float32))
    cases = [
        (lambda: distill.load_student(os.path.join(root, "teacher"), 3),
         r"holds a teacher, not a distilled student: give a distillation workdir"),
        (lambda: train_teacher.load_teacher(os.path.join(root, "student"), "pong"),
         r"holds a distilled student, not a teacher: give a teacher's workdir"),
        (lambda: distill.load_student(os.path.join(root, "student"), 6),
         r"holds a distilled student of 3 actions \(pong\), not of space_invaders \(6 actions\)"),
        (lambda: export.load_policy(os.path.join(root, "served")),
         r"served is a SavedModel but not a policy \(it has no action_probabilities, num_actions, "
         r"game\)"),
        (lambda: export.load_policy(root), r"No SavedModel directory at"),
    ]
    for load, words in cases:
      with self.subTest(words=words):
        with self.assertRaisesRegex(ValueError, words):
          load()

  def test_keras_files_and_students(self):
    import keras  # pylint: disable=g-import-not-at-top
    import sobolev_tf as st  # pylint: disable=g-import-not-at-top
    root = self.create_tempdir().full_path
    rng = np.random.default_rng(0)
    x, y, dy = rng.uniform(size=(32, 2)), rng.uniform(size=32), rng.uniform(size=(32, 2))
    saved = st.SobolevRegressor(hidden_layers=(4,), epochs=1, verbose=False).fit(x, y, dy).save(
        os.path.join(root, "regressor"))
    network = os.path.join(saved, "network.keras")
    with open(network, "r+b") as f:
      f.truncate(os.path.getsize(network) // 2)
    for load in (lambda: st.SobolevRegressor.load(saved), lambda: st.load_model(network)):
      with self.assertRaisesRegex(ValueError, f"{network} is truncated or corrupt"):
        load()
    with self.assertRaisesRegex(ValueError, r"hidden_sizes must be positive widths, e.g. "
                                r"\(256, 256\), got \(0,\)"):
      regression_networks.regression_mlp((0,))

    def student(layer):
      inputs = keras.Input((2,))
      return keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Lambda(layer)(inputs)))

    def fit(net):
      model = st.SobolevModel(net)
      model.compile(optimizer="sgd")
      model.fit(x.astype("float32"), (y[:, None], dy[:, None]), epochs=1, verbose=0)

    with self.assertWarnsRegex(UserWarning, "SobolevModel's model ignores its input: its input "
                               "derivatives are 0 .* no weight can change them"):
      fit(student(lambda z: 0.0 * z))
    with self.assertRaisesRegex(ValueError, "SobolevModel's model does not depend on its input"):
      fit(student(tf.stop_gradient))
    flat = keras.Sequential([keras.Input((2,)), keras.layers.Dense(4, "softplus"),
                             keras.layers.Dense(1, kernel_initializer="zeros")])
    with warnings.catch_warnings(record=True) as caught:
      warnings.simplefilter("always")
      fit(flat)  # Flat at first, but training moves its derivatives: no warning.
    self.assertFalse([w for w in caught if "ignores its input" in str(w.message)])

class LibraryMessagesTest(tf.test.TestCase):
  """Library functions name the argument and the fix, not a TensorFlow op or a bare error."""

  def test_named_arguments_and_files(self):
    import sobolev_tf as st  # pylint: disable=g-import-not-at-top
    root = self.create_tempdir().full_path
    for n in (20, 100):
      for method in ("regular", "sobolev"):
        np.savez(os.path.join(root, f"booth_{n}_{method}.npz"), gx=np.zeros((3, 3)),
                 gy=np.zeros((3, 3)), pred=np.zeros((3, 3)), grad=np.zeros((3, 3, 2)))
    grid = os.path.join(root, "booth_20_sobolev.npz")
    with open(grid, "r+b") as f:
      f.truncate(100)

    def malformed_tf_config():
      with mock.patch.dict(os.environ, {"TF_CONFIG": "{not json"}):
        distribute.make_strategy("multi_worker")

    cases = [
        (lambda: st.categorical_kl_from_log_probs(tf.zeros([2, 3]), tf.zeros([2, 4])),
         r"target_log_probs has shape \(2, 3\) but predicted_log_probs has \(2, 4\)"),
        (lambda: st.fit_full_batch(lambda z: z, tf.ones([4, 2]), tf.ones([3]), tf.ones([4, 2]),
                                   sobolev=True, learning_rate=0.1, num_steps=1),
         r"y has shape \(3,\); for x of shape \(4, 2\) it must be \(4,\)"),
        (lambda: st.random_unit_vectors([4, 2], None), r"seed is None: random_unit_vectors is "
         "stateless"),
        (lambda: st.multi_step(lambda step: {}, True),
         r"steps_per_call must be a positive integer, got True"),
        (lambda: training.restore_checkpoint(tf.train.Checkpoint(), os.path.join(root, "none")),
         r"No checkpoint at .*none \(no none.index\)"),
        (lambda: regression_report.plot_function("booth", root, os.path.join(root, "b.png")),
         f"{grid} is truncated or corrupt"),
        (malformed_tf_config, r"TF_CONFIG is not valid JSON"),
    ]
    for call, words in cases:
      with self.subTest(words=words):
        with self.assertRaisesRegex(ValueError, words):
          call()

if __name__ == "__main__":
  tf.test.main()

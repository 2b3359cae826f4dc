"""Bad input is refused up front, with an error naming it, and nothing already written is lost."""

import json
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
from sobolev_tf import checks
from sobolev_tf import training
from sobolev_tf.atari import dataset
from sobolev_tf.atari import distill
from sobolev_tf.atari import train_teacher
from sobolev_tf.regression import experiment
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
    (regression, dict(seeds=()), r"config.seeds must be a non-empty list"),
    (regression, dict(seeds=(-1,)), r"config.seeds must be a non-empty list of integers >= 0"),
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
                "regression.py": ("full", "paper", "quick"),
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

  def test_synthetic_gradients_finished_run_of_another_config(self):
    workdir = self.create_tempdir().full_path
    config = sg_configs.get_config("quick")
    config.method = "noprop"
    os.makedirs(os.path.join(workdir, "noprop"))
    with open(os.path.join(workdir, "noprop", "result.json"), "w") as f:
      f.write(json.dumps({"finished": True, "steps": config.num_steps,
                          "config": config.to_dict()}, default=str))
    same = run_script("synthetic_gradients.py", "--config=configs/synthetic_gradients.py:quick",
                      "--methods=noprop", f"--workdir={workdir}")
    self.assertEqual(same.returncode, 0, msg=same.stderr[-2000:])
    self.assertIn("finished earlier", same.stdout)
    other = run_script("synthetic_gradients.py", "--config=configs/synthetic_gradients.py:quick",
                       "--methods=noprop", "--config.learning_rate=0.5", f"--workdir={workdir}")
    self.assertNotEqual(other.returncode, 0)
    self.assertIn("is a run of another configuration (learning_rate: 0.1 there, 0.5 now)",
                  other.stderr)


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
    result = run_script("collect_atari.py", "--game=pong", f"--data_dir={data_dir}",
                        "--num_states=20")
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
      result = run_script(script, *args, f"{flag}={blocker}/out.gif")
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
    ]
    for args, words in cases:
      result = run_script(*args)
      self.assertNotEqual(result.returncode, 0, msg=args)
      self.assertIn(words, result.stderr, msg=args)
      self.assertNotIn("s/step", result.stdout + result.stderr, msg=args)  # Nothing timed.
    self.assertFalse(os.path.exists(os.path.join(root, "grid", "pong")))
    self.assertFalse(os.path.exists(os.path.join(root, "report.md")))

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
    for args, words in (((f"--workdirs={workdir}",), "is not game:workdir"),
                        ((f"--workdirs=breakout:{workdir}",), "evaluates pong, not breakout"),
                        ((f"--workdirs=pong:{workdir},pong:{workdir}",), "pong is given twice")):
      result = run_script("teachers_report.py", *args, f"--output_dir={root}/other")
      self.assertNotEqual(result.returncode, 0, msg=args)
      self.assertIn(words, result.stderr, msg=args)
    self.assertFalse(os.path.exists(os.path.join(root, "other", "teachers.md")))

  def test_weights_written_beside_an_unrelated_tmp_directory(self):
    root = self.create_tempdir().full_path
    unrelated = os.path.join(root, "pong.tmp")
    os.makedirs(unrelated)
    with open(os.path.join(unrelated, "important.txt"), "w") as f:
      f.write("keep")
    net = kill.fixed_teacher(3, seed=0)
    train_teacher.save_teacher_weights(net, os.path.join(root, "pong"))
    with open(os.path.join(unrelated, "important.txt")) as f:
      self.assertEqual(f.read(), "keep")
    self.assertEqual(sorted(os.listdir(root)), ["pong", "pong.tmp"])

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


if __name__ == "__main__":
  tf.test.main()

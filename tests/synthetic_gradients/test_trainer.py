"""The synthetic-gradient trainer: every method end to end, resume, errors, ImageNet path,
and two MultiWorkerMirroredStrategy workers on localhost, or MirroredStrategy on two
logical CPUs, agreeing with one device.

Data are tiny random TFDS datasets on disk (``tests.fake_tfds``), so the tests need
neither the real CIFAR-10 nor ImageNet.
"""

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

from absl.testing import parameterized
import numpy as np
import sonnet as snt
import tensorflow as tf

from configs import synthetic_gradients as sg_configs
from sobolev_tf.synthetic_gradients import imagenet
from sobolev_tf.synthetic_gradients import trainer as sg_trainer
from sobolev_tf.synthetic_gradients import methods as sg
from tests import fake_tfds
from tests import multiprocess

REPO = os.path.join(os.path.dirname(__file__), "..", "..")


def quick_config(method: str, variant: str = "quick", **overrides):
  config = sg_configs.get_config(variant)
  config.method = method
  config.update(overrides)
  return config


def setUpModule():
  global DATA_DIR
  DATA_DIR = tempfile.mkdtemp()
  for name in fake_tfds.SPLITS:
    fake_tfds.write(DATA_DIR, name)


def tearDownModule():
  shutil.rmtree(DATA_DIR, ignore_errors=True)


def train(config, workdir, **kwargs):
  """The result, and the messages and progress lines (one list)."""
  logs = []
  progress = io.StringIO()
  with contextlib.redirect_stderr(progress):
    result = sg_trainer.train_and_evaluate(config, workdir, DATA_DIR, log=logs.append, **kwargs)
  return result, logs + progress.getvalue().splitlines()


class TrainerTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(*sg.METHODS)
  def test_each_method_runs_and_writes_results(self, method):
    workdir = self.create_tempdir().full_path
    result, logs = train(quick_config(method), workdir)
    self.assertTrue(result["finished"])
    self.assertEqual(result["steps"], 6)
    self.assertBetween(result["test_top1"], 0.0, 1.0)
    self.assertGreaterEqual(result["test_top5"], result["test_top1"])
    with open(os.path.join(workdir, "result.json")) as f:
      self.assertEqual(json.load(f)["method"], method)
    with open(os.path.join(workdir, "curve.csv")) as f:
      rows = f.read().splitlines()
    self.assertEqual(rows[0], ",".join(sg_trainer.CURVE_COLUMNS))
    self.assertEqual([r.split(",")[0] for r in rows[1:]], ["4", "6"])
    self.assertTrue(any("images/s" in line for line in logs))
    has_cosines = any("cosines" in line for line in logs)
    self.assertEqual(has_cosines, method not in ("backprop", "noprop"))

  def test_bootstrap_and_label_gradient_options(self):
    workdir = self.create_tempdir().full_path
    config = quick_config("sobolev", bootstrap=True, label_gradient_weight=1.0, num_steps=2,
                          eval_every=2)
    result, _ = train(config, workdir)
    self.assertTrue(result["finished"])
    with open(os.path.join(workdir, "result.json")) as f:
      saved = json.load(f)["config"]
    self.assertTrue(saved["bootstrap"])
    self.assertEqual(saved["label_gradient_weight"], 1.0)

  def test_resume_continues_the_same_run(self):
    workdir = self.create_tempdir().full_path
    config = quick_config("sobolev", num_steps=4)
    train(config, workdir)
    saved = tf.train.load_checkpoint(tf.train.latest_checkpoint(
        os.path.join(workdir, "checkpoints")))
    config.num_steps = 6
    result, logs = train(config, workdir)
    self.assertTrue(any("resumed from" in line for line in logs))
    self.assertEqual(result["steps"], 6)
    # The resumed run starts from the saved weights: steps 5-6 only.
    self.assertEqual(saved.get_tensor("main_optimizer/step/.ATTRIBUTES/VARIABLE_VALUE"), 4)
    final = tf.train.load_checkpoint(tf.train.latest_checkpoint(
        os.path.join(workdir, "checkpoints")))
    self.assertEqual(final.get_tensor("main_optimizer/step/.ATTRIBUTES/VARIABLE_VALUE"), 6)
    # Extending a finished run ends where a run of the longer budget ends.
    straight = self.create_tempdir().full_path
    train(quick_config("sobolev", num_steps=6), straight)
    uninterrupted = tf.train.load_checkpoint(tf.train.latest_checkpoint(
        os.path.join(straight, "checkpoints")))
    names = [n for n in final.get_variable_to_shape_map()
             if n.startswith(("parts/", "modules/", "main_optimizer/", "module_optimizer/"))]
    self.assertGreater(len(names), 20)
    for n in names:
      np.testing.assert_array_equal(final.get_tensor(n), uninterrupted.get_tensor(n), err_msg=n)
    config.num_steps = 4
    with self.assertRaisesRegex(ValueError, "ckpt-6 is at step 6, beyond num_steps \\(4\\)"):
      train(config, workdir)
    config.update(num_steps=8, learning_rate=0.5)
    with self.assertRaisesRegex(ValueError, "holds a run of another configuration "
                                r"\(learning_rate: 0.1 there, 0.5 now\)"):
      train(config, workdir)

  def test_resumes_under_other_evaluation_settings(self):
    workdir = self.create_tempdir().full_path
    for num_steps, eval_every, steps_per_call in ((4, 2, 2), (10, 5, 1), (12, 2, 2)):
      result, _ = train(quick_config("backprop", num_steps=num_steps, eval_every=eval_every,
                                     steps_per_call=steps_per_call), workdir)
      self.assertEqual(result["steps"], num_steps)
    with open(os.path.join(workdir, "curve.csv")) as f:
      steps = [line.split(",")[0] for line in f.read().splitlines()[1:]]
    self.assertEqual(steps, ["2", "4", "5", "10", "12"])

  def test_killed_after_the_last_checkpoint_writes_each_step_once(self):
    workdir = self.create_tempdir().full_path
    config = quick_config("noprop", num_steps=4, eval_every=2)
    first, _ = train(config, workdir)
    with open(os.path.join(workdir, "curve.csv")) as f:
      curve = f.read()
    # Killed after its final checkpoint but before result.json; and with a row
    # logged after that checkpoint, which the rerun must drop.
    os.remove(os.path.join(workdir, "result.json"))
    with open(os.path.join(workdir, "curve.csv"), "a") as f:
      f.write("5,40,1.0,2.0,0.5,0.9\n")
    second, _ = train(config, workdir)
    with open(os.path.join(workdir, "curve.csv")) as f:
      self.assertEqual(f.read(), curve)
    self.assertEqual(second["test_top1"], first["test_top1"])
    self.assertEqual(second["wall_seconds"], first["wall_seconds"])
    self.assertTrue(os.path.exists(os.path.join(workdir, "result.json")))

  def test_corrupt_checkpoint_is_named(self):
    workdir = self.create_tempdir().full_path
    train(quick_config("noprop", num_steps=2), workdir)
    latest = tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints"))
    with open(latest + ".index", "wb") as f:
      f.write(b"garbage")
    with self.assertRaisesRegex(ValueError, "Corrupt or incompatible checkpoint .*ckpt-2"):
      train(quick_config("noprop", num_steps=4), workdir)

  def test_max_seconds_stops_after_a_checkpoint(self):
    workdir = self.create_tempdir().full_path
    result, _ = train(quick_config("critic", steps_per_call=1), workdir, max_seconds=0.0)
    self.assertFalse(result["finished"])
    self.assertFalse(os.path.exists(os.path.join(workdir, "result.json")))
    self.assertIsNotNone(tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints")))

  def test_errors(self):
    workdir = self.create_tempdir().full_path
    with self.assertRaisesRegex(ValueError, "Unknown method 'dni'"):
      train(quick_config("dni"), workdir)
    with self.assertRaisesRegex(ValueError, "Unknown dataset 'mnist'"):
      train(quick_config("sobolev", dataset="mnist"), workdir)
    with self.assertRaisesRegex(ValueError, "Unknown strategy 'tpu'"):
      train(quick_config("sobolev", strategy="tpu"), workdir)
    with self.assertRaisesRegex(ValueError, "TF_CONFIG"):
      train(quick_config("sobolev", strategy="multi_worker"), workdir)
    with self.assertRaisesRegex(ValueError, "Unknown synthetic-gradient config variant"):
      sg_configs.get_config("cifar100")

  def test_paper_configs(self):
    cifar = sg_configs.get_config("cifar10")
    self.assertEqual(cifar.widths, (64, 64, 128, 128, 128, 256, 256, 256, 512, 512, 512))
    self.assertEqual((cifar.learning_rate, cifar.lr_boundaries, cifar.momentum,
                      cifar.weight_decay, cifar.batch_size, len(cifar.splits)),
                     (0.1, (40_000, 60_000, 80_000), 0.9, 1e-4, 32, 3))
    self.assertEqual(sg_configs.get_config("imagenet").splits, (2,))
    self.assertEqual(sg_configs.get_config("imagenet3").lr_boundaries,
                     (100_000, 150_000, 175_000))


class ChiefTest(tf.test.TestCase):

  def test_is_chief(self):
    from sobolev_tf.synthetic_gradients import distribute  # pylint: disable=g-import-not-at-top
    cases = [(None, True),
             ({"cluster": {"worker": ["a", "b"]}, "task": {"type": "worker", "index": 0}}, True),
             ({"cluster": {"worker": ["a", "b"]}, "task": {"type": "worker", "index": 1}}, False),
             ({"cluster": {"chief": ["c"], "worker": ["a"]},
               "task": {"type": "worker", "index": 0}}, False),
             ({"cluster": {"chief": ["c"], "worker": ["a"]},
               "task": {"type": "chief", "index": 0}}, True)]
    old = os.environ.pop("TF_CONFIG", None)
    try:
      for tf_config, expected in cases:
        if tf_config is None:
          os.environ.pop("TF_CONFIG", None)
        else:
          os.environ["TF_CONFIG"] = json.dumps(tf_config)
        self.assertEqual(distribute.is_chief(), expected, msg=tf_config)
    finally:
      os.environ.pop("TF_CONFIG", None)
      if old is not None:
        os.environ["TF_CONFIG"] = old


class ImageNetTest(tf.test.TestCase, parameterized.TestCase):

  def test_resnet50_three_modules_on_tiny_data(self):
    workdir = self.create_tempdir().full_path
    config = quick_config("sobolev", "imagenet_mock", splits=(1, 2, 3))
    result, logs = train(config, workdir)
    self.assertTrue(result["finished"])
    self.assertEqual(result["dataset"], "imagenet2012")
    self.assertBetween(result["test_top5"], 0.0, 1.0)
    self.assertTrue(any(line.count("cosines") and len(line.split("cosines")[1].split()) == 3
                        for line in logs))

  def test_resnet50_split_and_sm43_module_shapes(self):
    parts = imagenet.split_resnet50(imagenet.ONE_MODULE_SPLITS, num_classes=7)
    x = tf.zeros([2, 64, 64, 3])
    h = parts[0](x, is_training=False)
    self.assertEqual(h.shape, [2, 8, 8, 512])  # After the second block group.
    self.assertEqual(parts[1](h, is_training=False).shape, [2, 7])
    total = sum(v.shape.num_elements() for p in parts for v in p.trainable_variables)
    reference = snt.nets.ResNet50(7)
    reference(x, is_training=False)
    self.assertEqual(total, sum(v.shape.num_elements() for v in reference.trainable_variables))
    module = sg.LossPredictor(7, channels=(64, 64), strides=(1, 2), global_pool=True)
    self.assertEqual(module.logits(h).shape, [2, 7])
    self.assertEqual(module(h, tf.constant([0, 6])).shape, [2])
    with self.assertRaisesRegex(ValueError, "splits"):
      imagenet.split_resnet50((3, 1))
    with self.assertRaisesRegex(ValueError, "No imagenet2012 in data_dir='/nonexistent'"):
      imagenet.load_imagenet("train", 4, "/nonexistent")


_WORKER_SCRIPT = r"""
import json, os, sys
import numpy as np, tensorflow as tf
if int(sys.argv[3]) > 1:  # Logical CPU devices for a one-machine MirroredStrategy.
  cpu = tf.config.list_physical_devices("CPU")[0]
  tf.config.set_logical_device_configuration(
      cpu, [tf.config.LogicalDeviceConfiguration()] * int(sys.argv[3]))
sys.path.insert(0, os.getcwd())
from configs import synthetic_gradients as sg_configs
from sobolev_tf.synthetic_gradients import trainer as sg_trainer
config = sg_configs.get_config("quick")
config.update(method="sobolev", batch_norm=False, strategy=sys.argv[2], num_steps=3,
              steps_per_call=1, eval_every=3)
result = sg_trainer.train_and_evaluate(config, sys.argv[1], sys.argv[4], log=lambda s: None)
if "TF_CONFIG" in os.environ and json.loads(os.environ["TF_CONFIG"])["task"]["index"]:
  sys.exit(0)  # Only the chief writes checkpoints to the workdir.
ckpt = tf.train.load_checkpoint(tf.train.latest_checkpoint(os.path.join(sys.argv[1], "checkpoints")))
np.savez(os.path.join(sys.argv[1], "weights.npz"),
         **{k.replace("/", "_"): ckpt.get_tensor(k) for k in ckpt.get_variable_to_shape_map()
            if "parts" in k or "modules" in k})
print("DONE", result["replicas"])
"""


_MISMATCHED_WORKER = r"""
import os, sys
sys.path.insert(0, os.getcwd())
from configs import synthetic_gradients as sg_configs
from sobolev_tf.synthetic_gradients import trainer as sg_trainer
config = sg_configs.get_config("quick")
config.update(method="noprop", strategy="multi_worker", num_steps=2, steps_per_call=1,
              eval_every=2)
key, value = sys.argv[3].split("=")
config[key] = type(config[key])(eval(value))  # pylint: disable=eval-used
try:
  sg_trainer.train_and_evaluate(config, sys.argv[1], sys.argv[2], log=lambda s: None)
except ValueError as e:
  print("REFUSED", e)
except Exception as e:  # pylint: disable=broad-except
  print("FAILED", type(e).__name__, e)
"""


def _run_workers(test, workdir, per_worker_args, timeout=300, check=True):
  """Two workers on localhost, each ``python -c _MISMATCHED_WORKER workdir *args``: stdouts.

  ``check``: both must exit 0.
  """
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
  cluster = {"worker": [f"localhost:{p}" for p in multiprocess.free_ports(2)]}
  procs = [subprocess.Popen(
      [sys.executable, "-c", _MISMATCHED_WORKER, workdir, *args], cwd=REPO,
      env=dict(env, TF_CONFIG=json.dumps({"cluster": cluster,
                                          "task": {"type": "worker", "index": index}})),
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
           for index, args in enumerate(per_worker_args)]
  try:
    outputs = [p.communicate(timeout=timeout) for p in procs]
  finally:
    for p in procs:  # No orphans if a worker hangs.
      p.kill()
  for p, (_, stderr) in zip(procs, outputs):
    if check:
      test.assertEqual(p.returncode, 0, msg=stderr[-3000:])
  return [stdout for stdout, _ in outputs]


class MultiWorkerTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(("learning_rate=0.1", "learning_rate=0.2"),
                            ("widths=(4,4,8,8)", "widths=(4,4,8,16)"))
  def test_workers_given_different_configs_refuse_together(self, first, second):
    workdir = self.create_tempdir().full_path
    for stdout in _run_workers(self, workdir, [(DATA_DIR, first), (DATA_DIR, second)]):
      self.assertIn("REFUSED The machines were given different configs", stdout)
    self.assertFalse(os.path.exists(os.path.join(workdir, "curve.csv")))

  def test_a_worker_that_fails_alone_stops_the_others(self):
    # Worker 1 cannot read its data and exits; the chief, waiting in a
    # collective, is told by TensorFlow's coordination service (missed
    # heartbeats) instead of waiting forever.
    workdir = self.create_tempdir().full_path
    missing = os.path.join(self.create_tempdir().full_path, "no_data")
    outputs = _run_workers(self, workdir, [(DATA_DIR, "learning_rate=0.1"),
                                           (missing, "learning_rate=0.1")], check=False)
    self.assertRegex(outputs[1], "(REFUSED|FAILED).*no_data")
    self.assertIn("FAILED UnavailableError", outputs[0])

  def test_two_workers_and_two_devices_agree_with_one_device(self):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CONFIG", None)
    single = self.create_tempdir().full_path
    multi = self.create_tempdir().full_path
    ports = multiprocess.free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    procs = []
    for index in range(2):
      worker_env = dict(env, TF_CONFIG=json.dumps(
          {"cluster": cluster, "task": {"type": "worker", "index": index}}))
      procs.append(subprocess.Popen(
          [sys.executable, "-c", _WORKER_SCRIPT, multi, "multi_worker", "1", DATA_DIR], cwd=REPO,
          env=worker_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
      out = subprocess.run([sys.executable, "-c", _WORKER_SCRIPT, single, "mirrored", "1",
                            DATA_DIR], cwd=REPO, env=env, capture_output=True, text=True,
                           timeout=600)
      self.assertEqual(out.returncode, 0, msg=out.stderr[-3000:])
      two_devices = self.create_tempdir().full_path
      out2 = subprocess.run([sys.executable, "-c", _WORKER_SCRIPT, two_devices, "mirrored", "2",
                             DATA_DIR], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=600)
      self.assertEqual(out2.returncode, 0, msg=out2.stderr[-3000:])
      self.assertIn("DONE 2", out2.stdout)  # Two replicas on one machine.
      outputs = []
      for p in procs:
        stdout, stderr = p.communicate(timeout=600)
        self.assertEqual(p.returncode, 0, msg=stderr[-3000:])
        outputs.append(stdout)
    finally:
      for p in procs:  # No orphans holding the ports if anything above fails.
        p.kill()
    self.assertIn("DONE 1", out.stdout)
    self.assertIn("DONE 2", outputs[0])  # The chief saw 2 replicas in sync.
    a = np.load(os.path.join(single, "weights.npz"))
    self.assertNotEmpty(a.files)
    for other in (multi, two_devices):
      b = np.load(os.path.join(other, "weights.npz"))
      self.assertEqual(sorted(a.files), sorted(b.files))
      for k in a.files:
        self.assertAllClose(a[k], b[k], rtol=1e-4, atol=1e-5, msg=f"{other}: {k}")
    self.assertFalse(any(d.startswith("worker_scratch") for d in os.listdir(multi)))


_KILLABLE_RUN = r"""
import os, sys
sys.path.insert(0, os.getcwd())
from configs import synthetic_gradients as sg_configs
from sobolev_tf.synthetic_gradients import trainer as sg_trainer
from tests import kill
workdir, kill_at, data_dir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
config = sg_configs.get_config("quick")
config.update(method="sobolev", num_steps=6, steps_per_call=2, eval_every=2,
              checkpoint_minutes=0.0)
if kill_at:  # After this step's evaluation was logged, before its checkpoint.
  kill.sigkill_at_checkpoint(lambda step, calls: step == kill_at)
sg_trainer.train_and_evaluate(config, workdir, data_dir, log=lambda s: None)
"""


class KillAndResumeTest(tf.test.TestCase):

  def test_sigkill_then_the_same_command_equals_an_uninterrupted_run(self):
    root = self.create_tempdir().full_path
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CONFIG", None)

    def run(workdir, kill_at):
      return subprocess.run([sys.executable, "-c", _KILLABLE_RUN, workdir, str(kill_at), DATA_DIR],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=600)

    def curve(workdir):  # Without the wall time, which differs between any two runs.
      with open(os.path.join(workdir, "curve.csv")) as f:
        rows = [line.split(",") for line in f.read().splitlines()]
      column = rows[0].index("wall_seconds")
      return [r[:column] + r[column + 1:] for r in rows]

    straight, killed = os.path.join(root, "straight"), os.path.join(root, "killed")
    out = run(straight, 0)
    self.assertEqual(out.returncode, 0, msg=out.stderr[-2000:])
    first = run(killed, 4)
    self.assertEqual(first.returncode, -signal.SIGKILL, msg=first.stderr[-2000:])
    self.assertEqual([r[0] for r in curve(killed)], ["step", "2", "4"])  # 4: after the last save.
    second = run(killed, 0)
    self.assertEqual(second.returncode, 0, msg=second.stderr[-2000:])
    self.assertEqual(curve(straight), curve(killed))  # Same values, every step once.
    self.assertLen(curve(straight), 4)
    weights = [tf.train.load_checkpoint(tf.train.latest_checkpoint(os.path.join(d, "checkpoints")))
               for d in (straight, killed)]
    names = [n for n in weights[0].get_variable_to_shape_map()
             if n.startswith(("parts/", "modules/", "main_optimizer/", "module_optimizer/"))]
    self.assertGreater(len(names), 20)
    for n in names:
      np.testing.assert_array_equal(weights[0].get_tensor(n), weights[1].get_tensor(n), err_msg=n)


if __name__ == "__main__":
  tf.test.main()

"""SobolevModel under tf.distribute: the same weights as one device on the same global batch.

MirroredStrategy on two logical CPUs and MultiWorkerMirroredStrategy with two
worker processes on localhost, each against one device. SGD, not Adam: Adam is
nearly invariant to a constant scale of the loss, which is what a wrong
per-replica scaling changes.
"""

import json
import os
import subprocess
import sys

import numpy as np
import tensorflow as tf

from tests import multiprocess

REPO = os.path.join(os.path.dirname(__file__), "..")

_SCRIPT = r"""
import json, os, sys
import numpy as np, tensorflow as tf
mode, out = sys.argv[1], sys.argv[2]
if mode == "mirrored":
  cpu = tf.config.list_physical_devices("CPU")[0]
  tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
sys.path.insert(0, os.getcwd())
import sobolev_tf as st
strategy = {"single": tf.distribute.get_strategy,
            "mirrored": lambda: tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]),
            "multi_worker": tf.distribute.MultiWorkerMirroredStrategy}[mode]()
rng = np.random.default_rng(0)
x = rng.uniform(-2, 2, (64, 2)).astype(np.float32)
y = (np.sin(x[:, 0]) * x[:, 1])[:, None].astype(np.float32)
dy = np.stack([np.cos(x[:, 0]) * x[:, 1], np.sin(x[:, 0])], 1)[:, None, :].astype(np.float32)
w = rng.uniform(0, 2, 64).astype(np.float32)
ds = tf.data.Dataset.from_tensor_slices((x, (y, dy), w)).batch(16)
options = tf.data.Options()
options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
ds = ds.with_options(options)
with strategy.scope():
  keras.utils.set_random_seed(0)
  net = keras.Sequential([keras.Input((2,)),
                          keras.layers.Dense(16, "tanh", kernel_regularizer=keras.regularizers.L2(0.01)),
                          keras.layers.Dense(1)])
  model = st.SobolevModel(net, derivative_weights=(0.5,))
  model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse", metrics=["mae"])
history = model.fit(ds, epochs=2, verbose=0)
np.savez(out, *[np.asarray(v) for v in net.get_weights()],
         loss=np.asarray(history.history["loss"]), mae=np.asarray(history.history["mae"]))
print("REPLICAS", strategy.num_replicas_in_sync)
"""


def _run(args, env, **kwargs):
  return subprocess.Popen([sys.executable, "-c", _SCRIPT] + args, cwd=REPO, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


class KerasDistributeTest(tf.test.TestCase):

  def test_two_replicas_and_two_workers_equal_one_device(self):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CONFIG", None)
    tmp = self.create_tempdir().full_path
    paths = {m: os.path.join(tmp, f"{m}.npz") for m in ("single", "mirrored", "worker0", "worker1")}
    cluster = {"worker": [f"localhost:{p}" for p in multiprocess.free_ports(2)]}
    procs = {m: _run([m, paths[m]], env) for m in ("single", "mirrored")}
    for i in range(2):
      worker_env = dict(env, TF_CONFIG=json.dumps(
          {"cluster": cluster, "task": {"type": "worker", "index": i}}))
      procs[f"worker{i}"] = _run(["multi_worker", paths[f"worker{i}"]], worker_env)
    replicas = {"single": 1, "mirrored": 2, "worker0": 2, "worker1": 2}
    for name, proc in procs.items():
      stdout, stderr = proc.communicate(timeout=600)
      self.assertEqual(proc.returncode, 0, msg=f"{name}: {stderr[-3000:]}")
      self.assertIn(f"REPLICAS {replicas[name]}", stdout)
    single = np.load(paths["single"])
    for name in ("mirrored", "worker0", "worker1"):
      other = np.load(paths[name])
      for key in single.files:
        self.assertAllClose(single[key], other[key], rtol=1e-5, atol=1e-6, msg=f"{name}: {key}")


if __name__ == "__main__":
  tf.test.main()

"""SobolevRegressor: the objective and loop it runs, scikit-learn's conventions, bad input."""

import json
import os
import subprocess
import sys
from unittest import mock

import keras
import numpy as np
from sklearn import base as sklearn_base
from sklearn import exceptions as sklearn_exceptions
from sklearn import metrics
from sklearn import model_selection
import tensorflow as tf

import sobolev_tf as st
from sobolev_tf import estimator as estimator_lib
from sobolev_tf.estimator import loop
from sobolev_tf.estimator import networks
from sobolev_tf import training

REPO = os.path.join(os.path.dirname(__file__), "..")


def _data(m=96, n=3, seed=0, outputs=None):
  """A smooth function with its gradient: y = sin(x.a) + 0.1 |x|^2."""
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(m, n)) * [1.0, 10.0, 0.1][:n] + [0.0, 5.0, -1.0][:n]
  a = np.array([0.5, 0.03, 2.0])[:n]
  y = np.sin(x @ a) + 0.1 * np.sum(x**2, axis=1)
  dy = np.cos(x @ a)[:, None] * a + 0.2 * x
  if outputs == 2:
    y = np.stack([y, 2 * y], axis=1)
    dy = np.stack([dy, 2 * dy], axis=1)
  return x, y, dy


def _small(**kwargs):
  defaults = dict(hidden_layers=(8, 8), epochs=4, batch_size=32, verbose=False)
  return st.SobolevRegressor(**dict(defaults, **kwargs))


class ObjectiveTest(tf.test.TestCase):

  def test_matches_a_hand_written_sobolev_loss_loop_step_for_step(self):
    x, y, dy = _data()
    model = _small(epochs=3, seed=4).fit(x, y, dy)
    # The same training by hand: scaler, balance, network, permutations, rates, Adam.
    scaler = st.SobolevScaler().fit(x, y[:, None], dy[:, None, :])
    xs, ys, dys = (tf.constant(a, tf.float32) for a in
                   scaler.transform(x, y[:, None], dy[:, None, :]))
    balance = scaler.balance(1.0)
    net = estimator_lib.mlp(3, 1, (8, 8), "softplus", seed=4)
    self.assertAllClose(net.get_weights(), estimator_lib.mlp_weights(3, 1, (8, 8), seed=4))
    opt = keras.optimizers.Adam(epsilon=1e-8)
    rates = training.one_cycle(0.1)(np.arange(3) / 3)
    for epoch in range(3):
      opt.learning_rate = float(rates[epoch])
      perm = tf.random.experimental.stateless_shuffle(tf.range(96, dtype=tf.int64),
                                                      seed=[4, epoch])
      for step in range(3):
        idx = perm[step * 32:(step + 1) * 32]
        with tf.GradientTape() as tape:
          loss, _ = st.sobolev_loss(lambda z: net(z), tf.gather(xs, idx),
                                    (tf.gather(ys, idx), tf.gather(dys, idx)), balance=balance)
        opt.apply_gradients(zip(tape.gradient(loss, net.trainable_variables),
                                net.trainable_variables))
    self.assertLen(model.coefs_, 6)
    for ours, theirs in zip(model.coefs_, net.get_weights()):
      self.assertAllClose(ours, theirs, rtol=1e-4, atol=1e-5)
    self.assertAllClose(model.balance_.partial_weights, balance.partial_weights)
    self.assertAllClose(model.balance_.value_weight, 1 / (1 + 3))  # alpha = 1 / (1 + lam n).

  def test_weights_l2_and_unbalanced_objective(self):
    x, y, dy = _data()
    weights = np.random.default_rng(1).uniform(0, 2, 96)
    model = _small(epochs=1, batch_size=96, shuffle=False, balance=None,
                   derivative_weight=0.3, l2=0.01, learning_rate=0.01,
                   adam=dict(epsilon=1.0)).fit(x, y, dy, sample_weight=weights)
    scaler = st.SobolevScaler().fit(x, y[:, None], dy[:, None, :])
    xs, ys, dys = (tf.constant(a, tf.float32) for a in
                   scaler.transform(x, y[:, None], dy[:, None, :]))
    net = estimator_lib.mlp(3, 1, (8, 8), "softplus", seed=0)
    opt = keras.optimizers.Adam(0.01, epsilon=1.0)  # epsilon 1: the scale of the loss matters.
    with tf.GradientTape() as tape:
      loss, _ = st.sobolev_loss(lambda z: net(z), xs, (ys, dys), derivative_weights=(0.3,),
                                sample_weight=weights)
      loss += 0.01 * tf.add_n([tf.reduce_sum(w**2) for w in net.trainable_variables
                               if w.shape.rank == 2])
    opt.apply_gradients(zip(tape.gradient(loss, net.trainable_variables),
                            net.trainable_variables))
    for ours, theirs in zip(model.coefs_, net.get_weights()):
      self.assertAllClose(ours, theirs, rtol=1e-4, atol=1e-6)

  def test_directional_labels_are_eq2_with_the_given_directions(self):
    x, y, dy = _data()
    v = np.random.default_rng(2).normal(size=x.shape)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    g = np.sum(dy * v, axis=1)  # What one forward-mode AAD sweep per path gives.
    model = _small(epochs=2, batch_size=96, shuffle=False, learning_rate=0.01).fit(
        x, y, g, directions=v)
    # By hand: scaled inputs, directions d / s and labels g / t (the chain rule), one label
    # per example in Huge & Savine's weights (alpha = 1 / (1 + 1)).
    x_scale, y_scale = np.std(x, axis=0), np.std(y)
    xs = tf.constant((x - x.mean(0)) / x_scale, tf.float32)
    ys = tf.constant((y - y.mean()) / y_scale, tf.float32)[:, None]
    gs = tf.constant(g / y_scale, tf.float32)[:, None]
    vs = tf.constant(v / x_scale, tf.float32)
    lam = 1.0 / np.sqrt(np.mean((g / y_scale)**2))
    net = estimator_lib.mlp(3, 1, (8, 8), "softplus", seed=0)
    opt = keras.optimizers.Adam(0.01, epsilon=1e-8)
    for _ in range(2):
      with tf.GradientTape() as tape:
        _, terms = st.sobolev_loss(lambda z: net(z), xs, (ys, [gs[None]]), stochastic=True,
                                   directions=vs[None], projected_targets=True)
        loss = 0.5 * terms["value"] + 0.5 * lam**2 * terms["derivative_1"]
      opt.apply_gradients(zip(tape.gradient(loss, net.trainable_variables),
                              net.trainable_variables))
    for ours, theirs in zip(model.coefs_, net.get_weights()):
      self.assertAllClose(ours, theirs, rtol=1e-4, atol=1e-5)
    # A masked label trains nothing, whatever it holds.
    mask = np.ones(96)
    mask[::4] = 0.0
    labels = g.copy()
    labels[::4] = np.nan
    masked = _small(epochs=2).fit(x, y, labels, directions=v, dydx_weight=mask)
    labels[::4] = 1e6
    same = _small(epochs=2).fit(x, y, labels, directions=v, dydx_weight=mask)
    for u, w in zip(masked.coefs_, same.coefs_):
      self.assertAllClose(u, w, rtol=1e-6, atol=1e-7)
    labels[::4] = 0.0
    self.assertNotAllClose(masked.coefs_[0],
                           _small(epochs=2).fit(x, y, labels, directions=v).coefs_[0])
    with self.assertRaisesRegex(ValueError, r"directions must have shape \[96, 3\]"):
      _small().fit(x, y, g, directions=v[:, :2])
    with self.assertRaisesRegex(ValueError, r"dydx along directions must have shape \[96\]"):
      _small().fit(x, y, dy, directions=v)

  def test_masked_partials_do_not_train_and_may_be_nan(self):
    x, y, dy = _data()
    mask = np.ones_like(dy)
    mask[::3, 1] = 0.0
    labels = dy.copy()
    labels[::3, 1] = np.nan
    masked = _small().fit(x, y, labels, dydx_weight=mask)
    other = dy.copy()
    other[::3, 1] = 1e6
    same = _small().fit(x, y, other, dydx_weight=mask)
    for a, b in zip(masked.coefs_, same.coefs_):
      self.assertAllClose(a, b, rtol=1e-6, atol=1e-7)
    unmasked = _small().fit(x, y, other)
    self.assertNotAllClose(masked.coefs_[0], unmasked.coefs_[0])

  def test_values_only_is_plain_regression(self):
    x, y, _ = _data()
    model = _small(epochs=2, batch_size=96, shuffle=False).fit(x, y)
    self.assertIsNone(model.balance_)
    scaler = st.SobolevScaler().fit(x, y[:, None])
    xs, ys = (tf.constant(a, tf.float32) for a in scaler.transform(x, y[:, None]))
    net = estimator_lib.mlp(3, 1, (8, 8), "softplus", seed=0)
    opt = keras.optimizers.Adam(epsilon=1e-8)
    for epoch in range(2):
      opt.learning_rate = float(training.one_cycle(0.1)(epoch / 2))
      with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(net(xs) - ys))
      opt.apply_gradients(zip(tape.gradient(loss, net.trainable_variables),
                              net.trainable_variables))
    for ours, theirs in zip(model.coefs_, net.get_weights()):
      self.assertAllClose(ours, theirs, rtol=1e-4, atol=1e-5)


class DenseJacobianTest(tf.test.TestCase):
  """The default MLP's explicit back-propagation against autodiff and finite differences."""

  def test_against_nested_tapes_and_finite_differences(self):
    x64 = np.random.default_rng(0).normal(size=(7, 3))
    for activation in ("softplus", "tanh", "sigmoid", "relu", "linear"):
      net = estimator_lib.mlp(3, 1, (6, 5), activation, seed=2)
      twin = networks.dense_value_and_jacobian(net)
      x = tf.constant(x64, tf.float32)
      expected = st.derivative_tensors(net, x, 1)
      unknown_batch = tf.function(twin, input_signature=[tf.TensorSpec([None, 3], tf.float32)])
      for name, fn in (("eager", twin), ("tf.function", unknown_batch),
                       ("jit_compile", tf.function(twin, jit_compile=True))):
        with self.subTest(activation=activation, mode=name):
          values, jacobian = fn(x)
          self.assertAllClose(values, expected[0], rtol=1e-6, atol=1e-7)
          self.assertAllClose(jacobian, expected[1], rtol=1e-5, atol=1e-6)
      # Central differences of the same weights in float64 NumPy.
      act = {"softplus": lambda z: np.logaddexp(0, z), "tanh": np.tanh, "linear": lambda z: z,
             "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
             "relu": lambda z: np.maximum(z, 0)}[activation]
      weights = [w.astype(np.float64) for w in net.get_weights()]

      def net64(z):
        for i in range(0, len(weights), 2):
          z = z @ weights[i] + weights[i + 1]
          z = act(z) if i < len(weights) - 2 else z
        return z[:, 0]

      h = 1e-6
      fd = np.stack([(net64(x64 + h * e) - net64(x64 - h * e)) / (2 * h) for e in np.eye(3)],
                    axis=1)
      _, jacobian = twin(x)
      if activation != "relu":  # ReLU's kinks make differences unreliable at random points.
        self.assertAllClose(jacobian[:, 0], fd, rtol=1e-4, atol=1e-5)
    # Other networks take the general path.
    self.assertIsNone(networks.dense_value_and_jacobian(estimator_lib.mlp(3, 2, (4,))))
    self.assertIsNone(networks.dense_value_and_jacobian(
        estimator_lib.mlp(3, 1, (4,), activation="gelu")))


class PredictionTest(tf.test.TestCase):

  def test_original_units_against_finite_differences(self):
    x, y, dy = _data(m=256)
    # Unbalanced: Huge & Savine's weights would put 1/4 of the loss on the third partial,
    # which is small here (its input's scale is 1/100 of the second's) and slow to fit.
    model = _small(epochs=60, balance=None).fit(x, y, dy)
    values, derivatives = model.predict_with_derivatives(x[:20])
    self.assertEqual(values.shape, (20,))
    self.assertEqual(derivatives.shape, (20, 3))
    self.assertAllClose(values, model.predict(x[:20]))
    self.assertAllClose(derivatives, model.predict_derivatives(x[:20]))
    # Central differences of predict in the data's units (float32 network: h ~ 1e-2 scale).
    scale = np.std(x, axis=0)
    for j in range(3):
      h = 1e-2 * scale[j]
      step = np.zeros(3)
      step[j] = h
      fd = (model.predict(x[:20] + step) - model.predict(x[:20] - step)) / (2 * h)
      self.assertAllClose(derivatives[:, j], fd, rtol=2e-2, atol=2e-3 * np.abs(fd).max())
    # The fit is good where it trained, so the scaler's inverse is right too.
    self.assertGreater(model.score(x, y), 0.9)

  def test_several_outputs(self):
    x, y, dy = _data(outputs=2)
    model = _small().fit(x, y, dy)
    values, derivatives = model.predict_with_derivatives(x[:5])
    self.assertEqual(values.shape, (5, 2))
    self.assertEqual(derivatives.shape, (5, 2, 3))
    self.assertEqual(model.balance_.partial_weights.shape, (2, 3))

  def test_save_load_and_export_without_the_package(self):
    x, y, dy = _data()
    model = _small(learning_rate=training.CosineDecay(0.01)).fit(x, y, dy)
    directory = self.create_tempdir().full_path
    saved = os.path.join(directory, "model")
    model.save(saved)
    loaded = st.SobolevRegressor.load(saved)
    self.assertAllClose(loaded.predict_with_derivatives(x), model.predict_with_derivatives(x))
    self.assertEqual(loaded.get_params()["learning_rate"], training.CosineDecay(0.01))
    self.assertEqual(loaded.history_, model.history_)
    exported = model.export(os.path.join(directory, "served"))
    np.save(os.path.join(directory, "x.npy"), x[:7].astype(np.float32))
    script = (
        "import json, sys, numpy as np, tensorflow as tf\n"
        f"m = tf.saved_model.load({exported!r})\n"
        f"out = m.signatures['serving_default'](x=tf.constant(np.load({directory!r} + '/x.npy')))\n"
        "assert 'sobolev_tf' not in sys.modules\n"
        "print(json.dumps({k: v.numpy().tolist() for k, v in out.items()}))\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            cwd=directory, env=dict(os.environ, PYTHONPATH=""), check=True)
    served = json.loads(result.stdout.strip().splitlines()[-1])
    values, derivatives = model.predict_with_derivatives(x[:7])
    self.assertAllClose(served["value"], values, rtol=1e-5, atol=1e-6)
    self.assertAllClose(served["derivative"], derivatives, rtol=1e-5, atol=1e-6)


class TrainingTest(tf.test.TestCase):

  def test_early_stopping_keeps_the_best_weights(self):
    x, y, dy = _data(m=200)
    model = _small(epochs=60, early_stopping=3, learning_rate=0.05).fit(
        x, y, dy, validation_split=0.25)
    losses = model.history_["val_loss"]
    self.assertLess(model.n_epochs_, 60)
    self.assertEqual(len(losses), model.n_epochs_)
    self.assertEqual(model.best_epoch_, int(np.argmin(losses)) + 1)
    self.assertEqual(model.n_epochs_, model.best_epoch_ + 3)
    # The kept weights are the best epoch's: a run of that many epochs (constant rate,
    # the same permutations) ends with them.
    best = _small(epochs=model.best_epoch_, learning_rate=0.05).fit(x, y, dy,
                                                                    validation_split=0.25)
    for u, v in zip(model.coefs_, best.coefs_):
      self.assertAllClose(u, v, rtol=1e-6, atol=1e-7)
    with self.assertRaisesRegex(ValueError, "early_stopping watches a validation loss"):
      _small(early_stopping=2).fit(x, y, dy)

  def test_a_dead_network_is_named(self):
    x, y, dy = _data()
    # A rate far too high drives every unit into saturation: a constant output.
    with self.assertWarnsRegex(UserWarning, "output is constant over the training inputs"):
      _small(epochs=30, learning_rate=10.0, activation="relu").fit(x, y, dy)

  def test_validation_data_is_recorded(self):
    x, y, dy = _data(m=128)
    model = _small().fit(x[:96], y[:96], dy[:96], validation_data=(x[96:], y[96:], dy[96:]))
    self.assertLen(model.history_["val_loss"], 4)
    values_only = _small().fit(x[:96], y[:96], dy[:96], validation_data=(x[96:], y[96:]))
    self.assertLen(values_only.history_["val_loss"], 4)

  def test_deterministic_and_chunking_does_not_matter(self):
    x, y, dy = _data()
    a = _small(epochs=6).fit(x, y, dy)
    b = _small(epochs=6).fit(x, y, dy)
    for u, v in zip(a.coefs_, b.coefs_):
      self.assertAllEqual(u, v)
    self.assertNotAllClose(a.coefs_[0], _small(epochs=6, seed=1).fit(x, y, dy).coefs_[0])
    # One epoch per compiled call instead of several: the same weights.
    with mock.patch.object(loop, "max_epochs_per_call", lambda m: 1):
      one_by_one = _small(epochs=6).fit(x, y, dy)
    self.assertEqual(one_by_one.n_epochs_, 6)
    for u, v in zip(a.coefs_, one_by_one.coefs_):
      self.assertAllEqual(u, v)

  def test_divergence_and_never_improving_validation_are_named(self):
    x, y, dy = _data()
    with self.assertWarnsRegex(UserWarning, "Training diverged: the loss or the fitted network"):
      _small(epochs=3, learning_rate=1e30).fit(x, y, dy)
    # A validation loss that never improves (here infinite) keeps the last weights, said so;
    # the weights of an earlier fit of the same architecture never leak into this one.
    _small(epochs=4, seed=7, learning_rate=0.01).fit(x, y, dy)
    with self.assertWarnsRegex(UserWarning, "validation loss never improved"):
      stopped = _small(epochs=20, early_stopping=3, learning_rate=0.01).fit(
          x, y, dy, validation_data=(x[:10], np.full(10, 1e30)))
    self.assertIsNone(stopped.best_epoch_)
    last = _small(epochs=stopped.n_epochs_, learning_rate=0.01).fit(x, y, dy)
    for u, v in zip(stopped.coefs_, last.coefs_):
      self.assertAllClose(u, v, rtol=1e-6, atol=1e-7)

  def test_networks_with_non_trainable_weights(self):
    x, y, dy = _data()
    frozen = keras.Sequential([keras.Input((3,)), keras.layers.Dense(8, "tanh"),
                               keras.layers.Dense(1)])
    frozen.layers[0].trainable = False
    model = _small(network=frozen).fit(x, y, dy)
    self.assertAllClose(model.coefs_[0], frozen.get_weights()[0])  # Frozen: not trained.
    self.assertNotAllClose(model.coefs_[2], frozen.get_weights()[2])
    normalised = keras.Sequential([keras.Input((3,)), keras.layers.Dense(8),
                                   keras.layers.LayerNormalization(),
                                   keras.layers.Activation("tanh"), keras.layers.Dense(1)])
    self.assertEqual(_small(network=normalised).fit(x, y, dy).predict(x).shape, (96,))

  def test_repeated_fits_share_one_trace(self):
    x, y, dy = _data()
    estimator_lib.clear_cache()
    for seed in range(3):
      _small(seed=seed).fit(x, y, dy)
    self.assertLen(loop.TRAINERS, 1)
    trainer = next(iter(loop.TRAINERS.values()))
    (fn,) = trainer._epochs_fns.values()  # pylint: disable=protected-access
    self.assertEqual(fn.experimental_get_tracing_count(), 1)

  def test_dataset_equals_arrays(self):
    x, y, dy = _data(m=96)
    arrays = _small(shuffle=False, epochs=3).fit(x, y, dy)
    ds = tf.data.Dataset.from_tensor_slices((x, y, dy)).batch(32)
    streamed = _small(shuffle=False, epochs=3, batch_size=None).fit(ds)
    self.assertAllClose(streamed.scaler_.x_scale, arrays.scaler_.x_scale)
    self.assertAllClose(streamed.balance_.partial_weights, arrays.balance_.partial_weights)
    for u, v in zip(streamed.coefs_, arrays.coefs_):
      self.assertAllClose(u, v, rtol=1e-4, atol=1e-5)
    with self.assertRaisesRegex(ValueError, "batch_size must be None"):
      _small(batch_size=32).fit(ds)
    with self.assertRaisesRegex(ValueError, "directions must be None"):
      _small(batch_size=None).fit(ds, directions=x)
    with self.assertRaisesRegex(ValueError, r"dydx batches have shape \(None,\); for x"):
      _small(batch_size=None).fit(tf.data.Dataset.from_tensor_slices((x, y, y)).batch(32))
    with self.assertRaisesRegex(ValueError, "runs without XLA and checkpoints"):
      _small(batch_size=None, execution=estimator_lib.Execution(checkpoint_dir="x")).fit(ds)

  def test_killed_fit_resumes_to_the_same_weights(self):
    directory = self.create_tempdir().full_path
    script = (
        "import sys, numpy as np\n"
        "sys.path.insert(0, '.')\n"
        "from tests import kill\n"
        "from sobolev_tf.estimator import Execution\n"
        "from tests.test_estimator import _data, _small\n"
        "if sys.argv[1] == 'kill':\n"
        "  kill.sigkill_at_checkpoint(lambda epoch, calls: epoch >= 7)\n"
        "x, y, dy = _data()\n"
        "m = _small(epochs=12, execution=Execution(checkpoint_dir=sys.argv[2],\n"
        "                                         checkpoint_minutes=0.0)).fit(x, y, dy)\n"
        "np.save(sys.argv[3], np.concatenate([w.ravel() for w in m.coefs_]))\n"
        "np.save(sys.argv[3] + '.loss.npy', np.array(m.history_['loss']))\n")
    run = lambda *args: subprocess.run([sys.executable, "-c", script, *args], cwd=REPO,
                                       capture_output=True, text=True)
    killed = run("kill", os.path.join(directory, "ckpt"), os.path.join(directory, "a.npy"))
    self.assertEqual(killed.returncode, -9, killed.stderr[-2000:])
    resumed = run("resume", os.path.join(directory, "ckpt"), os.path.join(directory, "a.npy"))
    self.assertEqual(resumed.returncode, 0, resumed.stderr[-2000:])
    straight = run("straight", os.path.join(directory, "ckpt2"), os.path.join(directory, "b.npy"))
    self.assertEqual(straight.returncode, 0, straight.stderr[-2000:])
    self.assertAllEqual(np.load(os.path.join(directory, "a.npy")),
                        np.load(os.path.join(directory, "b.npy")))
    self.assertAllEqual(np.load(os.path.join(directory, "a.npy.loss.npy")),
                        np.load(os.path.join(directory, "b.npy.loss.npy")))
    # A schedule given as a function is recorded by name: the same fit resumes.
    schedule_dir = os.path.join(directory, "schedule")
    x, y, dy = _data()
    for _ in range(2):
      _small(epochs=3, learning_rate=lambda t: 0.01 * (1 - t), execution=estimator_lib.Execution(
          checkpoint_dir=schedule_dir, checkpoint_minutes=0.0)).fit(x, y, dy)
    # Another configuration is refused, not resumed.
    x, y, dy = _data()
    with self.assertRaisesRegex(ValueError, "another configuration"):
      _small(epochs=12, seed=3, execution=estimator_lib.Execution(
          checkpoint_dir=os.path.join(directory, "ckpt"), checkpoint_minutes=0.0)).fit(x, y, dy)


_REPLICAS = r"""
import sys, numpy as np, tensorflow as tf
replicas = int(sys.argv[1])
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
sys.path.insert(0, ".")
import sobolev_tf as st
from sobolev_tf.estimator import Execution
from tests.test_estimator import _data
strategy = tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(replicas)])
x, y, dy = _data()
# Adam with epsilon 1 depends on the loss's scale, which a wrong per-replica scaling changes.
m = st.SobolevRegressor(hidden_layers=(8, 8), epochs=3, batch_size=32, verbose=False,
                        execution=Execution(strategy=strategy),
                        adam=dict(epsilon=1.0)).fit(x, y, dy)
np.save(sys.argv[2], np.concatenate([w.ravel() for w in m.coefs_]))
if replicas == 2:
  try:
    st.SobolevRegressor(batch_size=31, execution=Execution(strategy=strategy)).fit(x, y, dy)
  except ValueError as e:
    print("refused:", e)
"""


class DistributeTest(tf.test.TestCase):

  def test_two_replicas_equal_one(self):
    directory = self.create_tempdir().full_path
    outs = []
    for replicas in (1, 2):
      out = os.path.join(directory, f"{replicas}.npy")
      result = subprocess.run([sys.executable, "-c", _REPLICAS, str(replicas), out], cwd=REPO,
                              capture_output=True, text=True)
      self.assertEqual(result.returncode, 0, result.stderr[-3000:])
      outs.append(np.load(out))
    self.assertAllClose(outs[0], outs[1], rtol=1e-5, atol=1e-6)
    self.assertIn("refused: batch_size=31 must be a multiple of the strategy's 2 replicas",
                  result.stdout)


class ScikitLearnTest(tf.test.TestCase):

  def test_conventions(self):
    x, y, dy = _data()
    model = _small(epochs=2)
    self.assertIs(model.fit(x, y, dy), model)
    params = model.get_params()
    self.assertEqual(params["hidden_layers"], (8, 8))
    clone = sklearn_base.clone(model)
    self.assertEqual(clone.get_params(), params)
    self.assertFalse(hasattr(clone, "coefs_"))
    clone.set_params(epochs=3, seed=5)
    self.assertEqual((clone.epochs, clone.seed), (3, 5))
    self.assertAllClose(model.score(x, y), metrics.r2_score(y, model.predict(x)))
    self.assertTrue(sklearn_base.is_regressor(model))
    strategy = tf.distribute.get_strategy()
    on_strategy = _small(execution=estimator_lib.Execution(strategy=strategy))
    self.assertIs(sklearn_base.clone(on_strategy).execution.strategy, strategy)
    scores = model_selection.cross_val_score(_small(epochs=2), x, y, cv=3, params={"dydx": dy})
    self.assertLen(scores, 3)
    search = model_selection.GridSearchCV(_small(epochs=2), {"balance": [None, 1.0]}, cv=2)
    search.fit(x, y, dydx=dy)
    self.assertIn(search.best_params_["balance"], (None, 1.0))


class BadInputTest(tf.test.TestCase):
  """Each refused before any work, with the argument and the shapes named."""

  def test_bad_input(self):
    x, y, dy = _data()
    nan_x = x.copy()
    nan_x[3, 1] = np.nan
    inf_dy = dy.copy()
    inf_dy[5, 2] = np.inf
    constant = x.copy()
    constant[:, 2] = 1.0
    cases = [
        (lambda: _small().fit(x, y[:50], dy), r"y must have shape \[96\] or \[96, outputs\]"),
        (lambda: _small().fit(x, y, dy[:, :2]), r"dydx must have shape \[96, 3\]"),
        (lambda: _small().fit(x[:, 0], y, dy), r"reshape a single feature"),
        (lambda: _small().fit(nan_x, y, dy), r"x holds NaN or Inf.*\(3, 1\)"),
        (lambda: _small().fit(x, y, inf_dy), r"dydx holds NaN or Inf.*dydx_weight=0"),
        (lambda: _small().fit(constant, y, dy), r"constant columns \[2\]"),
        (lambda: _small(batch_size=200).fit(x, y, dy), r"batch_size=200 is larger than the 96"),
        (lambda: _small().fit(x, y, dy, validation_split=0.001), r"leaves 96 to train and 0"),
        (lambda: _small().fit(x, y, dy, validation_split=1.5), r"validation_split must be"),
        (lambda: _small().fit(x, y, dy, sample_weight=np.ones(5)), r"sample_weight must have"),
        (lambda: _small().fit(x, y, dy, dydx_weight=np.ones((96, 2))), r"dydx_weight must have"),
        (lambda: _small().fit(x, y, dydx_weight=np.ones((96, 3))), r"give dydx too"),
        (lambda: _small(epochs=0).fit(x, y, dy), r"epochs must be a positive integer"),
        (lambda: _small(activation="sine").fit(x, y, dy), r"activation must be one of"),
        (lambda: _small(learning_rate=float("nan")).fit(x, y, dy), r"learning_rate must be"),
        (lambda: _small(balance=-1.0).fit(x, y, dy), r"balance must be None"),
        (lambda: _small(execution=estimator_lib.Execution(jit_compile="yes")).fit(x, y, dy),
         r"execution.jit_compile must be"),
        (lambda: _small(execution={"jit_compile": True}).fit(x, y, dy),
         r"execution must be an Execution"),
        (lambda: _small(adam={"learning_rate": 1.0}).fit(x, y, dy), r"adam must be a dict"),
        (lambda: _small(adam={"beta_2": -1.0}).fit(x, y, dy), r"adam must be a dict"),
        (lambda: _small(adam={"beta_1": 1.0}).fit(x, y, dy), r"beta_2 \(in \[0, 1\)\)"),
        (lambda: _small(adam={"epsilon": 0.0}).fit(x, y, dy), r"epsilon \(> 0\)"),
        (lambda: _small(network=keras.Sequential([keras.Input((3,)), keras.layers.Dense(4)]))
         .fit(x, y, dy), r"network maps \[B, 3\] inputs to \(4,\) outputs"),
        (lambda: _small().predict(x), r"not fitted yet"),
        (lambda: _small(epochs=1).fit(x, y, dy).predict(x[:, :2]),
         r"x has shape \(96, 2\); this model was fitted on \[examples, 3\]"),
    ]
    for make, pattern in cases:
      with self.subTest(pattern=pattern):
        with self.assertRaisesRegex(ValueError, pattern):
          make()
    with self.assertRaises(sklearn_exceptions.NotFittedError):
      _small().predict_derivatives(x)


if __name__ == "__main__":
  tf.test.main()

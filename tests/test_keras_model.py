"""Keras 3 integration: fit with (x, (y, dy)), metrics per term, callbacks, save/load."""

import os

import keras
import numpy as np
import tensorflow as tf

import sobolev_tf as st


def _data(n=64, seed=0):
  rng = np.random.default_rng(seed)
  x = rng.uniform(-2, 2, (n, 2)).astype(np.float32)
  y = (np.sin(x[:, 0]) * x[:, 1])[:, None].astype(np.float32)
  dy = np.stack([np.cos(x[:, 0]) * x[:, 1], np.sin(x[:, 0])], axis=1)[:, None, :].astype(np.float32)
  return x, y, dy


def _model(seed=0, **kwargs):
  keras.utils.set_random_seed(seed)
  net = keras.Sequential([keras.Input((2,)), keras.layers.Dense(32, activation="tanh"),
                          keras.layers.Dense(1)])
  model = st.SobolevModel(net, **kwargs)
  model.compile(optimizer=keras.optimizers.Adam(1e-2))
  return model


def _regularised_net(seed=0, l2=0.01, outputs=1):
  keras.utils.set_random_seed(seed)
  return keras.Sequential([
      keras.Input((2,)),
      keras.layers.Dense(16, activation="tanh",
                         kernel_regularizer=keras.regularizers.L2(l2)),
      keras.layers.Dense(outputs)])


def _copy(net):
  twin = keras.models.clone_model(net)
  twin.set_weights(net.get_weights())
  return twin


def _weights_of(net):
  return [np.array(w) for w in net.get_weights()]


class KerasContractTest(tf.test.TestCase):
  """SobolevModel against Keras' own behaviour and against sobolev_loss."""

  def test_equals_plain_keras_at_derivative_weight_zero(self):
    # Regulariser, sample weights (some 0), compile(loss, metrics): all as Keras does them.
    x, y, dy = _data()
    w = np.random.default_rng(3).uniform(0, 2, len(x)).astype(np.float32)
    w[::5] = 0.0
    net = _regularised_net(l2=0.05)
    plain = _copy(net)
    plain.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse", metrics=["mae"])
    model = st.SobolevModel(net, derivative_weights=0.0)
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse", metrics=["mae"])
    kw = dict(batch_size=16, epochs=3, verbose=0, shuffle=False, sample_weight=w)
    h_plain = plain.fit(x, y, **kw)
    h_sob = model.fit(x, (y, dy), **kw)
    for a, b in zip(_weights_of(plain), _weights_of(net)):
      self.assertAllClose(a, b, atol=1e-6)
    self.assertAllClose(h_plain.history["loss"], h_sob.history["loss"], rtol=1e-5)
    self.assertAllClose(h_plain.history["mae"], h_sob.history["mae"], rtol=1e-5)
    ev_plain = plain.evaluate(x, y, sample_weight=w, verbose=0, return_dict=True)
    ev_sob = model.evaluate(x, (y, dy), sample_weight=w, verbose=0, return_dict=True)
    self.assertAllClose(ev_plain["loss"], ev_sob["loss"], rtol=1e-5)
    self.assertAllClose(ev_plain["mae"], ev_sob["mae"], rtol=1e-5)

  def test_applied_update_is_the_sobolev_loss_gradient(self):
    x, y, dy = _data(n=16)
    w = np.linspace(0.0, 2.0, 16).astype(np.float32)
    net = _regularised_net(l2=0.1)
    before = _weights_of(net)
    reference = _copy(net)
    with tf.GradientTape() as tape:
      total, _ = st.sobolev_loss(reference, tf.constant(x), (y, dy),
                                 derivative_weights=(0.7,), sample_weight=w)
      total += tf.add_n(reference.losses)
    grads = tape.gradient(total, reference.trainable_variables)
    model = st.SobolevModel(net, derivative_weights=0.7)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    history = model.fit(x, (y, dy), sample_weight=w, batch_size=16, epochs=1, verbose=0)
    self.assertAllClose(history.history["loss"][0], total, rtol=1e-5)
    for b, a, g in zip(before, _weights_of(net), grads):
      self.assertAllClose(a - b, -0.1 * g.numpy(), atol=1e-6)

  def test_regulariser_and_sample_weight_change_the_loss(self):
    x, y, dy = _data()
    results = {}
    for name, l2, w in [("plain", 0.0, None), ("l2", 100.0, None),
                        ("zero_weights", 0.0, np.zeros(len(x), np.float32))]:
      model = st.SobolevModel(_regularised_net(l2=l2))
      model.compile(optimizer="sgd")
      results[name] = model.evaluate(x, (y, dy), sample_weight=w, verbose=0, return_dict=True)
    self.assertGreater(results["l2"]["loss"], results["plain"]["loss"] + 1.0)
    self.assertEqual(results["zero_weights"]["value_loss"], 0.0)
    self.assertEqual(results["zero_weights"]["derivative_1_loss"], 0.0)

  def test_compiled_loss_is_the_value_term(self):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 2)).astype(np.float32)
    labels = keras.utils.to_categorical(rng.integers(0, 3, 32), 3).astype(np.float32)
    dlogits = rng.normal(size=(32, 3, 2)).astype(np.float32)
    net = _regularised_net(l2=0.0, outputs=3)
    model = st.SobolevModel(net)
    model.compile(optimizer="sgd", loss=keras.losses.CategoricalCrossentropy(from_logits=True),
                  metrics=["categorical_accuracy"])
    result = model.evaluate(x, (labels, dlogits), verbose=0, return_dict=True)
    logits = net(x)
    expected = keras.losses.CategoricalCrossentropy(from_logits=True)(labels, logits)
    self.assertAllClose(result["value_loss"], expected, rtol=1e-5)
    accuracy = np.mean(np.argmax(logits, -1) == np.argmax(labels, -1))
    self.assertAllClose(result["categorical_accuracy"], accuracy)
    self.assertIn("derivative_1_loss", result)

  def test_dy_weight_masks_missing_partials(self):
    x, y, dy = _data(n=32)
    mask = np.ones_like(dy)
    mask[:10] = 0.0        # Points without derivatives.
    mask[10:20, :, 1] = 0.0  # Points with only the first partial.
    holes = np.where(mask > 0, dy, np.nan).astype(np.float32)
    filled = np.where(mask > 0, dy, 1e3).astype(np.float32)
    runs = []
    for dy_target in (holes, filled):
      net = _regularised_net(l2=0.0)
      model = st.SobolevModel(net)
      model.compile(optimizer=keras.optimizers.SGD(0.05))
      model.fit(x, {"y": y, "dy": dy_target, "dy_weight": mask}, batch_size=8, epochs=2,
                verbose=0, shuffle=False)
      runs.append(_weights_of(net))
    for a, b in zip(*runs):
      self.assertTrue(np.all(np.isfinite(a)))
      self.assertAllClose(a, b, atol=1e-6)
    # The masked term is the mean over examples of the kept partials' squared errors.
    net = _regularised_net(l2=0.0)
    _, grad = st.derivative_tensors(net, tf.constant(x), 1)
    _, terms = st.sobolev_loss(net, x, {"y": y, "dy": holes, "dy_weight": mask})
    expected = np.mean(np.sum(mask * np.square(np.nan_to_num(holes) - grad.numpy()), (1, 2)))
    self.assertAllClose(terms["derivative_1"], expected, rtol=1e-5)
    self.assertTrue(np.isfinite(terms["value"]))

  def test_jit_compile_matches_graph(self):
    x, y, dy = _data(n=32)
    runs = []
    for jit in (False, True):
      net = _regularised_net()
      model = st.SobolevModel(net, derivative_weights=(1.0, 0.5))
      model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=jit)
      model.fit(x, (y, dy, np.zeros((32, 1, 2, 2), np.float32)), batch_size=8, epochs=2,
                verbose=0, shuffle=False)
      runs.append(_weights_of(net))
    for a, b in zip(*runs):
      self.assertAllClose(a, b, atol=1e-5)
    # Eq. 2 under XLA too (its stateless directions are XLA's own stream, so only finite).
    model = st.SobolevModel(_regularised_net(), stochastic=True, seed=2)
    model.compile(optimizer="adam", jit_compile=True)
    history = model.fit(x, (y, dy), batch_size=8, epochs=1, verbose=0)
    self.assertTrue(np.isfinite(history.history["loss"][0]))

  def test_mixed_precision_matches_float32(self):
    # SGD, whose update scales with the loss: a loss scale left in the gradients would show.
    x, y, dy = _data(n=32)
    weights = {}
    for policy in ("float32", "mixed_float16"):
      keras.mixed_precision.set_global_policy(policy)
      try:
        net = _regularised_net()
        model = st.SobolevModel(net)
        model.compile(optimizer=keras.optimizers.SGD(0.05))
        history = model.fit(x, (y, dy), batch_size=8, epochs=3, verbose=0, shuffle=False)
      finally:
        keras.mixed_precision.set_global_policy("float32")
      weights[policy] = _weights_of(net)
      self.assertTrue(np.all(np.isfinite(history.history["loss"])))
      if policy == "mixed_float16":
        self.assertIsInstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        self.assertEqual(net.layers[0].compute_dtype, "float16")
    start = _weights_of(_regularised_net())
    for w0, a, b in zip(start, weights["float32"], weights["mixed_float16"]):
      # The same updates up to float16 rounding; a loss scale left in (or divided out twice)
      # would make them 2^15 times too large (or small).
      self.assertLess(np.linalg.norm((b - w0) - (a - w0)), 0.2 * np.linalg.norm(a - w0))

  def test_evaluate_lists_loss_first_and_targets_as_namedtuple(self):
    x, y, dy = _data(n=16)
    model = st.SobolevModel(_regularised_net())
    model.compile(optimizer="sgd", metrics=["mae"])
    as_list = model.evaluate(x, (y, dy), verbose=0)
    as_dict = model.evaluate(x, (y, dy), verbose=0, return_dict=True)
    names = ["loss", "value_loss", "derivative_1_loss", "mae"]
    self.assertEqual(set(as_dict), set(names))
    self.assertAllClose(as_list, [as_dict[n] for n in names])  # The loss first, as in Keras.
    named = model.evaluate(x, st.SobolevTargets(y, [dy]), verbose=0, return_dict=True)
    self.assertAllClose(named["loss"], as_dict["loss"])

  def test_argument_errors(self):
    net = _regularised_net()
    balance = st.DerivativeBalance(0.5, 0.5, np.ones((1, 2)))
    with self.assertRaisesRegex(ValueError, "balance weighs first derivatives"):
      st.SobolevModel(net, balance=balance, stochastic=True)
    with self.assertRaisesRegex(ValueError, "num_projections and projection_space apply"):
      st.SobolevModel(net, num_projections=4)
    model = st.SobolevModel(net)
    with self.assertRaisesRegex(ValueError, "reduction='sum'"):
      model.compile(optimizer="sgd", loss=keras.losses.MeanSquaredError(reduction="sum"))
    with self.assertRaisesRegex(ValueError, "loss_weights"):
      model.compile(optimizer="sgd", loss_weights=[2.0])

  def test_dataset_with_sample_weights_and_predict(self):
    x, y, dy = _data(n=32)
    w = np.linspace(0, 1, 32).astype(np.float32)
    runs = []
    for use_dataset in (False, True):
      net = _regularised_net()
      model = st.SobolevModel(net)
      model.compile(optimizer=keras.optimizers.SGD(0.05))
      if use_dataset:
        ds = tf.data.Dataset.from_tensor_slices((x, (y, dy), w)).batch(8)
        model.fit(ds, epochs=2, verbose=0)
      else:
        model.fit(x, (y, dy), sample_weight=w, batch_size=8, epochs=2, verbose=0, shuffle=False)
      runs.append(_weights_of(net))
      self.assertAllClose(model.predict(x, verbose=0), net(x))
    for a, b in zip(*runs):
      self.assertAllClose(a, b, atol=1e-6)


class TeacherDistillationTest(tf.test.TestCase):

  def _teacher(self, outputs=1):
    keras.utils.set_random_seed(7)
    return keras.Sequential([keras.Input((2,)), keras.layers.Dense(8, activation="tanh"),
                             keras.layers.Dense(outputs)])

  def test_teacher_is_keyword_only(self):
    with self.assertRaises(TypeError):
      st.SobolevModel(_regularised_net(), self._teacher())  # pylint: disable=too-many-function-args

  def test_regression_distillation_update_and_roles(self):
    x = np.random.default_rng(1).uniform(-1, 1, (16, 2)).astype(np.float32)
    teacher = self._teacher()
    teacher_before = _weights_of(teacher)
    net = _regularised_net(l2=0.0)
    before = _weights_of(net)
    reference = _copy(net)
    with tf.GradientTape() as tape:
      total, _ = st.sobolev_loss(reference, x, teacher=teacher, derivative_weights=(2.0,))
    grads = tape.gradient(total, reference.trainable_variables)
    model = st.SobolevModel(net, teacher=teacher, derivative_weights=2.0)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    model.fit(x, batch_size=16, epochs=1, verbose=0)
    for b, a, g in zip(before, _weights_of(net), grads):
      self.assertAllClose(a - b, -0.1 * g.numpy(), atol=1e-6)
    for b, a in zip(teacher_before, _weights_of(teacher)):
      self.assertAllEqual(a, b)
    self.assertNotAllClose(before[0], _weights_of(net)[0])
    teacher_ids = {id(v) for v in teacher.weights}
    self.assertFalse(any(id(v) in teacher_ids for v in model.trainable_variables))
    self.assertLen(model.trainable_variables, len(net.trainable_variables))
    with self.assertRaisesRegex(ValueError, "sample_weight with a teacher"):
      model.fit(x, sample_weight=np.ones(16, np.float32), verbose=0)

  def test_policy_distillation_alpha_changes_the_update(self):
    x = np.random.default_rng(2).uniform(-1, 1, (16, 2)).astype(np.float32)
    teacher = self._teacher(outputs=4)
    teacher_before = _weights_of(teacher)
    updates = {}
    for alpha in (0.0, 1.0):
      net = _regularised_net(l2=0.0, outputs=4)
      before = _weights_of(net)
      model = st.SobolevModel(net, teacher=teacher, objective="policy", derivative_weights=alpha)
      model.compile(optimizer=keras.optimizers.SGD(0.5))
      history = model.fit(x, batch_size=16, epochs=1, verbose=0, shuffle=False)
      updates[alpha] = [a - b for a, b in zip(_weights_of(net), before)]
      self.assertGreater(history.history["value_loss"][0], 0.0)
      self.assertGreater(history.history["derivative_1_loss"][0], 0.0)
    self.assertNotAllClose(updates[0.0][0], updates[1.0][0])
    for b, a in zip(teacher_before, _weights_of(teacher)):
      self.assertAllEqual(a, b)
    # The alpha = 1 update is the section 4.2 loss: KL + alpha * L2 norm of output projections.
    net = _regularised_net(l2=0.0, outputs=4)
    # The model folds the optimizer step (int64; a Python 0 would give another seed) into [seed, 0].
    seed = tf.random.experimental.stateless_fold_in(tf.constant([0, 0], tf.int64),
                                                    tf.constant(0, tf.int64))
    with tf.GradientTape() as tape:
      total, _ = st.sobolev_loss(
          lambda z: tf.nn.log_softmax(net(z)), x,
          teacher=lambda z: tf.nn.log_softmax(teacher(z)),
          value_loss=st.categorical_kl_from_log_probs, derivative_loss="l2_norm",
          stochastic=True, projection_space="output", seed=seed)
    grads = tape.gradient(total, net.trainable_variables)
    for u, g in zip(updates[1.0], grads):
      self.assertAllClose(u, -0.5 * g.numpy(), atol=1e-6)

  def test_errors_and_save_load(self):
    teacher = self._teacher()
    x = np.zeros((4, 2), np.float32)
    with self.assertRaisesRegex(ValueError, "teacher"):
      st.SobolevModel(_regularised_net(), objective="policy")
    with self.assertRaisesRegex(ValueError, "objective must be one of"):
      st.SobolevModel(_regularised_net(), teacher=teacher, objective="kl")
    model = st.SobolevModel(_regularised_net(), teacher=teacher, stochastic=True,
                            num_projections=2, seed=5)
    model.compile(optimizer="sgd")
    with self.assertRaisesRegex(ValueError, "inputs only"):
      model.fit(x, (np.zeros((4, 1)), np.zeros((4, 1, 2))), verbose=0)
    model.fit(x, verbose=0)
    path = os.path.join(self.create_tempdir().full_path, "student.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    self.assertIsNotNone(loaded.teacher)
    self.assertEqual((loaded.stochastic, loaded.num_projections, loaded.seed), (True, 2, 5))
    self.assertAllClose(loaded.teacher(x), teacher(x))
    self.assertAllClose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


class SobolevModelTest(tf.test.TestCase):

  def test_fit_tuple_and_dict_targets_and_metrics(self):
    x, y, dy = _data()
    model = _model()
    history = model.fit(x, (y, dy), batch_size=16, epochs=5, verbose=0)
    self.assertEqual(set(history.history),
                     {"loss", "value_loss", "derivative_1_loss"})
    self.assertLess(history.history["loss"][-1], history.history["loss"][0])
    dict_model = _model()
    dict_history = dict_model.fit(x, {"y": y, "dy": dy}, batch_size=16, epochs=5,
                                  verbose=0, shuffle=False)
    tuple_model = _model()
    tuple_history = tuple_model.fit(x, (y, dy), batch_size=16, epochs=5, verbose=0,
                                    shuffle=False)
    self.assertAllClose(dict_history.history["loss"], tuple_history.history["loss"])
    results = model.evaluate(x, (y, dy), verbose=0, return_dict=True)
    self.assertIn("derivative_1_loss", results)

  def test_stochastic_and_dataset_input(self):
    x, y, dy = _data()
    ds = tf.data.Dataset.from_tensor_slices((x, (y, dy))).batch(16)
    model = _model(stochastic=True, num_projections=2, seed=3)
    history = model.fit(ds, epochs=3, verbose=0)
    self.assertTrue(np.all(np.isfinite(history.history["loss"])))

  def test_save_load_and_callbacks(self):
    x, y, dy = _data()
    model = _model(derivative_weights=(0.5,))
    workdir = self.create_tempdir().full_path
    ckpt = os.path.join(workdir, "best.keras")
    callbacks = [
        keras.callbacks.ModelCheckpoint(ckpt, monitor="loss", save_best_only=True),
        keras.callbacks.BackupAndRestore(os.path.join(workdir, "backup")),
        keras.callbacks.TensorBoard(os.path.join(workdir, "tb")),
    ]
    model.fit(x, (y, dy), batch_size=16, epochs=2, verbose=0, callbacks=callbacks)
    self.assertTrue(os.path.exists(ckpt))
    self.assertNotEmpty(tf.io.gfile.glob(os.path.join(workdir, "tb", "train", "events.*")))
    path = os.path.join(workdir, "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    self.assertIsInstance(loaded, st.SobolevModel)
    self.assertEqual(loaded.derivative_weights, (0.5,))
    self.assertAllClose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    # The loaded model trains on (compiled optimizer state restored by Keras).
    self.assertEqual(int(loaded.optimizer.iterations), int(model.optimizer.iterations))
    loaded.fit(x, (y, dy), batch_size=16, epochs=1, verbose=0)

  def test_save_load_keeps_the_compiled_loss_and_metrics(self):
    x, y, dy = _data()
    model = st.SobolevModel(_regularised_net(), derivative_weights=0.3)
    model.compile(optimizer="adam", loss=keras.losses.MeanAbsoluteError(), metrics=["mse"])
    model.fit(x, (y, dy), batch_size=16, epochs=1, verbose=0)
    path = os.path.join(self.create_tempdir().full_path, "mae.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    expected = model.evaluate(x, (y, dy), verbose=0, return_dict=True)
    self.assertAllClose(loaded.evaluate(x, (y, dy), verbose=0, return_dict=True), expected)
    mae = np.mean(np.abs(y - model.predict(x, verbose=0)))
    self.assertAllClose(expected["value_loss"], mae, rtol=1e-5)

  def test_backup_and_restore_resumes(self):
    x, y, dy = _data()
    backup = os.path.join(self.create_tempdir().full_path, "backup")

    class StopAt(keras.callbacks.Callback):

      def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
          raise RuntimeError("interrupted")

    model = _model()
    with self.assertRaisesRegex(RuntimeError, "interrupted"):
      model.fit(x, (y, dy), epochs=4, verbose=0, shuffle=False,
                callbacks=[keras.callbacks.BackupAndRestore(backup), StopAt()])
    resumed = _model()
    history = resumed.fit(x, (y, dy), epochs=4, verbose=0, shuffle=False,
                          callbacks=[keras.callbacks.BackupAndRestore(backup)])
    self.assertLen(history.history["loss"], 2)  # Epochs 2 and 3 only.
    uninterrupted = _model()
    uninterrupted.fit(x, (y, dy), epochs=4, verbose=0, shuffle=False)
    self.assertEqual(int(resumed.optimizer.iterations), int(uninterrupted.optimizer.iterations))
    for a, b in zip(resumed.get_weights(), uninterrupted.get_weights()):
      self.assertAllClose(a, b, atol=1e-6)

  def test_errors(self):
    x, y, dy = _data()
    model = _model()
    with self.assertRaisesRegex(ValueError, "pass the input derivatives too"):
      model.fit(x, y, epochs=1, verbose=0)
    with self.assertRaisesRegex(ValueError, "shape"):
      model.fit(x, (y, dy[:, 0, :]), epochs=1, verbose=0)
    with self.assertRaisesRegex(ValueError, "derivative_loss must be one of"):
      st.SobolevModel(keras.Sequential([keras.layers.Dense(1)]), derivative_loss="l3")


if __name__ == "__main__":
  tf.test.main()

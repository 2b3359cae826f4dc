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
    loaded.fit(x, (y, dy), batch_size=16, epochs=1, verbose=0)

  def test_backup_and_restore_resumes(self):
    x, y, dy = _data()
    backup = os.path.join(self.create_tempdir().full_path, "backup")

    class StopAt(keras.callbacks.Callback):

      def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
          raise RuntimeError("interrupted")

    model = _model()
    with self.assertRaisesRegex(RuntimeError, "interrupted"):
      model.fit(x, (y, dy), epochs=4, verbose=0,
                callbacks=[keras.callbacks.BackupAndRestore(backup), StopAt()])
    resumed = _model()
    history = resumed.fit(x, (y, dy), epochs=4, verbose=0,
                          callbacks=[keras.callbacks.BackupAndRestore(backup)])
    self.assertLen(history.history["loss"], 2)  # Epochs 2 and 3 only.

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

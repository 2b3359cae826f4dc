"""Keras 3 integration: ``model.fit`` with the Sobolev objective.

    import keras, sobolev_tf as st
    net = keras.Sequential([keras.Input((2,)), keras.layers.Dense(64, "softplus"),
                            keras.layers.Dense(1)])
    model = st.SobolevModel(net, derivative_weights=(1.0,))
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(x, (y, dy), epochs=10)            # or {"y": y, "dy": dy}

Every term of the loss is a metric (``loss``, ``value_loss``,
``derivative_1_loss``, ...), so ``History``, TensorBoard, ModelCheckpoint and
BackupAndRestore see them. Only the TensorFlow backend is supported: the
derivatives are taken with ``tf.GradientTape``.
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import keras
import tensorflow as tf

from sobolev_tf import losses as losses_lib

__all__ = ["SobolevModel"]


def _split_targets(targets):
  """Normalises Keras' ``y`` into the ``(values, derivatives)`` of sobolev_loss."""
  if isinstance(targets, dict):
    return targets
  if isinstance(targets, (tuple, list)):
    if len(targets) < 2:
      raise ValueError(
          "SobolevModel needs targets (y, dy[, d2y, ...]) or {'y': ..., 'dy': ...}; "
          f"got a sequence of {len(targets)}.")
    return tuple(targets)
  raise ValueError(
      "SobolevModel needs targets (y, dy[, d2y, ...]) or {'y': ..., 'dy': ...}, "
      f"got a single {type(targets).__name__}: pass the input derivatives too.")


@keras.saving.register_keras_serializable(package="sobolev_tf")
class SobolevModel(keras.Model):
  """Wraps a Keras model so that ``fit``/``evaluate`` use ``sobolev_loss``.

  Args:
    model: the Keras model or layer to train, ``[B, *in] -> [B, *out]``.
    derivative_weights: weight per derivative order (eq. 1); length = order K.
    value_weight: weight of the value term.
    derivative_loss: ``"squared_l2"`` (default, section 4.1), ``"l1"``,
      ``"l2_norm"``.
    stochastic: use eq. 2 (random projections) instead of full derivatives.
    num_projections: projections per example for eq. 2.
    projection_space: ``"input"`` or ``"output"``.
    seed: integer seed of the projections; the optimizer step is folded in.
  """

  def __init__(self, model: keras.Model,
               derivative_weights: Union[float, Sequence[float]] = (1.0,),
               value_weight: float = 1.0,
               derivative_loss: str = "squared_l2",
               stochastic: bool = False,
               num_projections: int = 1,
               projection_space: str = "input",
               seed: int = 0,
               **kwargs):
    super().__init__(**kwargs)
    if keras.backend.backend() != "tensorflow":
      raise ValueError(
          "SobolevModel needs the TensorFlow Keras backend, got "
          f"{keras.backend.backend()!r}; set KERAS_BACKEND=tensorflow.")
    if not isinstance(derivative_loss, str) or derivative_loss not in losses_lib.DERIVATIVE_LOSSES:
      raise ValueError(
          f"derivative_loss must be one of {sorted(losses_lib.DERIVATIVE_LOSSES)} "
          f"(a name, so the model can be saved), got {derivative_loss!r}.")
    self.model = model
    self.derivative_weights = ((float(derivative_weights),)
                               if isinstance(derivative_weights, (int, float))
                               else tuple(float(w) for w in derivative_weights))
    self.value_weight = float(value_weight)
    self.derivative_loss = derivative_loss
    self.stochastic = bool(stochastic)
    self.num_projections = int(num_projections)
    self.projection_space = projection_space
    self.seed = int(seed)
    names = ["loss", "value_loss"] + [
        f"derivative_{j + 1}_loss" for j in range(len(self.derivative_weights))]
    self._trackers = {n: keras.metrics.Mean(name=n) for n in names}
    if getattr(model, "built", False):
      # A built inner model means a built wrapper (BackupAndRestore requires it).
      self.built = True

  def call(self, inputs, training=None):
    return self.model(inputs, training=training)

  def build(self, input_shape):
    if not self.model.built:
      self.model.build(input_shape)
    self.built = True

  @property
  def metrics(self):
    return list(self._trackers.values())

  def compute_sobolev_loss(self, x, targets, training: bool):
    """The Sobolev loss and its terms for one batch."""
    seed = None
    if self.stochastic:
      step = tf.cast(self.optimizer.iterations if self.optimizer is not None else 0, tf.int64)
      seed = tf.random.experimental.stateless_fold_in(
          tf.constant([self.seed, 0], tf.int64), step)
    return losses_lib.sobolev_loss(
        lambda z: self.model(z, training=training), x, _split_targets(targets),
        derivative_weights=self.derivative_weights,
        value_weight=self.value_weight,
        derivative_loss=self.derivative_loss,
        stochastic=self.stochastic,
        num_projections=self.num_projections,
        projection_space=self.projection_space,
        seed=seed)

  def _update_metrics(self, terms):
    self._trackers["loss"].update_state(terms["total"])
    if "value" in terms:
      self._trackers["value_loss"].update_state(terms["value"])
    for j in range(len(self.derivative_weights)):
      self._trackers[f"derivative_{j + 1}_loss"].update_state(terms[f"derivative_{j + 1}"])
    return {name: t.result() for name, t in self._trackers.items()}

  def train_step(self, data):
    x, targets, _ = keras.utils.unpack_x_y_sample_weight(data)
    if targets is None:
      raise ValueError("SobolevModel.fit needs targets: fit(x, (y, dy)).")
    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
      total, terms = self.compute_sobolev_loss(x, targets, training=True)
    variables = self.trainable_variables
    grads = tape.gradient(total, variables)
    self.optimizer.apply_gradients(zip(grads, variables))
    return self._update_metrics(terms)

  def test_step(self, data):
    x, targets, _ = keras.utils.unpack_x_y_sample_weight(data)
    if targets is None:
      raise ValueError("SobolevModel.evaluate needs targets: evaluate(x, (y, dy)).")
    _, terms = self.compute_sobolev_loss(tf.convert_to_tensor(x), targets, training=False)
    return self._update_metrics(terms)

  def get_config(self):
    return {
        "model": keras.saving.serialize_keras_object(self.model),
        "derivative_weights": list(self.derivative_weights),
        "value_weight": self.value_weight,
        "derivative_loss": self.derivative_loss,
        "stochastic": self.stochastic,
        "num_projections": self.num_projections,
        "projection_space": self.projection_space,
        "seed": self.seed,
        "name": self.name,
    }

  @classmethod
  def from_config(cls, config, custom_objects=None):
    config = dict(config)
    config["model"] = keras.saving.deserialize_keras_object(
        config["model"], custom_objects=custom_objects)
    return cls(**config)

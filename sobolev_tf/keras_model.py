"""Keras 3 integration: ``model.fit`` with the Sobolev objective.

    import keras, sobolev_tf as st
    net = keras.Sequential([keras.Input((2,)), keras.layers.Dense(64, "softplus"),
                            keras.layers.Dense(1)])
    model = st.SobolevModel(net, derivative_weights=(1.0,))
    model.compile(optimizer=keras.optimizers.Adam(1e-3))       # loss="mse", metrics=[...] too
    model.fit(x, (y, dy), sample_weight=w, epochs=10)          # or {"y": y, "dy": dy, "dy_weight": m}

    student = st.SobolevModel(net, teacher=teacher_net)        # distillation: fit(x) alone
    policy = st.SobolevModel(student_net, teacher=teacher_net, objective="policy")

The objective is ``sobolev_loss`` (value term from ``compile(loss=...)``,
squared error by default) plus ``sum(model.losses)``, scaled for the number of
replicas as Keras' own ``compute_loss`` scales it, so ``tf.distribute``, mixed
precision (the loss-scale optimizer) and ``compile(jit_compile=True)`` behave as
for a plain Keras model. Every term is a metric (``loss``, ``value_loss``,
``derivative_1_loss``, ...); ``compile(metrics=...)`` applies to the value
prediction. Only the TensorFlow backend is supported: the derivatives are taken
with ``tf.GradientTape``.
"""

from __future__ import annotations

import os
import warnings
import zipfile
from typing import Optional, Sequence, Union

import keras
import numpy as np
import tensorflow as tf

from sobolev_tf import checks
from sobolev_tf import derivatives as derivs
from sobolev_tf import losses as losses_lib
from sobolev_tf import scaling

__all__ = ["SobolevModel", "OBJECTIVES", "load_model"]

# "regression": values and derivatives of the outputs, from targets or a teacher.
# "policy": section 4.2; outputs are logits, the value term is KL(pi || pi*) of
# their softmax and the derivative term the gradient of <log pi, v> for random
# unit v in action space, by L2 norm.
OBJECTIVES = ("regression", "policy")


def _split_targets(targets):
  """Normalises Keras' ``y`` into the targets of ``sobolev_loss``."""
  if isinstance(targets, (dict, losses_lib.SobolevTargets)):
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


def _target_values(targets):
  if isinstance(targets, dict):
    return targets.get("y")
  if isinstance(targets, losses_lib.SobolevTargets):
    return targets.values
  return targets[0]


def _per_example_keras_loss(loss):
  """A ``compile(loss=...)`` entry as a per-example ``(target, prediction) -> [B]``."""
  if isinstance(loss, (dict, list, tuple)):
    raise ValueError("SobolevModel takes one value loss in compile(loss=...), got "
                     f"{type(loss).__name__}; wrap a multi-output model's outputs in one tensor.")
  fn = keras.losses.get(loss)
  if isinstance(fn, keras.losses.Loss):
    if fn.reduction not in ("sum_over_batch_size", None, "none"):
      raise ValueError(
          f"compile(loss=...) has reduction={fn.reduction!r}; SobolevModel reduces every term "
          "as Keras' default 'sum_over_batch_size' (sum of weighted losses / batch size).")
    return fn.call  # Unreduced: sobolev_loss applies the sample weights and the mean.
  return fn


def _per_example_weight(sample_weight):
  """Keras repeats ``fit(sample_weight=w)`` over the structure of ``y``: one ``w`` is meant."""
  if isinstance(sample_weight, dict):
    sample_weight = sample_weight.get("y", next(iter(sample_weight.values()), None))
  while isinstance(sample_weight, (tuple, list)):
    sample_weight = sample_weight[0] if sample_weight else None
  return sample_weight


def _scale_for_replicas(loss: tf.Tensor) -> tf.Tensor:
  """Per-replica mean -> share of the global mean (Keras' ``scale_loss_for_distribution``).

  Each replica's gradient is summed across replicas, so dividing the local
  batch mean by the number of replicas makes the update that of the global batch.
  """
  replicas = tf.distribute.get_strategy().num_replicas_in_sync
  return loss * (1.0 / replicas) if replicas > 1 else loss


def _across_workers() -> bool:
  """True under a MultiWorkerMirroredStrategy spanning more than one worker."""
  strategy = tf.distribute.get_strategy()
  if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
    return False
  spec = strategy.cluster_resolver.cluster_spec()
  return sum(spec.num_tasks(job) for job in spec.jobs if job in ("chief", "worker")) > 1


def _step_logs(logs: dict) -> dict:
  """Step outputs Keras can reduce: across workers it means them along axis 0,
  which a scalar lacks (keras-team/keras#20585), so they go out as ``[1]``."""
  if _across_workers():
    return {k: tf.reshape(v, [1]) for k, v in logs.items()}
  return logs


def _layers(model) -> list:
  """Every layer of a (nested) Keras model."""
  out = []
  for layer in getattr(model, "layers", []):
    out += [layer] + _layers(layer)
  return out


def _activation_name(layer):
  activation = getattr(layer, "activation", None)
  if activation is None:
    return None
  name = keras.activations.serialize(activation)
  return name if isinstance(name, str) else None


@keras.saving.register_keras_serializable(package="sobolev_tf")
class SobolevModel(keras.Model):
  """Wraps a Keras model so that ``fit``/``evaluate`` use ``sobolev_loss``.

  Args:
    model: the Keras model to train (the student), ``[B, *in] -> [B, *out]``.
    teacher: keyword only. A Keras model (set to ``trainable = False``) or a
      callable: ``fit(x)`` then needs inputs only and matches its values and
      input derivatives, with no gradient into it and its weights never trained.
      Saving needs a Keras teacher. Keras drops ``sample_weight`` when there are
      no targets, so it is refused with a teacher.
    objective: ``"regression"`` (default) or ``"policy"`` (section 4.2, needs a
      teacher; both models output logits).
    derivative_weights: weight per derivative order (eq. 1); length = order K.
      For ``"policy"`` this is the paper's alpha.
    value_weight: weight of the value term.
    derivative_loss: ``"squared_l2"``, ``"l1"`` or ``"l2_norm"``; default
      ``"squared_l2"`` (section 4.1), ``"l2_norm"`` for ``"policy"``.
    stochastic: eq. 2 (random projections) instead of full derivatives; default
      False, True for ``"policy"``.
    num_projections: projections per example for eq. 2.
    projection_space: ``"input"`` or ``"output"``; default ``"input"``,
      ``"output"`` for ``"policy"``.
    balance: a ``DerivativeBalance`` (``SobolevScaler.balance()``) weighting
      values against first derivatives as Huge & Savine (2020).
    seed: integer seed of the projections; the optimizer step is folded in.
  """

  def __init__(self, model: keras.Model, *,
               teacher=None,
               objective: str = "regression",
               derivative_weights: Union[float, Sequence[float]] = (1.0,),
               value_weight: float = 1.0,
               derivative_loss: Optional[str] = None,
               stochastic: Optional[bool] = None,
               num_projections: int = 1,
               projection_space: Optional[str] = None,
               balance: Optional[scaling.DerivativeBalance] = None,
               seed: int = 0,
               **kwargs):
    super().__init__(**kwargs)
    if keras.backend.backend() != "tensorflow":
      raise ValueError(
          "SobolevModel needs the TensorFlow Keras backend, got "
          f"{keras.backend.backend()!r}; set KERAS_BACKEND=tensorflow.")
    if objective not in OBJECTIVES:
      raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}.")
    if not isinstance(model, keras.layers.Layer):
      raise ValueError("model must be a Keras model or layer (its weights, losses and config "
                       f"are trained and saved), got {type(model).__name__}.")
    checks.check_loss_weights(derivative_weights, value_weight)
    policy = objective == "policy"
    if policy and teacher is None:
      raise ValueError("objective='policy' distils a teacher: pass teacher=<model>.")
    if teacher is model:
      raise ValueError("teacher must be another model than the one trained.")
    derivative_loss = derivative_loss or ("l2_norm" if policy else "squared_l2")
    if not isinstance(derivative_loss, str) or derivative_loss not in losses_lib.DERIVATIVE_LOSSES:
      raise ValueError(
          f"derivative_loss must be one of {sorted(losses_lib.DERIVATIVE_LOSSES)} "
          f"(a name, so the model can be saved), got {derivative_loss!r}.")
    if isinstance(balance, dict):
      balance = scaling.DerivativeBalance.from_config(balance)
    if balance is not None and not isinstance(balance, scaling.DerivativeBalance):
      raise ValueError(f"balance must be a DerivativeBalance, got {type(balance).__name__}.")
    if balance is not None and (stochastic or policy or (
        not isinstance(derivative_weights, (int, float)) and len(derivative_weights) != 1)):
      raise ValueError("balance weighs first derivatives (Huge & Savine): it needs one "
                       "derivative weight, full derivatives (stochastic=False) and the "
                       "regression objective.")
    if not (policy if stochastic is None else stochastic) and (
        num_projections != 1 or projection_space is not None):
      raise ValueError("num_projections and projection_space apply to the stochastic objective "
                       "(eq. 2): pass stochastic=True, or leave them out.")
    if isinstance(teacher, keras.layers.Layer):
      teacher.trainable = False  # Frozen: out of trainable_variables and the optimizer.
    self.model = model
    self.teacher = teacher
    self.objective = objective
    self.derivative_weights = ((float(derivative_weights),)
                               if isinstance(derivative_weights, (int, float))
                               else tuple(float(w) for w in derivative_weights))
    self.value_weight = float(value_weight)
    self.derivative_loss = derivative_loss
    self.stochastic = bool(policy if stochastic is None else stochastic)
    self.num_projections = int(num_projections)
    self.projection_space = projection_space or ("output" if policy else "input")
    self.balance = balance
    self.seed = int(seed)
    names = (["loss"] + (["value_loss"] if self.value_weight else [])
             + [f"derivative_{j + 1}_loss" for j in range(len(self.derivative_weights))])
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
    own = list(self._trackers.values())
    keras_loss = getattr(self, "_loss_tracker", None)
    return own + [m for m in super().metrics
                  if m is not keras_loss and all(m is not o for o in own)]

  def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None, **kwargs):
    """Keras' ``compile``; ``loss`` is the value term (default: squared error).

    The loss is kept here rather than given to Keras, whose compiled loss
    expects ``y`` to have the structure of the predictions, not ``(y, dy)``.
    """
    if loss_weights is not None:
      raise ValueError("SobolevModel weighs its terms itself: use value_weight= and "
                       "derivative_weights=, not compile(loss_weights=...).")
    if self.objective == "policy" and loss is not None:
      raise ValueError("objective='policy' uses KL(pi || pi*) as its value loss: "
                       "compile without loss=.")
    self._value_loss = (None if loss is None else _per_example_keras_loss(loss))
    self._value_loss_config = loss
    super().compile(optimizer=optimizer, loss=None, metrics=metrics, **kwargs)

  def get_compile_config(self):
    config = super().get_compile_config()
    if config and getattr(self, "_value_loss_config", None) is not None:
      config["loss"] = keras.saving.serialize_keras_object(self._value_loss_config)
    return config

  def compile_from_config(self, config):
    self.compile(**keras.saving.deserialize_keras_object(config))
    if self.optimizer is not None and self.built:
      self.optimizer.build(self.trainable_variables)

  def compute_metrics(self, x, y, y_pred, sample_weight=None):
    """Compiled metrics on the values: ``y`` may be the full targets ``(y, dy, ...)``."""
    if isinstance(y, (tuple, list, dict)):
      y = _target_values(y)
    if y is None:
      y = y_pred  # Keras' symbolic build of a teacher's metrics: shapes only.
    return super().compute_metrics(x, y, y_pred, sample_weight=_per_example_weight(sample_weight))

  def _value_loss_fn(self):
    if self.objective == "policy":
      return losses_lib.categorical_kl_from_log_probs
    return getattr(self, "_value_loss", None) or losses_lib.squared_l2

  def _wrap(self, net, training, record):
    """``net`` as the function sobolev_loss differentiates: float32 out, log-probs for policies."""

    keras_layer = isinstance(net, keras.layers.Layer)

    def fn(z):
      out = net(z, training=training) if keras_layer else net(z)
      if out.dtype != z.dtype:  # Mixed precision: float16 outputs, losses in float32.
        out = tf.cast(out, z.dtype)
      if self.objective == "policy":
        out = tf.nn.log_softmax(out)
      record.append(out)
      return out

    return fn

  def compute_sobolev_loss(self, x, targets, sample_weight=None, training: bool = False):
    """``(total, terms, predictions, value_targets)`` for one batch, unscaled.

    ``total`` is the Sobolev loss plus the student's ``losses``
    (regularisers); predictions and value targets are what the value loss compared.
    """
    seed = None
    if self.stochastic:
      step = tf.cast(self.optimizer.iterations if self.optimizer is not None else 0, tf.int64)
      seed = tf.random.experimental.stateless_fold_in(
          tf.constant([self.seed, 0], tf.int64), step)
      replica = tf.distribute.get_replica_context()
      if replica is not None and replica.num_replicas_in_sync > 1:
        # Each replica its own directions; the same seed would repeat them per replica.
        seed = tf.random.experimental.stateless_fold_in(
            seed, tf.cast(replica.replica_id_in_sync_group, tf.int64))
    predictions, teacher_values = [], []
    if self.teacher is not None:
      if targets is not None:
        raise ValueError("SobolevModel with a teacher computes its targets: fit(x) with "
                         "inputs only, got targets too.")
      target_args = dict(teacher=self._wrap(self.teacher, False, teacher_values))
    else:
      if targets is None:
        raise ValueError("SobolevModel.fit needs targets: fit(x, (y, dy)), or a teacher=.")
      targets = _split_targets(targets)
      target_args = dict(targets=targets)
    total, terms = losses_lib.sobolev_loss(
        self._wrap(self.model, training, predictions), x, **target_args,
        derivative_weights=self.derivative_weights,
        value_weight=self.value_weight,
        value_loss=self._value_loss_fn(),
        derivative_loss=self.derivative_loss,
        sample_weight=sample_weight,
        balance=self.balance,
        stochastic=self.stochastic,
        num_projections=self.num_projections,
        projection_space=self.projection_space,
        seed=seed)
    regularisers = self.model.losses
    if regularisers:
      total = total + tf.add_n([tf.cast(tf.reduce_sum(l), total.dtype) for l in regularisers])
    value_targets = (tf.stop_gradient(teacher_values[0]) if self.teacher is not None
                     else _target_values(targets))
    return total, terms, predictions[0], value_targets

  def _metrics_result(self, x, total, terms, predictions, value_targets, sample_weight):
    batch = tf.shape(x)[0]
    values = {"loss": total, "value_loss": terms.get("value")}
    for j in range(len(self.derivative_weights)):
      values[f"derivative_{j + 1}_loss"] = terms[f"derivative_{j + 1}"]
    for name, tracker in self._trackers.items():
      if values[name] is not None:
        tracker.update_state(values[name], sample_weight=batch)
    if value_targets is None:
      return self.get_metrics_result()
    return self.compute_metrics(x, value_targets, predictions, sample_weight=sample_weight)

  def train_step(self, data):
    x, targets, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    x, sample_weight = tf.convert_to_tensor(x), _per_example_weight(sample_weight)
    with tf.GradientTape() as tape:
      total, terms, predictions, value_targets = self.compute_sobolev_loss(
          x, targets, sample_weight, training=True)
      loss = self.optimizer.scale_loss(_scale_for_replicas(total))
    variables = self.trainable_variables  # The student's: the teacher is frozen.
    grads = tape.gradient(loss, variables)
    self.optimizer.apply_gradients(zip(grads, variables))
    return _step_logs(
        self._metrics_result(x, total, terms, predictions, value_targets, sample_weight))

  def test_step(self, data):
    x, targets, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    x, sample_weight = tf.convert_to_tensor(x), _per_example_weight(sample_weight)
    total, terms, predictions, value_targets = self.compute_sobolev_loss(
        x, targets, sample_weight, training=False)
    return _step_logs(
        self._metrics_result(x, total, terms, predictions, value_targets, sample_weight))

  def _refuse_weights_without_targets(self, y, sample_weight):
    if self.teacher is not None and y is None and sample_weight is not None:
      raise ValueError("sample_weight with a teacher and no targets: Keras drops sample weights "
                       "when y is None, so they would be ignored. Weight the examples by "
                       "repeating or subsampling them, or train with sobolev_loss(..., "
                       "teacher=..., sample_weight=w) in your own loop.")

  def fit(self, x=None, y=None, *args, sample_weight=None, **kwargs):
    self._refuse_weights_without_targets(y, sample_weight)
    self._warn_about_the_network(x)
    return super().fit(x, y, *args, sample_weight=sample_weight, **kwargs)

  def _warn_about_the_network(self, x) -> None:
    """Errors and warnings for networks the objective cannot train as meant, before the
    first step."""
    if isinstance(x, (np.ndarray, tf.Tensor)) and len(x) and any(self.derivative_weights):
      self._check_input_reaches_output(tf.cast(x[:8], tf.float32))
    if len(self.derivative_weights) >= 2:
      activations = {_activation_name(layer) for layer in _layers(self.model)} - {None}
      if activations and activations <= {"relu", "linear"}:
        warnings.warn(f"derivative_weights asks for order {len(self.derivative_weights)}, but "
                      f"the network's activations ({', '.join(sorted(activations))}) have "
                      "zero second derivatives almost everywhere: those terms cannot train it. "
                      "Use a smooth activation such as softplus.", stacklevel=3)
    if isinstance(x, (np.ndarray, tf.Tensor)) and len(x) >= 2 and derivs.mixed_examples(
        lambda z: self.model(z, training=True), tf.cast(x[:8], tf.float32)):
      warnings.warn("The network mixes the examples of a batch in training mode (BatchNorm, "
                    "or x - mean(x)): per-example input derivatives, taken from the batch sum, "
                    "are wrong for it. Use per-example normalisation (LayerNormalization) or "
                    "none.", stacklevel=3)

  def _check_input_reaches_output(self, x: tf.Tensor) -> None:
    """Refuses a network cut from its input, warns if its input derivatives are 0 and stay 0.

    Both train the value term alone while the derivative terms, the point of
    Sobolev training, cannot move: a constant output, ``stop_gradient``, a cast
    to integers, or ``0 * x``. A network that is merely initialised flat (a zero
    last layer) passes: training changes its derivatives.
    """
    with tf.GradientTape() as outer:
      with tf.GradientTape() as inner:
        inner.watch(x)
        out = tf.cast(self.model(x, training=False), tf.float32)
        # Random weights: outputs cannot cancel in the sum.
        out = tf.reduce_sum(out * tf.random.stateless_uniform(tf.shape(out), [self.seed, 1],
                                                              1.0, 2.0))
      grad = inner.gradient(out, x)
      if grad is None:
        raise ValueError(
            "SobolevModel's model does not depend on its input: its input derivatives are "
            "None, so the derivative terms cannot train it. Make the input reach the output "
            "through differentiable layers (no stop_gradient, rounding or integer casts).")
      probe = tf.reduce_sum(grad * tf.random.stateless_normal(tf.shape(grad), [self.seed, 2]))
    if bool(tf.reduce_any(grad != 0)):
      return
    moves = [g for g in outer.gradient(probe, self.model.trainable_variables)
             if g is not None and bool(tf.reduce_any(g != 0))]
    if not moves:
      warnings.warn("SobolevModel's model ignores its input: its input derivatives are 0 on the "
                    "first examples and no weight can change them (e.g. 0 * x, or a constant "
                    "output), so only the value term trains. Check that the input reaches the "
                    "output.", stacklevel=4)

  def evaluate(self, x=None, y=None, *args, sample_weight=None, **kwargs):
    self._refuse_weights_without_targets(y, sample_weight)
    return super().evaluate(x, y, *args, sample_weight=sample_weight, **kwargs)

  def _maybe_symbolic_build(self, iterator=None, data_batch=None):
    # Keras 3 (3.15) all-reduces a distributed batch only to read its shapes, and
    # that reduce fails under MultiWorkerMirroredStrategy (keras-team/keras#20585),
    # so no Keras model trains there. One replica's batch has the same shapes.
    if iterator is not None and getattr(self, "_distribute_strategy", None) is not None:
      for _, _, it in iterator:
        local = self._distribute_strategy.experimental_local_results
        data_batch = tf.nest.map_structure(
            lambda v: local(v)[0] if isinstance(v, tf.distribute.DistributedValues) else v,
            next(it))
        break
      iterator = None
    return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

  def get_config(self):
    return {
        "model": keras.saving.serialize_keras_object(self.model),
        "teacher": (None if self.teacher is None
                    else keras.saving.serialize_keras_object(self.teacher)),
        "objective": self.objective,
        "derivative_weights": list(self.derivative_weights),
        "value_weight": self.value_weight,
        "derivative_loss": self.derivative_loss,
        "stochastic": self.stochastic,
        "num_projections": self.num_projections,
        "projection_space": self.projection_space if self.stochastic else None,
        "balance": None if self.balance is None else self.balance.get_config(),
        "seed": self.seed,
        "name": self.name,
    }

  @classmethod
  def from_config(cls, config, custom_objects=None):
    config = dict(config)
    for key in ("model", "teacher"):
      if config.get(key) is not None:
        config[key] = keras.saving.deserialize_keras_object(
            config[key], custom_objects=custom_objects)
    config["balance"] = scaling.DerivativeBalance.from_config(config.get("balance"))
    model = config.pop("model")
    return cls(model, **config)


def load_model(path: str, **kwargs) -> keras.Model:
  """``keras.saving.load_model(path, **kwargs)`` (SobolevModel included) with errors naming
  ``path``: missing, truncated or corrupt (a ``.keras`` file is a zip archive, checked
  first), or not loadable. Keras says "File not found" for a truncated file."""
  if not os.path.exists(path):
    raise ValueError(f"No file {path}: save the model there first (model.save(path)).")
  if path.endswith(".keras"):
    try:
      with zipfile.ZipFile(path) as archive:
        bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as e:
      raise ValueError(f"{path} is truncated or corrupt (not a complete .keras archive: {e}); "
                       "save the model again.") from e
    if bad is not None:
      raise ValueError(f"{path} is truncated or corrupt (its member {bad} fails its checksum); "
                       "save the model again.")
  try:
    return keras.saving.load_model(path, **kwargs)
  except (OSError, ValueError, TypeError, KeyError) as e:
    raise ValueError(f"Cannot load the Keras model {path}: {e}") from e

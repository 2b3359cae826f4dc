"""``SobolevRegressor``: fit a surrogate on values and input derivatives in one call.

    import sobolev_tf as st
    model = st.SobolevRegressor().fit(x, y, dydx)          # x [m, n], y [m], dydx [m, n]
    price, delta = model.predict(x_new), model.predict_derivatives(x_new)
    model.export("surrogate")                              # SavedModel: values and derivatives

A scikit-learn estimator (constructor hyper-parameters, ``fit`` returns self,
``get_params``/``set_params``, ``score`` as R^2) for the users of differential
machine learning (Huge & Savine, 2020) and gradient-enhanced surrogates (JENN).
Its defaults are Huge & Savine's training setup, which their notebook and paper
show to work on Monte-Carlo payoffs and pathwise derivatives:

* inputs and values standardised, derivatives rescaled by the chain rule
  (``SobolevScaler``);
* the loss ``alpha MSE(y) + beta mean_j lambda_j^2 MSE(dy_j)`` with
  ``lambda_j = 1 / rms`` of the scaled partial j, ``alpha = 1 / (1 + lam n)``,
  ``beta = 1 - alpha`` (``DerivativeBalance``; eq. 1 of Czarnecki et al. 2017 with
  these weights);
* 4 hidden softplus layers of 20 units (a smooth activation: the loss differentiates
  the network's input gradient again);
* Adam for 100 epochs under their one-cycle schedule (``training.one_cycle``),
  batches of ``max(256, m // 16)`` examples.

Training runs as compiled loops in the graph: the data stay resident, each epoch's
batches are gathered by index from a permutation drawn from ``(seed, epoch)``, and
one call runs many epochs (``_Trainer``). Networks of the same architecture share
one traced loop across fits (seeds, grid cells, cross-validation folds), so
repeated fits pay tracing once. Data larger than memory can be given as a
``tf.data.Dataset`` of ``(x, y[, dydx])`` batches instead.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import math
import os
import sys
import threading
import time
from typing import Any, Dict, Optional, Sequence

import keras
import numpy as np
from sklearn import base as sklearn_base
from sklearn import exceptions as sklearn_exceptions
import tensorflow as tf

from sobolev_tf import derivatives
from sobolev_tf import files
from sobolev_tf import loggers
from sobolev_tf import losses
from sobolev_tf import scaling
from sobolev_tf import serving
from sobolev_tf import training

__all__ = ["SobolevRegressor", "mlp", "mlp_weights", "default_batch_size"]

ACTIVATIONS = ("softplus", "tanh", "relu", "sigmoid", "gelu", "swish", "elu", "linear")
# Activations whose second derivative is zero almost everywhere: the derivative term
# of the loss then has a zero gradient through the activations' slopes.
_PIECEWISE_LINEAR = ("relu", "linear")


def default_batch_size(num_examples: int) -> int:
  """Huge & Savine's batch: ``max(256, m // 16)`` examples (16 batches an epoch), at most ``m``."""
  return min(max(256, num_examples // 16), num_examples)


def mlp_weights(input_dim: int, output_dim: int, hidden_layers: Sequence[int] = (20, 20, 20, 20),
                seed: int = 0) -> list:
  """Initial ``[kernel, bias, ...]`` of ``mlp``: LeCun's truncated normal, zero biases.

  Kernels are normal with standard deviation ``sqrt(1 / fan_in) / 0.8796`` cut at
  two standard deviations (variance ``1 / fan_in`` after the cut): TensorFlow 1's
  ``variance_scaling_initializer``, which Huge & Savine's notebook uses, and
  Keras' ``LecunNormal``. Drawn with NumPy from ``seed``.
  """
  rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x50B0]))
  sizes = [int(input_dim)] + [int(h) for h in hidden_layers] + [int(output_dim)]
  weights = []
  for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
    std = math.sqrt(1.0 / fan_in) / 0.87962566103423978
    draws = rng.standard_normal((fan_in, fan_out))
    while np.any(np.abs(draws) > 2):  # Redraw outside two standard deviations.
      out = np.abs(draws) > 2
      draws[out] = rng.standard_normal(int(out.sum()))
    weights += [(draws * std).astype(np.float32), np.zeros(fan_out, np.float32)]
  return weights


def mlp(input_dim: int, output_dim: int, hidden_layers: Sequence[int] = (20, 20, 20, 20),
        activation: str = "softplus", seed: int = 0) -> keras.Sequential:
  """The default network: dense hidden layers, a linear output, ``mlp_weights(seed)``."""
  layers = [keras.Input((int(input_dim),))]
  for i, width in enumerate(list(hidden_layers) + [output_dim]):
    last = i == len(hidden_layers)
    layers.append(keras.layers.Dense(int(width), activation=None if last else activation,
                                     name="output" if last else f"hidden_{i}"))
  model = keras.Sequential(layers, name="sobolev_mlp")
  model.set_weights(mlp_weights(input_dim, output_dim, hidden_layers, seed))
  return model


class _Data(collections.namedtuple("_Data", "x y dy sample_weight dy_weight directions",
                                   defaults=(None,))):
  """Scaled training (or validation) arrays, float32; the optional ones may be None.

  With ``directions`` ``[m, n]``, ``dy`` holds directional derivatives ``[m, out]``
  along them (eq. 2's projected labels) instead of full Jacobians.
  """

  @property
  def size(self) -> int:
    return len(self.x)


class _Weights(collections.namedtuple("_Weights", "value derivative partial l2")):
  """The objective's weights: value and derivative terms, per-partial ``[out, in]``, L2."""


def _per_example(loss_terms: Dict[str, tf.Tensor], weights: _Weights, sample_weight) -> tf.Tensor:
  total = weights.value * losses.batch_mean(loss_terms["value"], sample_weight)
  if "derivative_1" in loss_terms:
    total += weights.derivative * losses.batch_mean(loss_terms["derivative_1"], sample_weight)
  return total


class _Trainer:
  """A network, its optimiser and the compiled loops that train and apply it.

  Cached per architecture (``_trainer_for``): a new fit of the same architecture
  resets the weights and optimiser state and reuses the traced functions, whose
  data are arguments, not captured constants.
  """

  def __init__(self, network: keras.Model, adam: Dict[str, Any],
               strategy: tf.distribute.Strategy):
    self.strategy = strategy
    self.lock = threading.Lock()
    with strategy.scope():
      self.network = network  # Built in this scope by _trainer_for.
      self.learning_rate = tf.Variable(0.0, trainable=False, name="learning_rate")
      self.optimizer = keras.optimizers.Adam(learning_rate=lambda: self.learning_rate, **adam)
      self.optimizer.build(network.trainable_variables)
      # Early stopping: the best weights so far, their epoch and validation loss.
      self.best = [tf.Variable(v, trainable=False) for v in network.trainable_variables]
      self.best_loss = tf.Variable(np.inf, trainable=False, dtype=tf.float32)
      self.best_epoch = tf.Variable(-1, trainable=False, dtype=tf.int64)
      self.epoch = tf.Variable(0, trainable=False, dtype=tf.int64)
    self._epochs_fns = {}
    self._dataset_fn = self._validation_fn = None
    self._predict_fn = tf.function(self._predict, reduce_retracing=True)

  def reset(self, weights: Sequence[np.ndarray]) -> None:
    """New initial weights; optimiser moments, step and early-stopping state zeroed."""
    variables = self.network.trainable_variables
    if len(weights) != len(variables):
      raise ValueError(f"Expected {len(variables)} initial weights, got {len(weights)}.")
    for v, w in zip(variables, weights):
      v.assign(w)
    for v in self.optimizer.variables:
      if v.path.endswith("learning_rate"):
        continue
      v.assign(tf.zeros(v.shape, v.dtype))
    self.best_loss.assign(np.inf)
    self.best_epoch.assign(-1)
    self.epoch.assign(0)

  def checkpoint(self) -> tf.train.Checkpoint:
    return tf.train.Checkpoint(network=self.network, optimizer=self.optimizer,
                               best=self.best, best_loss=self.best_loss,
                               best_epoch=self.best_epoch, epoch=self.epoch)

  # -- the objective --------------------------------------------------------------------

  def _loss(self, x, y, dy, sample_weight, dy_weight, directions, weights: _Weights,
            training: bool):
    """The Sobolev objective of one batch (``sobolev_terms``, Huge & Savine's weights)."""
    net = lambda z: self.network(z, training=training)
    if dy is None:
      terms = losses.sobolev_terms([net(x)], [y])
    elif directions is not None:
      # Eq. 2 with given directions: the network's JVP against the projected labels.
      values, projected = derivatives.projected_derivative(net, x, 1, directions)
      partial = tf.broadcast_to(weights.partial[None, :, 0], tf.shape(dy))
      terms = losses.sobolev_terms([values, projected], [y, dy], partial_weights=[partial])
    else:
      partial = tf.broadcast_to(weights.partial[None], tf.shape(dy))
      if dy_weight is not None:
        partial = partial * dy_weight  # 0 masks a missing partial.
      terms = losses.sobolev_terms(derivatives.derivative_tensors(net, x, 1), [y, dy],
                                   partial_weights=[partial])
    return _per_example(terms, weights, sample_weight)

  def _penalty(self, l2) -> tf.Tensor:
    kernels = [tf.reduce_sum(tf.square(v)) for v in self.network.trainable_variables
               if v.shape.rank >= 2]
    penalty = l2 * tf.add_n(kernels) if kernels else tf.constant(0.0)
    if self.network.losses:
      penalty += tf.add_n([tf.cast(tf.reduce_sum(l), tf.float32) for l in self.network.losses])
    return penalty

  # -- the compiled loops ---------------------------------------------------------------

  def run_epochs(self, data: _Data, validation: Optional[_Data], weights: _Weights,
                 rates: np.ndarray, seed: int, first: int, count: int, batch_size: int,
                 shuffle: bool, patience: int, jit_compile: bool) -> Dict[str, np.ndarray]:
    """Trains epochs ``first .. first + count - 1``; returns their losses (and validation).

    ``rates``: the learning rate of every epoch of the fit. Stops early when the
    validation loss has not improved for ``patience`` epochs (0: never).
    """
    # One function per structure of the data (which optional arrays are given), so
    # that a new structure is a new function, not a retrace.
    structure = lambda d: None if d is None else tuple(a is None for a in d)
    key = (shuffle, jit_compile, structure(data), structure(validation))
    if key not in self._epochs_fns:
      self._epochs_fns[key] = self._make_epochs_fn(shuffle, jit_compile)
    scalar = lambda v: tf.constant(v, tf.int64)
    out = self._epochs_fns[key](data, validation, weights, tf.constant(rates, tf.float32),
                                scalar(seed), scalar(first), scalar(count), scalar(batch_size),
                                scalar(patience))
    return {k: v.numpy() for k, v in out.items()}

  def _make_epochs_fn(self, shuffle: bool, jit_compile: bool):
    strategy = self.strategy
    replicas = strategy.num_replicas_in_sync

    def replica_step(data, weights, index):
      # This replica's share of the global batch; the loss is scaled so that the
      # summed gradients of all replicas are the global batch's.
      ctx = tf.distribute.get_replica_context()
      if replicas > 1:
        share = tf.shape(index)[0] // replicas
        start = tf.cast(ctx.replica_id_in_sync_group, tf.int32) * share
        index = index[start:start + share]
      batch = _Data(*[None if a is None else tf.gather(a, index) for a in data])
      with tf.GradientTape() as tape:
        loss = self._loss(*batch, weights, training=True) + self._penalty(weights.l2)
        scaled = loss / replicas
      variables = self.network.trainable_variables
      self.optimizer.apply_gradients(zip(tape.gradient(scaled, variables), variables))
      return ctx.all_reduce(tf.distribute.ReduceOp.MEAN, loss)

    def steps(data, weights, order):
      """One epoch's steps, batches in ``order`` ``[steps, batch]``; the mean loss."""

      def body(s, total):
        loss = strategy.run(replica_step, args=(data, weights, tf.gather(order, s)))
        return s + 1, total + strategy.experimental_local_results(loss)[0]

      n = tf.shape(order)[0]
      _, total = tf.while_loop(lambda s, _: s < n, body, (tf.constant(0), tf.constant(0.0)))
      return total / tf.cast(n, tf.float32)

    steps = tf.function(steps, jit_compile=True, autograph=False) if jit_compile else steps

    def epochs(data, validation, weights, rates, seed, first, count, batch_size, patience):
      m = tf.shape(data.x, out_type=tf.int64)[0]
      num_steps = (m + batch_size - 1) // batch_size

      def body(e, train_losses, val_losses):
        epoch = first + e
        self.learning_rate.assign(tf.gather(rates, epoch))
        if shuffle:
          perm = tf.random.experimental.stateless_shuffle(
              tf.range(m), seed=tf.stack([seed, epoch]))
        else:
          perm = tf.range(m)
        # The last batch is filled up from the epoch's start: every batch is full.
        perm = tf.concat([perm, perm[:num_steps * batch_size - m]], axis=0)
        loss = steps(data, weights, tf.reshape(perm, [num_steps, batch_size]))
        train_losses = train_losses.write(tf.cast(e, tf.int32), loss)
        self.epoch.assign(epoch + 1)
        if validation is not None:
          val = self._loss(*validation, weights, training=False)
          val_losses = val_losses.write(tf.cast(e, tf.int32), val)
          improved = val < self.best_loss
          for best, v in zip(self.best, self.network.trainable_variables):
            best.assign(tf.where(improved, v, best))
          self.best_epoch.assign(tf.where(improved, epoch, self.best_epoch))
          self.best_loss.assign(tf.where(improved, val, self.best_loss))
        return e + 1, train_losses, val_losses

      def more(e, *_):
        going = e < count
        if validation is not None:
          going = tf.logical_and(going, tf.logical_or(
              patience <= 0, first + e - self.best_epoch <= patience))
        return going

      arrays = (tf.TensorArray(tf.float32, size=0, dynamic_size=True),) * 2
      e, train_losses, val_losses = tf.while_loop(more, body, (tf.constant(0, tf.int64),) + arrays)
      out = {"epochs": e, "loss": train_losses.stack()}
      if validation is not None:
        out["val_loss"] = val_losses.stack()
      return out

    return tf.function(epochs, autograph=False, reduce_retracing=True)

  def run_dataset_epoch(self, dataset, scale, weights: _Weights, rate: float) -> float:
    """One epoch over a ``tf.data.Dataset`` of ``(x, y[, dydx])`` batches; its mean loss.

    ``scale(batch) -> _Data`` standardises a batch in the graph.
    """
    if self._dataset_fn is None:
      self._dataset_fn = self._make_dataset_fn()
    self.learning_rate.assign(rate)
    dataset = self.strategy.experimental_distribute_dataset(dataset)
    loss = self._dataset_fn(iter(dataset), scale, weights)
    self.epoch.assign_add(1)
    return float(loss)

  def _make_dataset_fn(self):
    strategy = self.strategy
    replicas = strategy.num_replicas_in_sync

    def replica_step(batch, scale, weights):
      data = scale(batch)
      with tf.GradientTape() as tape:
        loss = self._loss(*data, weights, training=True) + self._penalty(weights.l2)
        scaled = loss / replicas
      variables = self.network.trainable_variables
      self.optimizer.apply_gradients(zip(tape.gradient(scaled, variables), variables))
      return loss

    def epoch(iterator, scale, weights):
      total, count = tf.constant(0.0), tf.constant(0.0)
      for batch in iterator:
        loss = strategy.run(replica_step, args=(batch, scale, weights))
        total += strategy.reduce(tf.distribute.ReduceOp.MEAN, loss, axis=None)
        count += 1.0
      return total / tf.maximum(count, 1.0)

    return tf.function(epoch)

  def validation_loss(self, validation: _Data, weights: _Weights) -> float:
    if self._validation_fn is None:
      self._validation_fn = tf.function(
          lambda v, w: self._loss(*v, w, training=False), reduce_retracing=True)
    return float(self._validation_fn(validation, weights))

  def restore_best(self) -> None:
    for best, v in zip(self.best, self.network.trainable_variables):
      v.assign(best)

  # -- prediction -----------------------------------------------------------------------

  def _predict(self, x, with_derivatives: bool):
    net = lambda z: self.network(z, training=False)
    if with_derivatives:
      return derivatives.derivative_tensors(net, x, 1)
    return [net(x)]

  def predict(self, weights: Sequence[np.ndarray], x: np.ndarray, with_derivatives: bool,
              chunk: int = 65536):
    """Values (and Jacobians ``[B, out, in]``) of the network with ``weights`` at scaled ``x``."""
    with self.lock:
      for v, w in zip(self.network.trainable_variables, weights):
        v.assign(w)
      parts = [self._predict_fn(tf.constant(x[i:i + chunk]), with_derivatives)
               for i in range(0, max(len(x), 1), chunk)]
    return [np.concatenate([p[k].numpy() for p in parts]) for k in range(len(parts[0]))]


# Traced loops per architecture, most recently used last; a few are kept.
_TRAINERS: "collections.OrderedDict[tuple, _Trainer]" = collections.OrderedDict()
_TRAINERS_LOCK = threading.Lock()
_MAX_TRAINERS = 8


def _trainer_for(architecture: Any, make_network, adam: Dict[str, Any],
                 strategy: tf.distribute.Strategy) -> _Trainer:
  """The cached trainer of an architecture; ``make_network()`` builds one (in ``strategy``'s scope)."""
  key = (architecture, json.dumps(adam, sort_keys=True, default=str), id(strategy))
  with _TRAINERS_LOCK:
    trainer = _TRAINERS.pop(key, None)
    if trainer is None:
      with strategy.scope():
        trainer = _Trainer(make_network(), adam, strategy)
    _TRAINERS[key] = trainer
    while len(_TRAINERS) > _MAX_TRAINERS:
      _TRAINERS.popitem(last=False)
  return trainer


def _as_float_array(a, name: str) -> np.ndarray:
  if isinstance(a, (tf.Tensor, tf.Variable)):
    a = a.numpy()
  try:
    a = np.asarray(a)
  except (TypeError, ValueError) as e:
    raise ValueError(f"{name} must be an array of numbers: {e}") from e
  if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
    raise ValueError(f"{name} must be an array of numbers, got dtype {a.dtype}.")
  return a.astype(np.float64)


def _check_finite(a: np.ndarray, name: str, mask: Optional[np.ndarray] = None) -> None:
  bad = ~np.isfinite(a) if mask is None else ~np.isfinite(a) & (mask > 0)
  if bad.any():
    where = np.argwhere(bad)[0]
    hint = " (where dydx_weight is > 0)" if mask is not None else ""
    fix = " Mask missing partials with dydx_weight=0." if name == "dydx" else ""
    raise ValueError(f"{name} holds NaN or Inf{hint}, first at index {tuple(where.tolist())}."
                     f"{fix}")


class SobolevRegressor(sklearn_base.RegressorMixin, sklearn_base.BaseEstimator):
  """A neural surrogate trained on values and, when given, their input derivatives.

  Args:
    hidden_layers: widths of the hidden layers of the default network (Huge &
      Savine: 4 x 20).
    activation: activation of the default network's hidden layers. Smooth by
      default (softplus): the derivative term trains the network's input gradient,
      whose own gradient vanishes with a piecewise-linear activation such as ReLU.
    network: None (``mlp(n_in, n_out, hidden_layers, activation, seed)``), a Keras
      model ``[B, n_in] -> [B, n_out]`` whose current weights are the initial ones
      (it is copied, never trained in place), or a builder
      ``network(n_in, n_out, seed) -> keras.Model``.
    epochs: passes over the data (Huge & Savine: 100).
    batch_size: examples per step; None: ``max(256, m // 16)`` (at most ``m``).
    learning_rate: a float (constant), or a schedule ``rate(fraction of training)``
      such as ``training.one_cycle(0.1)`` (the default, Huge & Savine's) or
      ``training.CosineDecay(1e-3)``; read at the start of every epoch.
    adam: other arguments of ``keras.optimizers.Adam`` (e.g. ``{"beta_2": 0.99}``).
    standardize: standardise inputs and values and rescale derivatives by the chain
      rule (``SobolevScaler``); predictions are always in the data's units.
    balance: Huge & Savine's ``lam`` (``DerivativeBalance``): value term weight
      ``alpha = 1 / (1 + lam n)``, derivative term ``1 - alpha``, partial j weighted by
      ``1 / rms`` of its scaled labels. None: the paper's eq. 1, values and the sum
      of squared partial errors weighted 1 and ``derivative_weight``.
    derivative_weight: multiplies the derivative term.
    l2: weight of ``sum ||kernel||^2`` over the network's kernels (any variable of
      rank >= 2) added to the loss; the network's own ``losses`` are added too.
    early_stopping: patience in epochs: with validation data, stop when the
      validation loss (values and derivatives, as trained) has not improved for
      that many epochs and keep the best weights. None: train every epoch.
    shuffle: draw a new permutation of the examples every epoch.
    seed: initial weights, permutations and the validation split.
    verbose: "auto" (a progress bar with ETA on a terminal, quiet otherwise),
      True (also periodic lines in a log) or False.
    strategy: a ``tf.distribute.Strategy``; None: the current scope's. The global
      batch is split over its replicas (``batch_size`` must divide evenly).
    jit_compile: XLA for the training steps: True, False or "auto" (on for
      batches of at least 4,096 examples on one replica, where it is faster).
    checkpoint_dir: keep the training state there (``tf.train.CheckpointManager``,
      every ``checkpoint_minutes``): a killed fit of the same data and
      parameters resumes where it stopped, a finished one returns at once.
    checkpoint_minutes: see ``checkpoint_dir``.

  Fitted attributes: ``scaler_``, ``balance_`` (or None), ``coefs_`` (the network's
  weights), ``n_features_in_``, ``n_outputs_``, ``history_`` (``loss`` and
  ``val_loss`` per epoch, in scaled units), ``n_epochs_``, ``best_epoch_``,
  ``fit_seconds_``; ``network_`` builds a Keras model with the fitted weights.
  """

  def __init__(self, hidden_layers=(20, 20, 20, 20), activation="softplus", network=None,
               epochs=100, batch_size=None, learning_rate=training.one_cycle(0.1), adam=None,
               standardize=True, balance=1.0, derivative_weight=1.0, l2=0.0,
               early_stopping=None, shuffle=True, seed=0, verbose="auto", strategy=None,
               jit_compile="auto", checkpoint_dir=None, checkpoint_minutes=2.0):
    self.hidden_layers = hidden_layers
    self.activation = activation
    self.network = network
    self.epochs = epochs
    self.batch_size = batch_size
    self.learning_rate = learning_rate
    self.adam = adam
    self.standardize = standardize
    self.balance = balance
    self.derivative_weight = derivative_weight
    self.l2 = l2
    self.early_stopping = early_stopping
    self.shuffle = shuffle
    self.seed = seed
    self.verbose = verbose
    self.strategy = strategy
    self.jit_compile = jit_compile
    self.checkpoint_dir = checkpoint_dir
    self.checkpoint_minutes = checkpoint_minutes

  # -- checks ---------------------------------------------------------------------------

  def _check_params(self) -> None:
    """Refuses bad hyper-parameters before any work, naming the parameter."""
    def positive_int(name, value):
      if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")

    positive_int("epochs", self.epochs)
    if self.batch_size is not None:
      positive_int("batch_size", self.batch_size)
    if self.network is None:
      for width in self.hidden_layers:
        positive_int("hidden_layers (each width)", width)
      if self.activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got "
                         f"{self.activation!r}.")
    elif not (isinstance(self.network, keras.Model) or callable(self.network)):
      raise ValueError("network must be None, a Keras model or a builder network(n_in, n_out, "
                       f"seed) -> keras.Model, got {type(self.network).__name__}.")
    if not (callable(self.learning_rate) or _finite_non_negative(self.learning_rate)):
      raise ValueError("learning_rate must be a finite number >= 0 or a schedule rate(fraction "
                       f"of training), got {self.learning_rate!r}.")
    if self.balance is not None and not _finite_non_negative(self.balance):
      raise ValueError(f"balance must be None or Huge & Savine's lam >= 0, got {self.balance!r}.")
    for name in ("derivative_weight", "l2", "checkpoint_minutes"):
      if not _finite_non_negative(getattr(self, name)):
        raise ValueError(f"{name} must be a finite number >= 0, got {getattr(self, name)!r}.")
    if self.early_stopping is not None:
      positive_int("early_stopping (patience in epochs)", self.early_stopping)
    if self.jit_compile not in (True, False, "auto"):
      raise ValueError(f"jit_compile must be True, False or 'auto', got {self.jit_compile!r}.")
    if self.verbose not in (True, False, "auto", 0, 1):
      raise ValueError(f"verbose must be True, False or 'auto', got {self.verbose!r}.")
    if self.strategy is not None and not isinstance(self.strategy, tf.distribute.Strategy):
      raise ValueError(f"strategy must be a tf.distribute.Strategy, got "
                       f"{type(self.strategy).__name__}.")
    if self.adam is not None and (not isinstance(self.adam, dict) or "learning_rate" in self.adam):
      raise ValueError("adam must be a dict of keras.optimizers.Adam arguments other than "
                       f"learning_rate (use learning_rate=), got {self.adam!r}.")

  def _arrays(self, x, y, dydx, sample_weight, dydx_weight, what: str = "",
              directions=None) -> dict:
    """Checked float64 arrays ``x [m, n]``, ``y [m, out]``, ``dy [m, out, n]`` (or ``[m, out]``
    along ``directions [m, n]``), weights."""
    x = _as_float_array(x, what + "x")
    if x.ndim != 2:
      raise ValueError(f"{what}x must have shape [examples, features], got {x.shape}"
                       + ("; reshape a single feature with x.reshape(-1, 1)." if x.ndim == 1
                          else "."))
    m, n = x.shape
    if m < 1 or n < 1:
      raise ValueError(f"{what}x has shape {x.shape}: it needs at least one example and one "
                       "feature.")
    y = _as_float_array(y, what + "y")
    if y.ndim not in (1, 2) or len(y) != m:
      raise ValueError(f"{what}y must have shape [{m}] or [{m}, outputs] for x of shape "
                       f"{x.shape}, got {y.shape}.")
    y2 = y.reshape(m, -1)
    out = y2.shape[1]
    arrays = dict(x=x, y=y2, dy=None, sample_weight=None, dy_weight=None, directions=None)
    if directions is not None:
      if dydx is None:
        raise ValueError(f"{what}directions needs the directional derivatives: give dydx "
                         f"[{m}]" + (f" or [{m}, {out}]" if out > 1 else "") + ".")
      v = _as_float_array(directions, what + "directions")
      if v.shape != (m, n):
        raise ValueError(f"{what}directions must have shape [{m}, {n}] like x, got {v.shape}.")
      _check_finite(v, what + "directions")
      dy = _as_float_array(dydx, what + "dydx")
      if dy.size != m * out or dy.shape not in ((m,), (m, out)):
        raise ValueError(f"{what}dydx along directions must have shape [{m}]"
                         + (f" or [{m}, {out}]" if out > 1 else "") + f", got {dy.shape}.")
      arrays.update(directions=v, dy=dy.reshape(m, out))
      dydx = None  # Checked here.
      shape_of_dy = (m, out)
    else:
      shape_of_dy = (m, out, n)
    if dydx is not None:
      dy = _as_float_array(dydx, what + "dydx")
      if dy.shape in ((m, n),) and out == 1:
        dy = dy.reshape(m, 1, n)
      if dy.shape != (m, out, n):
        expected = f"[{m}, {n}]" + (f" or [{m}, 1, {n}]" if out == 1 else f" ([{m}, {out}, {n}])")
        raise ValueError(f"{what}dydx must have shape {expected} for x {x.shape} and y "
                         f"{y.shape}, got {dy.shape}.")
      arrays["dy"] = dy
    if dydx_weight is not None:
      if arrays["dy"] is None:
        raise ValueError(f"{what}dydx_weight masks derivative labels: give dydx too.")
      w = _as_float_array(dydx_weight, what + "dydx_weight")
      if w.size == arrays["dy"].size and w.shape in ((m, n), (m,), (m, out), (m, out, n)):
        w = w.reshape(shape_of_dy)
      else:
        raise ValueError(f"{what}dydx_weight must have the shape of dydx "
                         f"{tuple(np.shape(dydx))}, got {w.shape}.")
      _check_finite(w, what + "dydx_weight")
      if (w < 0).any():
        raise ValueError(f"{what}dydx_weight must be >= 0 (0 masks a missing partial).")
      arrays["dy_weight"] = w
    if sample_weight is not None:
      w = _as_float_array(sample_weight, what + "sample_weight")
      if w.shape != (m,):
        raise ValueError(f"{what}sample_weight must have shape [{m}], got {w.shape}.")
      _check_finite(w, what + "sample_weight")
      if (w < 0).any():
        raise ValueError(f"{what}sample_weight must be >= 0.")
      arrays["sample_weight"] = w
    _check_finite(x, what + "x")
    _check_finite(y2, what + "y")
    if arrays["dy"] is not None:
      _check_finite(arrays["dy"], what + "dydx", arrays["dy_weight"])
    return arrays

  @staticmethod
  def _split(arrays: dict, fraction, seed: int):
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
      raise ValueError(f"validation_split must be a fraction in (0, 1), got {fraction!r}.")
    m = len(arrays["x"])
    held = int(round(fraction * m))
    if held < 1 or held > m - 1:
      raise ValueError(f"validation_split={fraction} of {m} examples leaves {m - held} to train "
                       f"and {held} to validate; both need at least one.")
    order = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5A11])).permutation(m)
    pick = lambda idx: {k: None if v is None else v[idx] for k, v in arrays.items()}
    return pick(np.sort(order[held:])), pick(np.sort(order[:held]))

  def _fit_scaler(self, train: dict) -> scaling.SobolevScaler:
    if self.standardize:
      std = np.std(train["x"], axis=0)
      constant = np.flatnonzero(std == 0)
      if len(constant):
        raise ValueError(f"x has constant columns {constant.tolist()} (standard deviation 0): "
                         "drop them, or pass standardize=False.")
      scaler = scaling.SobolevScaler()
    else:
      scaler = scaling.SobolevScaler(x_offset=0.0, x_scale=1.0, y_offset=0.0, y_scale=1.0)
    if train["directions"] is not None:  # Projected labels: their statistics are in fit.
      return scaler.fit(train["x"], train["y"])
    return scaler.fit(train["x"], train["y"], train["dy"], dy_weight=train["dy_weight"])

  def _scaled(self, arrays: dict) -> _Data:
    sc = self.scaler_
    f32 = lambda a: None if a is None else tf.constant(a, tf.float32)
    dy, directions = arrays["dy"], arrays.get("directions")
    if dy is not None:
      if arrays["dy_weight"] is not None:
        dy = np.where(arrays["dy_weight"] > 0, dy, 0.0)
      if directions is None:
        dy = sc.transform(dy=dy)
      else:
        # x = c + s u, y = m + t v: the label g = <dy/dx, d> is <dv/du, d / s> t, so the
        # network in scaled units is differentiated along d / s against g / t.
        dy = dy / sc.y_scale
        directions = directions / sc.x_scale
    return _Data(f32(sc.transform(x=arrays["x"])), f32(sc.transform(y=arrays["y"])), f32(dy),
                 f32(arrays["sample_weight"]), f32(arrays["dy_weight"]), f32(directions))

  # -- the network ----------------------------------------------------------------------

  def _network_spec(self, n_in: int, n_out: int) -> tuple:
    """``(spec, initial weights)``: ``spec`` rebuilds the architecture (``_build``) and keys
    its cached trainer; the weights are this fit's starting point."""
    if self.network is None:
      hidden = tuple(int(h) for h in self.hidden_layers)
      return (("mlp", n_in, n_out, hidden, self.activation),
              mlp_weights(n_in, n_out, hidden, self.seed))
    template = self.network if isinstance(self.network, keras.Model) else self.network(
        n_in, n_out, self.seed)
    if not isinstance(template, keras.Model):
      raise ValueError(f"network(n_in, n_out, seed) must return a Keras model, got "
                       f"{type(template).__name__}.")
    try:
      config = keras.saving.serialize_keras_object(template)
      json.dumps(config)
    except (NotImplementedError, TypeError, ValueError) as e:
      raise ValueError("network must be a Keras model that can be rebuilt from its config "
                       "(Sequential, functional, or a subclass with get_config/from_config): "
                       f"{e}") from e
    probe = template(np.zeros((2, n_in), np.float32))
    if tuple(probe.shape) != (2, n_out):
      raise ValueError(f"network maps [B, {n_in}] inputs to {tuple(probe.shape[1:])} outputs per "
                       f"example; the data need [B, {n_out}].")
    return ("keras", json.dumps(config, sort_keys=True)), template.get_weights()

  @staticmethod
  def _architecture(spec: tuple) -> tuple:
    """``spec`` without layer and model names (Keras numbers them per instance): two
    copies of one architecture share a trainer."""
    if spec[0] != "keras":
      return spec

    def strip(value):
      if isinstance(value, dict):
        return {k: strip(v) for k, v in value.items() if k != "name"}
      if isinstance(value, list):
        return [strip(v) for v in value]
      return value

    return ("keras", json.dumps(strip(json.loads(spec[1])), sort_keys=True))

  @staticmethod
  def _build(spec: tuple) -> keras.Model:
    if spec[0] == "mlp":
      _, n_in, n_out, hidden, activation = spec
      return mlp(n_in, n_out, hidden, activation)
    return keras.saving.deserialize_keras_object(json.loads(spec[1]))

  def _trainer(self, spec: tuple, strategy) -> _Trainer:
    return _trainer_for(self._architecture(spec), lambda: self._build(spec),
                        dict(self.adam or {}), strategy)

  @property
  def network_(self) -> keras.Model:
    """A Keras model with the fitted weights (built anew at each access)."""
    self._check_fitted()
    network = self._build(self.network_spec_)
    network.set_weights(self.coefs_)
    return network

  def _check_fitted(self) -> None:
    if not hasattr(self, "coefs_"):
      raise sklearn_exceptions.NotFittedError(
          "This SobolevRegressor is not fitted yet: call fit(x, y, dydx) first.")

  def _resolve_jit(self, strategy, batch_size: int) -> bool:
    replicas = strategy.num_replicas_in_sync
    if self.jit_compile is True and replicas > 1:
      raise ValueError(f"jit_compile=True runs on one replica; the strategy has {replicas}: "
                       "use jit_compile='auto' or False.")
    if self.jit_compile == "auto":
      return replicas == 1 and batch_size >= 4096
    return bool(self.jit_compile)

  def _schedule_rates(self) -> np.ndarray:
    fractions = np.arange(self.epochs) / self.epochs
    if callable(self.learning_rate):
      rates = np.asarray([float(self.learning_rate(t)) for t in fractions], np.float64)
    else:
      rates = np.full(self.epochs, float(self.learning_rate))
    if not np.all(np.isfinite(rates) & (rates >= 0)):
      raise ValueError(f"learning_rate gave rates that are not finite and >= 0: {rates}.")
    return rates.astype(np.float32)

  # -- fit ------------------------------------------------------------------------------

  def fit(self, x, y=None, dydx=None, *, sample_weight=None, dydx_weight=None,
          directions=None, validation_data=None, validation_split=None) -> "SobolevRegressor":
    """Trains a new network on ``x [m, n]``, ``y [m]`` or ``[m, out]`` and, if given, ``dydx``.

    Args:
      x, y: inputs and values. ``x`` may instead be a ``tf.data.Dataset`` of
        batches ``(x, y)`` or ``(x, y, dydx)`` (data larger than memory; ``y`` and
        ``dydx`` are then None).
      dydx: derivative labels ``[m, n]`` (one output) or ``[m, out, n]``; None trains
        on values alone, on the same path (the standard baseline).
      sample_weight: per-example weights ``[m]`` on every term.
      dydx_weight: per-partial weights of ``dydx``'s shape; 0 masks a missing
        partial (its label may then be NaN).
      directions: ``[m, n]``: ``dydx`` then holds directional derivatives ``[m]`` (or
        ``[m, out]``) along these directions, e.g. from one forward-mode AAD sweep
        per path: eq. 2 of Czarnecki et al. with the projections given. Huge &
        Savine's weights then count one derivative label per example.
      validation_data: ``(x, y)`` or ``(x, y, dydx)``: its loss is recorded every
        epoch and watched by ``early_stopping``.
      validation_split: instead, the fraction of the examples held out (a seeded
        random draw).

    Returns:
      self.
    """
    self._check_params()
    if isinstance(x, tf.data.Dataset):
      return self._fit_dataset(x, y, dydx, sample_weight, dydx_weight, validation_data,
                               validation_split)
    if y is None:
      raise ValueError("fit needs values y: fit(x, y, dydx).")
    arrays = self._arrays(x, y, dydx, sample_weight, dydx_weight, directions=directions)
    if directions is not None and validation_data is not None and len(validation_data) > 2:
      raise ValueError("With directions, validation_data is (x, y); or use validation_split.")
    if validation_data is not None and validation_split is not None:
      raise ValueError("Give validation_data or validation_split, not both.")
    validation = None
    if validation_split is not None:
      arrays, validation = self._split(arrays, validation_split, self.seed)
    elif validation_data is not None:
      validation = self._validation_arrays(validation_data, arrays)
    if self.early_stopping is not None and validation is None:
      raise ValueError("early_stopping watches a validation loss: give validation_data or "
                       "validation_split.")
    m = len(arrays["x"])
    batch_size = default_batch_size(m) if self.batch_size is None else int(self.batch_size)
    if batch_size > m:
      raise ValueError(f"batch_size={batch_size} is larger than the {m} training examples.")
    strategy = self.strategy or tf.distribute.get_strategy()
    if batch_size % strategy.num_replicas_in_sync:
      raise ValueError(f"batch_size={batch_size} must be a multiple of the strategy's "
                       f"{strategy.num_replicas_in_sync} replicas.")
    rates = self._schedule_rates()
    self.scaler_ = self._fit_scaler(arrays)
    n_in, n_out = arrays["x"].shape[1], arrays["y"].shape[1]
    has_dy = arrays["dy"] is not None
    self.balance_ = None
    if has_dy and self.balance is not None:
      if directions is None:
        self.balance_ = self.scaler_.balance(self.balance)
      else:  # One derivative label per example and output.
        labels = arrays["dy"] / self.scaler_.y_scale
        mask = np.ones_like(labels) if arrays["dy_weight"] is None else arrays["dy_weight"] > 0
        rms = np.sqrt(np.sum(np.where(mask, labels, 0.0)**2, axis=0)
                      / np.maximum(np.sum(mask, axis=0), 1))
        self.balance_ = scaling.DerivativeBalance.from_rms(rms[:, None], num_inputs=1,
                                                           lam=self.balance)
    self.n_features_in_, self.n_outputs_ = n_in, n_out
    self.y_is_1d_ = np.ndim(y) == 1
    spec, initial = self._network_spec(n_in, n_out)
    self.network_spec_ = spec
    data = self._scaled(arrays)
    val = None if validation is None else self._scaled(validation)
    self._train(self._trainer(spec, strategy), initial, data, val, self._weights(n_out, n_in),
                rates, batch_size, self._resolve_jit(strategy, batch_size),
                fingerprint=_fingerprint(data, val))
    return self

  def _fit_dataset(self, dataset: tf.data.Dataset, y, dydx, sample_weight, dydx_weight,
                   validation_data, validation_split) -> "SobolevRegressor":
    """``fit`` on a dataset of ``(x, y[, dydx])`` batches, read in its own order each epoch.

    One pass first computes the statistics (means, standard deviations, the RMS of
    each partial); every epoch then streams the batches through a compiled loop.
    """
    given = dict(y=y, dydx=dydx, sample_weight=sample_weight, dydx_weight=dydx_weight,
                 validation_split=validation_split, batch_size=self.batch_size)
    extra = [k for k, v in given.items() if v is not None]
    if extra:
      raise ValueError(f"fit(dataset) takes its labels and batches from the dataset; "
                       f"{', '.join(extra)} must be None (validation_data may be given).")
    spec = dataset.element_spec
    if not isinstance(spec, tuple) or len(spec) not in (2, 3) or spec[0].shape.rank != 2:
      raise ValueError(f"The dataset must yield batches (x [B, n], y [B] or [B, out][, dydx]); "
                       f"its elements are {spec}.")
    stats = _dataset_statistics(dataset)
    self.n_features_in_, self.n_outputs_ = stats["n_in"], stats["n_out"]
    self.y_is_1d_ = spec[1].shape.rank == 1
    self.scaler_ = self._scaler_from_statistics(stats)
    has_dy = len(spec) == 3
    self.balance_ = (self.scaler_.balance(self.balance) if has_dy and self.balance is not None
                     else None)
    validation = None
    if validation_data is not None:
      template = dict(x=np.zeros((1, stats["n_in"])), y=np.zeros((1, stats["n_out"])))
      validation = self._scaled(self._validation_arrays(validation_data, template))
    if self.early_stopping is not None and validation is None:
      raise ValueError("early_stopping watches a validation loss: give validation_data.")
    strategy = self.strategy or tf.distribute.get_strategy()
    spec_key, initial = self._network_spec(stats["n_in"], stats["n_out"])
    self.network_spec_ = spec_key
    trainer = self._trainer(spec_key, strategy)
    weights = self._weights(stats["n_out"], stats["n_in"])
    rates = self._schedule_rates()
    sc = self.scaler_
    consts = [tf.constant(np.asarray(a, np.float32)) for a in
              (sc.x_offset, sc.x_scale, sc.y_offset, sc.y_scale,
               sc._derivative_factor(1))]  # pylint: disable=protected-access

    def scale(batch):
      x_offset, x_scale, y_offset, y_scale, dy_factor = consts
      x = (tf.cast(batch[0], tf.float32) - x_offset) / x_scale
      y = (tf.reshape(tf.cast(batch[1], tf.float32), [tf.shape(x)[0], -1]) - y_offset) / y_scale
      dy = None
      if has_dy:
        dy = tf.reshape(tf.cast(batch[2], tf.float32), tf.concat([tf.shape(y), [-1]], 0))
        dy = dy * dy_factor
      return _Data(x, y, dy, None, None)

    start_time = time.perf_counter()
    history = {"loss": [], "val_loss": []}
    best, best_loss, best_epoch, epoch = None, np.inf, None, 0
    with trainer.lock:
      trainer.reset(initial)
      progress = loggers.Progress(self.epochs, "SobolevRegressor", unit="epoch",
                                  enabled=self._show_progress())
      for epoch in range(1, self.epochs + 1):
        history["loss"].append(trainer.run_dataset_epoch(dataset, scale, weights,
                                                         float(rates[epoch - 1])))
        if validation is not None:
          history["val_loss"].append(trainer.validation_loss(validation, weights))
          if history["val_loss"][-1] < best_loss:
            best_loss, best_epoch = history["val_loss"][-1], epoch
            best = trainer.network.get_weights()
        progress.update(epoch, f"loss {history['loss'][-1]:.4g}")
        if self.early_stopping is not None and epoch - best_epoch >= self.early_stopping:
          break
      progress.close()
      if self.early_stopping is not None:
        trainer.network.set_weights(best)
      self.coefs_ = trainer.network.get_weights()
    self.best_epoch_ = best_epoch if self.early_stopping is not None else None
    self.n_epochs_ = epoch
    self.history_ = {k: v for k, v in history.items() if v}
    self.fit_seconds_ = time.perf_counter() - start_time
    return self

  def _scaler_from_statistics(self, stats: dict) -> scaling.SobolevScaler:
    if not self.standardize:
      scaler = scaling.SobolevScaler(x_offset=0.0, x_scale=1.0, y_offset=0.0, y_scale=1.0)
      x_offset, x_scale = np.zeros(stats["n_in"]), np.ones(stats["n_in"])
      y_offset, y_scale = np.zeros(stats["n_out"]), np.ones(stats["n_out"])
    else:
      constant = np.flatnonzero(stats["x_std"] == 0)
      if len(constant):
        raise ValueError(f"x has constant columns {constant.tolist()} (standard deviation 0): "
                         "drop them, or pass standardize=False.")
      scaler = scaling.SobolevScaler()
      x_offset, x_scale = stats["x_mean"], stats["x_std"]
      y_offset, y_scale = stats["y_mean"], np.where(stats["y_std"] > 0, stats["y_std"], 1.0)
    scaler.x_offset, scaler.x_scale, scaler.y_offset, scaler.y_scale = (
        x_offset, x_scale, y_offset, y_scale)
    if "dy_mean_square" in stats:
      factor = scaler._derivative_factor(1)  # pylint: disable=protected-access
      rms = np.sqrt(stats["dy_mean_square"]) * np.abs(factor)
      scaler.scaled_gradient_rms = rms
    return scaler

  def _show_progress(self) -> bool:
    return self.verbose is True or self.verbose == 1 or (
        self.verbose == "auto" and getattr(sys.stderr, "isatty", lambda: False)())

  def _validation_arrays(self, validation_data, train: dict) -> dict:
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
      raise ValueError("validation_data must be (x, y) or (x, y, dydx).")
    x, y, dydx = (tuple(validation_data) + (None,))[:3]
    arrays = self._arrays(x, y, dydx, None, None, what="validation_data ")
    if train.get("directions") is not None and arrays["dy"] is not None:
      raise ValueError("With directions, validation_data is (x, y); or use validation_split.")
    n = train["x"].shape[1]
    if arrays["x"].shape[1] != n or arrays["y"].shape[1] != train["y"].shape[1]:
      raise ValueError(f"validation_data has x {arrays['x'].shape} and y {arrays['y'].shape}; "
                       f"the training data have {n} features and {train['y'].shape[1]} outputs.")
    return arrays

  def _weights(self, n_out: int, n_in: int) -> _Weights:
    b = self.balance_
    partial = (np.ones((n_out, n_in)) if b is None else
               np.broadcast_to(b.partial_weights, (n_out, n_in))).astype(np.float32)
    value = 1.0 if b is None else b.value_weight
    derivative = float(self.derivative_weight) * (1.0 if b is None else b.derivative_weight)
    return _Weights(*(tf.constant(v, tf.float32) for v in (value, derivative, partial,
                                                           float(self.l2))))

  def _train(self, trainer: _Trainer, initial, data: _Data, val: Optional[_Data],
             weights: _Weights, rates: np.ndarray, batch_size: int, jit: bool,
             fingerprint: str) -> None:
    """The epochs loop: chunks of epochs per compiled call, progress, checkpoints."""
    start_time = time.perf_counter()
    show = self._show_progress()
    history = {"loss": [], "val_loss": []}
    with trainer.lock:
      trainer.reset(initial)
      manager, checkpointer = None, None
      if self.checkpoint_dir:
        manager, checkpointer, history = self._checkpointing(trainer, fingerprint, history)
      epoch = int(trainer.epoch.numpy())
      progress = loggers.Progress(self.epochs, "SobolevRegressor", unit="epoch", initial=epoch,
                                  enabled=show)
      chunk, first_call = 1, True
      while epoch < self.epochs:
        count = min(chunk, self.epochs - epoch)
        t0 = time.perf_counter()
        out = trainer.run_epochs(data, val, weights, rates, self.seed, epoch, count, batch_size,
                                 self.shuffle, self.early_stopping or 0, jit)
        ran = int(out["epochs"])
        history["loss"] += out["loss"].tolist()
        history["val_loss"] += out.get("val_loss", np.zeros(0)).tolist()
        epoch += ran
        seconds = time.perf_counter() - t0
        # About half a second a call (after the first, which traces): progress stays
        # live and Python is paid once per many epochs.
        if not first_call and ran:
          chunk = int(np.clip(0.5 * ran / max(seconds, 1e-6), 1, self.epochs))
        first_call = False
        postfix = f"loss {history['loss'][-1]:.4g}" if history["loss"] else ""
        if history["val_loss"]:
          postfix += f", val_loss {history['val_loss'][-1]:.4g}"
        progress.update(epoch, postfix)
        if checkpointer:
          checkpointer.maybe_save(epoch, force=epoch >= self.epochs or ran < count)
        if ran < count:  # Early stopping.
          break
      progress.close()
      self.best_epoch_ = None
      if self.early_stopping is not None:
        self.best_epoch_ = int(trainer.best_epoch.numpy()) + 1
        trainer.restore_best()
      self.coefs_ = trainer.network.get_weights()
    self.n_epochs_ = epoch
    self.history_ = {k: v for k, v in history.items() if v}
    self.fit_seconds_ = time.perf_counter() - start_time

  def _checkpointing(self, trainer: _Trainer, fingerprint: str, history: dict):
    manager = tf.train.CheckpointManager(trainer.checkpoint(), self.checkpoint_dir, max_to_keep=1)
    hint = f"Delete {self.checkpoint_dir} to start again, or use another checkpoint_dir."
    record = dict(_json_params(self.get_params()), data=fingerprint)
    record.pop("checkpoint_minutes", None)
    record.pop("verbose", None)
    history_path = os.path.join(self.checkpoint_dir, "history.json")
    resuming = manager.latest_checkpoint is not None
    training.check_same_config(os.path.join(self.checkpoint_dir, "fit_config.json"), record,
                               resuming=resuming, hint=hint)
    if resuming:
      training.restore_checkpoint(trainer.checkpoint(), manager.latest_checkpoint, hint)
      done = int(trainer.epoch.numpy())
      try:
        with open(history_path) as f:
          saved = json.load(f)
      except (OSError, ValueError) as e:
        raise ValueError(f"Unreadable training history {history_path}: {e}. {hint}") from e
      if len(saved.get("loss", [])) < done:
        raise ValueError(f"{history_path} holds {len(saved.get('loss', []))} epochs but the "
                         f"checkpoint is at epoch {done}. {hint}")
      history = {k: list(saved.get(k, []))[:done] for k in history}

    def save(epoch):
      files.write_text_atomic(history_path, json.dumps(history))
      manager.save(checkpoint_number=epoch)

    return manager, training.PeriodicCheckpointer(save, self.checkpoint_minutes), history

  # -- predictions ----------------------------------------------------------------------

  def _predict_scaled(self, x, with_derivatives: bool):
    self._check_fitted()
    x = _as_float_array(x, "x")
    if x.ndim != 2 or x.shape[1] != self.n_features_in_:
      raise ValueError(f"x has shape {x.shape}; this model was fitted on "
                       f"[examples, {self.n_features_in_}] inputs.")
    _check_finite(x, "x")
    strategy = tf.distribute.get_strategy()  # Prediction runs on one replica.
    trainer = self._trainer(self.network_spec_, strategy)
    return trainer.predict(self.coefs_, self.scaler_.transform(x=x).astype(np.float32),
                           with_derivatives)

  def predict(self, x) -> np.ndarray:
    """Values at ``x [B, n]`` in the data's units: ``[B]`` (if ``y`` was) or ``[B, out]``."""
    (values,) = self._predict_scaled(x, with_derivatives=False)
    values = self.scaler_.inverse_transform(y=values.astype(np.float64))
    return values[:, 0] if self.y_is_1d_ else values

  def predict_derivatives(self, x) -> np.ndarray:
    """Input derivatives at ``x``: ``[B, n]`` (one output given as ``[m]``) or ``[B, out, n]``."""
    return self.predict_with_derivatives(x)[1]

  def predict_with_derivatives(self, x):
    """``(predict(x), predict_derivatives(x))`` from one pass."""
    values, jacobians = self._predict_scaled(x, with_derivatives=True)
    values, jacobians = self.scaler_.inverse_transform(y=values.astype(np.float64),
                                                       dy=jacobians.astype(np.float64))
    if self.y_is_1d_:
      return values[:, 0], jacobians[:, 0]
    return values, jacobians

  # -- export, save, load ---------------------------------------------------------------

  def surrogate(self) -> tf.Module:
    """The fitted network in the data's units, ``[B, n] -> [B]`` (or ``[B, out]``): a
    ``tf.Module`` to differentiate or export."""
    return _Surrogate(self.scaler_.in_original_units(self.network_), self.y_is_1d_)

  def export(self, path: str) -> str:
    """A SavedModel serving values and derivatives (``export_with_derivatives``), loadable by
    plain TensorFlow: ``tf.saved_model.load(path).signatures["serving_default"](x=x)``."""
    self._check_fitted()
    return serving.export_with_derivatives(
        self.surrogate(), path, tf.TensorSpec([None, self.n_features_in_], tf.float32))

  def save(self, path: str) -> str:
    """Writes the fitted estimator to the directory ``path`` (``SobolevRegressor.load``).

    It holds ``estimator.json`` (parameters, scaler, weights of the loss, history)
    and ``network.keras``. Parameters that are not plain values (a ``network``
    builder or model, a ``strategy``, a schedule other than the library's) are
    not saved: the loaded estimator has their defaults, and its fitted network.
    """
    self._check_fitted()
    params, unsaved = _json_params(self.get_params(), with_unsaved=True)
    state = dict(
        format=_SAVE_FORMAT, params=params, unsaved_params=unsaved,
        scaler={k: np.asarray(getattr(self.scaler_, k)).tolist()
                for k in ("x_offset", "x_scale", "y_offset", "y_scale")},
        balance=None if self.balance_ is None else self.balance_.get_config(),
        n_features_in=self.n_features_in_, n_outputs=self.n_outputs_, y_is_1d=self.y_is_1d_,
        network_spec=list(self.network_spec_), history=self.history_,
        n_epochs=self.n_epochs_, best_epoch=self.best_epoch_)
    network = self.network_

    def write(directory):
      os.makedirs(directory)
      keras.saving.save_model(network, os.path.join(directory, "network.keras"))
      files.write_text_atomic(os.path.join(directory, "estimator.json"),
                              json.dumps(state, indent=1))

    return files.write_directory_atomic(path, write, _SAVED_ENTRIES, "a saved SobolevRegressor")

  @classmethod
  def load(cls, path: str) -> "SobolevRegressor":
    """The estimator ``save`` wrote to ``path``."""
    state_path = os.path.join(path, "estimator.json")
    try:
      with open(state_path) as f:
        state = json.load(f)
    except (OSError, ValueError) as e:
      raise ValueError(f"{path} is not a saved SobolevRegressor ({state_path}: {e}).") from e
    if state.get("format") != _SAVE_FORMAT:
      raise ValueError(f"{state_path} has format {state.get('format')!r}, not {_SAVE_FORMAT!r}.")
    estimator = cls(**_params_from_json(state["params"]))
    network_path = os.path.join(path, "network.keras")
    try:
      network = keras.saving.load_model(network_path, compile=False)
    except (OSError, ValueError) as e:
      raise ValueError(f"Unreadable network {network_path}: {e}") from e
    scaler = scaling.SobolevScaler()
    for k, v in state["scaler"].items():
      setattr(scaler, k, np.asarray(v, np.float64))
    estimator.scaler_ = scaler
    estimator.balance_ = scaling.DerivativeBalance.from_config(state["balance"])
    estimator.n_features_in_ = state["n_features_in"]
    estimator.n_outputs_ = state["n_outputs"]
    estimator.y_is_1d_ = state["y_is_1d"]
    spec = state["network_spec"]
    estimator.network_spec_ = ((spec[0], spec[1], spec[2], tuple(spec[3]), spec[4])
                               if spec[0] == "mlp" else tuple(spec))
    estimator.history_ = state["history"]
    estimator.n_epochs_ = state["n_epochs"]
    estimator.best_epoch_ = state["best_epoch"]
    estimator.coefs_ = network.get_weights()
    return estimator


_SAVE_FORMAT = "sobolev_tf.SobolevRegressor/1"
_SAVED_ENTRIES = ("estimator.json", "network.keras")


class _Surrogate(tf.Module):
  """A network in original units; one output given as ``[m]`` is served as ``[B]``."""

  def __init__(self, model: tf.Module, squeeze: bool):
    super().__init__(name="sobolev_surrogate")
    self.model = model
    self.squeeze = squeeze

  def __call__(self, x):
    y = self.model(x)
    return y[:, 0] if self.squeeze else y


def _dataset_statistics(dataset: tf.data.Dataset) -> dict:
  """Count, means and standard deviations of x and y, and the mean square of each partial,
  in one pass over the batches (float64 sums)."""
  count, sums = 0, {}
  for batch in dataset:
    x = np.asarray(batch[0], np.float64)
    y = np.asarray(batch[1], np.float64).reshape(len(x), -1)
    parts = dict(x=x, y=y)
    if len(batch) == 3:
      parts["dy"] = np.asarray(batch[2], np.float64).reshape(len(x), y.shape[1], -1)
    for name, a in parts.items():
      if not np.all(np.isfinite(a)):
        raise ValueError(f"The dataset's {'dydx' if name == 'dy' else name} holds NaN or Inf "
                         f"(batch after {count} examples).")
      s1, s2 = sums.get(name, (0.0, 0.0))
      sums[name] = (s1 + a.sum(axis=0), s2 + np.square(a).sum(axis=0))
    count += len(x)
  if count < 2:
    raise ValueError(f"The dataset holds {count} example(s); fitting needs at least 2.")
  stats = dict(count=count)
  for name in ("x", "y"):
    mean = sums[name][0] / count
    stats[f"{name}_mean"] = mean
    stats[f"{name}_std"] = np.sqrt(np.maximum(sums[name][1] / count - mean**2, 0.0))
  stats["n_in"], stats["n_out"] = len(stats["x_mean"]), len(stats["y_mean"])
  if "dy" in sums:
    stats["dy_mean_square"] = sums["dy"][1] / count
  return stats


def _finite_non_negative(value) -> bool:
  return (not isinstance(value, bool) and isinstance(value, (int, float, np.number))
          and math.isfinite(value) and value >= 0)


def _fingerprint(data: _Data, validation: Optional[_Data]) -> str:
  """A digest of the scaled training (and validation) arrays."""
  digest = hashlib.sha256()
  for part in (data, validation):
    for a in (part or ()):
      digest.update(b"-" if a is None else a.numpy().tobytes() + str(a.shape).encode())
  return digest.hexdigest()


_SCHEDULES = {"PiecewiseLinear": training.PiecewiseLinear, "CosineDecay": training.CosineDecay}


def _json_params(params: dict, with_unsaved: bool = False):
  """The parameters as JSON values; schedules by name and fields. Others are unsaved."""
  out, unsaved = {}, []
  for k, v in params.items():
    if type(v).__name__ in _SCHEDULES and isinstance(v, tuple(_SCHEDULES.values())):
      out[k] = {"schedule": type(v).__name__, "fields": dataclasses.asdict(v)}
      continue
    try:
      json.dumps(v)
      out[k] = list(v) if isinstance(v, tuple) else v
    except (TypeError, ValueError):
      out[k] = None if with_unsaved else repr(v)
      unsaved.append(k)
  return (out, unsaved) if with_unsaved else out


def _params_from_json(params: dict) -> dict:
  out = {}
  for k, v in params.items():
    if isinstance(v, dict) and "schedule" in v:
      fields = v["fields"]
      if "points" in fields:
        fields = dict(fields, points=tuple(tuple(p) for p in fields["points"]))
      v = _SCHEDULES[v["schedule"]](**fields)
    elif k == "hidden_layers" and v is not None:
      v = tuple(v)
    if v is None and k in ("network", "strategy", "learning_rate"):
      continue  # Not saved: the constructor's default.
    out[k] = v
  return out

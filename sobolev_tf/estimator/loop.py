"""The estimator's compiled training loop: resident data, batches gathered by index.

``Trainer`` holds a network, its Adam and the traced functions that train and
apply it. One call of ``run_epochs`` runs many epochs in the graph; each epoch's
batches come from a permutation drawn from ``(seed, epoch)``, so results do not
depend on how epochs are split into calls. Trainers are cached per architecture
(``trainer_for``): a new fit resets weights and optimiser state and reuses the
traces, whose data are arguments rather than captured constants.
"""

from __future__ import annotations

import collections
import json
import threading
from typing import Any, Dict, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from sobolev_tf import derivatives
from sobolev_tf import losses

__all__ = ["Data", "Weights", "objective", "Trainer", "trainer_for", "clear_cache"]


class Data(collections.namedtuple("Data", "x y dy sample_weight dy_weight directions",
                                   defaults=(None,))):
  """Scaled training (or validation) arrays, float32; the optional ones may be None.

  With ``directions`` ``[m, n]``, ``dy`` holds directional derivatives ``[m, out]``
  along them (eq. 2's projected labels) instead of full Jacobians.
  """

  @property
  def size(self) -> int:
    return len(self.x)


class Weights(collections.namedtuple("Weights", "value derivative partial l2")):
  """The objective's weights: value and derivative terms, per-partial ``[out, in]``, L2."""


def objective(loss_terms: Dict[str, tf.Tensor], weights: Weights, sample_weight) -> tf.Tensor:
  total = weights.value * losses.batch_mean(loss_terms["value"], sample_weight)
  if "derivative_1" in loss_terms:
    total += weights.derivative * losses.batch_mean(loss_terms["derivative_1"], sample_weight)
  return total


class Trainer:
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

  def _loss(self, x, y, dy, sample_weight, dy_weight, directions, weights: Weights,
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
    return objective(terms, weights, sample_weight)

  def _penalty(self, l2) -> tf.Tensor:
    kernels = [tf.reduce_sum(tf.square(v)) for v in self.network.trainable_variables
               if v.shape.rank >= 2]
    penalty = l2 * tf.add_n(kernels) if kernels else tf.constant(0.0)
    if self.network.losses:
      penalty += tf.add_n([tf.cast(tf.reduce_sum(l), tf.float32) for l in self.network.losses])
    return penalty

  # -- the compiled loops ---------------------------------------------------------------

  def run_epochs(self, data: Data, validation: Optional[Data], weights: Weights,
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
      batch = Data(*[None if a is None else tf.gather(a, index) for a in data])
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

  def run_dataset_epoch(self, dataset, scale, weights: Weights, rate: float) -> float:
    """One epoch over a ``tf.data.Dataset`` of ``(x, y[, dydx])`` batches; its mean loss.

    ``scale(batch) -> Data`` standardises a batch in the graph.
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

  def validation_loss(self, validation: Data, weights: Weights) -> float:
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
TRAINERS: "collections.OrderedDict[tuple, Trainer]" = collections.OrderedDict()
TRAINERS_LOCK = threading.Lock()
_MAXTRAINERS = 8


def trainer_for(architecture: Any, make_network, adam: Dict[str, Any],
                 strategy: tf.distribute.Strategy) -> Trainer:
  """The cached trainer of an architecture; ``make_network()`` builds one (in ``strategy``'s scope)."""
  key = (architecture, json.dumps(adam, sort_keys=True, default=str), id(strategy))
  with TRAINERS_LOCK:
    trainer = TRAINERS.pop(key, None)
    if trainer is None:
      with strategy.scope():
        trainer = Trainer(make_network(), adam, strategy)
    TRAINERS[key] = trainer
    while len(TRAINERS) > _MAXTRAINERS:
      TRAINERS.popitem(last=False)
  return trainer


def clear_cache() -> None:
  """Forgets every cached trainer (the next fit of each architecture traces anew)."""
  with TRAINERS_LOCK:
    TRAINERS.clear()

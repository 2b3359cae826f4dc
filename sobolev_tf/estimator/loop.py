"""The estimator's compiled training loop: resident data, batches gathered by index.

``Trainer`` holds a network, its Adam and the traced functions that train and
apply it. One call of ``run_epochs`` runs many epochs in the graph; each epoch's
batches come from a permutation drawn from ``(seed, epoch)``, so results do not
depend on how epochs are split into calls. Trainers are cached per architecture
(``trainer_for``): a new fit resets weights and optimiser state and reuses the
traces, whose data are arguments rather than captured constants.

Small networks are overhead-bound, so a step is kept to few kernels: static
shapes (one trace per data size and batch), Adam as one fused kernel per
variable (``optimizers.Adam``), and XLA for large batches.
"""

from __future__ import annotations

import collections
import contextlib
import json
import threading
from typing import Any, Dict, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import rewriter_config_pb2
from tensorflow.python.eager import context as eager_context

from sobolev_tf import derivatives
from sobolev_tf import losses
from sobolev_tf import optimizers
from sobolev_tf.estimator import networks

__all__ = ["Data", "Weights", "objective", "Trainer", "trainer_for", "clear_cache",
           "max_epochs_per_call"]


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


@contextlib.contextmanager
def _without_memory_rewrites():
  """Functions first called inside run without Grappler's memory optimizer (this thread).

  It rewrites sums of large tensors (a gradient of a batch of 4,096 examples of
  50 inputs, say) into temporary variables, whose names then clash between the
  iterations of the training loop ("AlreadyExistsError ... tmp_var") in TF 2.21.
  The setting is read when a function first runs; TensorFlow offers it per call
  only through the eager context's function call options.
  """
  ctx = eager_context.context()
  saved = ctx.function_call_options
  config = type(ctx.config).FromString(saved.config_proto_serialized)
  config.graph_options.rewrite_options.memory_optimization = (
      rewriter_config_pb2.RewriterConfig.NO_MEM_OPT)
  ctx.function_call_options = eager_context.FunctionCallOptions(
      executor_type=saved.executor_type, config_proto=config)
  try:
    yield
  finally:
    ctx.function_call_options = saved


class Trainer:
  """A network, its optimiser and the compiled loops that train and apply it.

  Cached per architecture (``trainer_for``): a new fit of the same architecture
  resets the weights and optimiser state and reuses the traced functions, whose
  data are arguments, not captured constants.

  Args:
    network: the Keras model, built in ``strategy``'s scope.
    adam: ``beta_1``, ``beta_2``, ``epsilon`` of Adam (Keras' names); default 0.9,
      0.999, 1e-8, TensorFlow 1's ``AdamOptimizer`` of Huge & Savine's notebook.
    strategy: the ``tf.distribute`` strategy whose replicas share each batch.
  """

  def __init__(self, network: keras.Model, adam: Dict[str, Any],
               strategy: tf.distribute.Strategy):
    self.strategy = strategy
    self.lock = threading.Lock()
    adam = dict(dict(beta_1=0.9, beta_2=0.999, epsilon=1e-8), **adam)
    with strategy.scope():
      self.network = network
      self.learning_rate = tf.Variable(0.0, trainable=False, name="learning_rate")
      self.optimizer = optimizers.Adam(lambda _: self.learning_rate, beta1=adam["beta_1"],
                                       beta2=adam["beta_2"], epsilon=adam["epsilon"])
      self.optimizer.build(network.trainable_variables)
      # Early stopping: the best weights so far, their epoch and validation loss.
      self.best = [tf.Variable(v, trainable=False) for v in network.trainable_variables]
      self.best_loss = tf.Variable(np.inf, trainable=False, dtype=tf.float32)
      self.best_epoch = tf.Variable(-1, trainable=False, dtype=tf.int64)
      self.epoch = tf.Variable(0, trainable=False, dtype=tf.int64)
    # The default MLP's input gradient by explicit back-propagation (None: nested tapes).
    self._dense_jacobian = networks.dense_value_and_jacobian(network)
    self._epochs_fns = {}
    self._dataset_fn = self._validation_fn = None
    self._predict_fn = tf.function(self._predict, reduce_retracing=True, autograph=False)

  def reset(self, weights: Sequence[np.ndarray]) -> None:
    """New initial weights (all of the network's, as ``get_weights`` lists them); optimiser
    moments, step and early-stopping state zeroed, the best weights so far the initial ones."""
    self.set_weights(weights)
    for v in self.optimizer.variables:
      v.assign(tf.zeros(v.shape, v.dtype))
    for best, v in zip(self.best, self.network.trainable_variables):
      best.assign(v)
    self.best_loss.assign(np.inf)
    self.best_epoch.assign(-1)
    self.epoch.assign(0)

  def set_weights(self, weights: Sequence[np.ndarray]) -> None:
    expected = len(self.network.weights)
    if len(weights) != expected:
      raise ValueError(f"Expected {expected} weights for this network, got {len(weights)}.")
    self.network.set_weights(weights)

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
      if self._dense_jacobian is not None:
        values, jacobian = self._dense_jacobian(x)
        projected = tf.reduce_sum(jacobian * directions[:, None, :], axis=2)
      else:
        values, projected = derivatives.projected_derivative(net, x, 1, directions)
      partial = tf.broadcast_to(weights.partial[None, :, 0], tf.shape(dy))
      if dy_weight is not None:
        partial = partial * dy_weight  # 0 masks a missing label.
      terms = losses.sobolev_terms([values, projected], [y, dy], partial_weights=[partial])
    else:
      partial = tf.broadcast_to(weights.partial[None], tf.shape(dy))
      if dy_weight is not None:
        partial = partial * dy_weight  # 0 masks a missing partial.
      terms = losses.sobolev_terms(self._values_and_jacobians(x, training), [y, dy],
                                   partial_weights=[partial])
    return objective(terms, weights, sample_weight)

  def _values_and_jacobians(self, x, training: bool):
    """``[values [B, out], Jacobians [B, out, in]]``."""
    if self._dense_jacobian is not None:
      return list(self._dense_jacobian(x))
    return derivatives.derivative_tensors(lambda z: self.network(z, training=training), x, 1)

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

    ``rates``: the learning rate of every epoch of the fit (``[epochs]``). Stops early when the
    validation loss has not improved for ``patience`` epochs (0: never). ``count``
    is at most ``max_epochs_per_call(m)``.
    """
    m = int(data.x.shape[0])
    if not 1 <= count <= max_epochs_per_call(m):
      raise ValueError(f"count={count} epochs; one call runs 1 to {max_epochs_per_call(m)}.")
    # One function per batch size and structure of the data (which optional arrays
    # are given); each traces once per data size: static shapes, fewer kernels.
    structure = lambda d: None if d is None else tuple(a is None for a in d)
    key = (batch_size, jit_compile, structure(data), structure(validation))
    if key not in self._epochs_fns:
      self._epochs_fns[key] = self._make_epochs_fn(batch_size, jit_compile)
    scalar = lambda v: tf.constant(v, tf.int64)
    slots = max_epochs_per_call(m)
    orders = _permutations(scalar(seed), scalar(first), scalar(count), m, slots, shuffle)
    # This call's rates, padded to a fixed length: no new trace for another number of epochs.
    chunk_rates = np.zeros(slots, np.float32)
    chunk_rates[:count] = rates[first:first + count]
    with _without_memory_rewrites():
      out = self._epochs_fns[key](data, validation, weights, tf.constant(chunk_rates), orders,
                                  scalar(first), scalar(count), scalar(patience))
    ran = int(out["epochs"])
    return {k: (v.numpy()[:ran] if k != "epochs" else ran) for k, v in out.items()}

  def _make_epochs_fn(self, batch_size: int, jit_compile: bool):
    strategy = self.strategy
    replicas = strategy.num_replicas_in_sync

    @tf.autograph.experimental.do_not_convert  # Plain graph code: converting costs tracing time.
    def replica_step(data, weights, index):
      # This replica's share of the global batch; the loss is scaled so that the
      # summed gradients of all replicas are the global batch's.
      ctx = tf.distribute.get_replica_context()
      if replicas > 1:
        share = batch_size // replicas
        start = tf.cast(ctx.replica_id_in_sync_group, tf.int32) * share
        index = index[start:start + share]
      batch = Data(*[None if a is None else tf.gather(a, index) for a in data])
      with tf.GradientTape() as tape:
        loss = self._loss(*batch, weights, training=True) + self._penalty(weights.l2)
        scaled = loss / replicas
      variables = self.network.trainable_variables
      grads = tape.gradient(scaled, variables)
      if replicas > 1:
        grads = ctx.all_reduce(tf.distribute.ReduceOp.SUM, grads)
        loss = ctx.all_reduce(tf.distribute.ReduceOp.MEAN, loss)
      self.optimizer.apply(grads, variables)
      return loss

    def epochs(data, validation, weights, rates, orders, first, count, patience):
      m = int(data.x.shape[0])
      num_steps = -(-m // batch_size)
      slots = int(orders.shape[0])

      def epoch_steps(order):
        """One epoch's steps over ``order`` ``[m]``; the mean loss."""
        if num_steps * batch_size > m:
          # The last batch is filled up from the epoch's start: every batch is full.
          order = tf.concat([order, order[:num_steps * batch_size - m]], axis=0)
        order = tf.reshape(order, [num_steps, batch_size])

        def body(s, total):
          loss = strategy.run(replica_step, args=(data, weights, tf.gather(order, s)))
          return s + 1, total + strategy.experimental_local_results(loss)[0]

        # One iteration at a time: steps are sequential anyway, and Grappler's rewrite of
        # sums into temporary variables clashes across overlapping iterations.
        _, total = tf.while_loop(lambda s, _: s < num_steps, body,
                                 (tf.constant(0), tf.constant(0.0)), parallel_iterations=1)
        return total / num_steps

      def body(e, train_losses, val_losses):
        epoch = first + e
        self.learning_rate.assign(tf.gather(rates, e))
        loss = epoch_steps(tf.gather(orders, e))
        at = tf.reshape(tf.cast(e, tf.int32), [1, 1])
        train_losses = tf.tensor_scatter_nd_update(train_losses, at, [loss])
        self.epoch.assign(epoch + 1)
        if validation is not None:
          val = self._loss(*validation, weights, training=False)
          val_losses = tf.tensor_scatter_nd_update(val_losses, at, [val])
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

      buffers = (tf.zeros([slots]), tf.zeros([slots]))
      e, train_losses, val_losses = tf.while_loop(
          more, body, (tf.constant(0, tf.int64),) + buffers, parallel_iterations=1)
      out = {"epochs": e, "loss": train_losses}
      if validation is not None:
        out["val_loss"] = val_losses
      return out

    # XLA compiles the whole call: the epochs, their steps and the early stopping.
    return tf.function(epochs, autograph=False, jit_compile=jit_compile or None)

  def run_dataset_epoch(self, dataset, scale, weights: Weights, rate: float) -> float:
    """One epoch over a ``tf.data.Dataset`` of ``(x, y[, dydx])`` batches; its mean loss.

    ``scale(batch) -> Data`` standardises a batch in the graph.
    """
    if self._dataset_fn is None:
      self._dataset_fn = self._make_dataset_fn()
    self.learning_rate.assign(rate)
    dataset = self.strategy.experimental_distribute_dataset(dataset)
    with _without_memory_rewrites():
      loss = self._dataset_fn(iter(dataset), scale, weights)
    self.epoch.assign_add(1)
    return float(loss)

  def _make_dataset_fn(self):
    strategy = self.strategy
    replicas = strategy.num_replicas_in_sync

    @tf.autograph.experimental.do_not_convert
    def replica_step(batch, scale, weights):
      data = scale(batch)
      with tf.GradientTape() as tape:
        loss = self._loss(*data, weights, training=True) + self._penalty(weights.l2)
        scaled = loss / replicas
      variables = self.network.trainable_variables
      grads = tape.gradient(scaled, variables)
      if replicas > 1:
        grads = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM,
                                                               grads)
      self.optimizer.apply(grads, variables)
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
          lambda v, w: self._loss(*v, w, training=False), reduce_retracing=True, autograph=False)
    return float(self._validation_fn(validation, weights))

  def restore_best(self) -> None:
    for best, v in zip(self.best, self.network.trainable_variables):
      v.assign(best)

  # -- prediction -----------------------------------------------------------------------

  def _predict(self, x, with_derivatives: bool):
    if with_derivatives:
      return self._values_and_jacobians(x, training=False)
    return [self.network(x, training=False)]

  def predict(self, weights: Sequence[np.ndarray], x: np.ndarray, with_derivatives: bool,
              chunk: int = 65536):
    """Values (and Jacobians ``[B, out, in]``) of the network with ``weights`` at scaled ``x``."""
    with self.lock:
      self.set_weights(weights)
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


def max_epochs_per_call(num_examples: int) -> int:
  """Epochs one compiled call may run: their permutations take at most 64 MB."""
  return int(np.clip((1 << 24) // max(num_examples, 1), 1, 64))


@tf.function(autograph=False)
def _permutations_fn(seed, first, count, m, slots, shuffle):
  if not shuffle:
    return tf.tile(tf.range(m, dtype=tf.int32)[None], [slots, 1])
  drawn = tf.map_fn(
      lambda epoch: tf.random.experimental.stateless_shuffle(
          tf.range(m, dtype=tf.int32), seed=tf.stack([seed, epoch])),
      first + tf.range(count), fn_output_signature=tf.int32)
  return tf.pad(drawn, [[0, slots - count], [0, 0]])  # Rows past count are not read.


def _permutations(seed, first, count, m: int, slots: int, shuffle: bool) -> tf.Tensor:
  """``[slots, m]``: row ``e`` orders the examples of epoch ``first + e`` (drawn from
  ``(seed, epoch)`` alone, however epochs are split into calls)."""
  return _permutations_fn(seed, first, count, m, slots, shuffle)


def clear_cache() -> None:
  """Forgets every cached trainer (the next fit of each architecture traces anew)."""
  with TRAINERS_LOCK:
    TRAINERS.clear()

"""Optimisers with one fused kernel per variable, in the replica context of any strategy.

Sonnet's optimisers refuse every strategy but its own ``Replicator`` family, so
they cannot be used with ``MultiWorkerMirroredStrategy``. These two (the ones the
paper's synthetic-gradient experiments use, SM section 4; Adam also trains
``SobolevRegressor``) have no such check: every replica applies the same
all-reduced gradient to its own copy of each variable (replica-local variables,
``synthetic_gradients.distribute.replica_local_scope``, or the local components of
mirrored ones), so the copies stay identical, as under ``snt.distribute.Replicator``.
For small networks the fused kernels matter: a dozen small ops per variable
otherwise make a large part of a step.

Call ``build(variables)`` once in the strategy's scope, outside the replica
context (slot variables are created there), then ``apply(grads, variables)``.
"""

from __future__ import annotations

from typing import Callable, Sequence, Union

import tensorflow as tf

__all__ = ["MomentumSGD", "Adam", "piecewise_constant"]

Schedule = Union[float, Callable[[tf.Tensor], tf.Tensor]]


def piecewise_constant(initial: float, boundaries: Sequence[int], factor: float = 0.1):
  """``initial * factor**i`` after the i-th boundary (SM 4.2: 0.1, /10 at 40K, 60K, 80K)."""
  boundaries = [int(b) for b in boundaries]
  if boundaries != sorted(boundaries):
    raise ValueError(f"boundaries must be increasing, got {boundaries}.")
  values = tf.constant([initial * factor**i for i in range(len(boundaries) + 1)], tf.float32)
  bounds = tf.constant(boundaries or [0], tf.int64)

  def schedule(step: tf.Tensor) -> tf.Tensor:
    if not boundaries:
      return values[0]
    passed = tf.reduce_sum(tf.cast(tf.cast(step, tf.int64) >= bounds, tf.int32))
    return tf.gather(values, passed)

  return schedule


class _Optimizer(tf.Module):
  """Shared slot handling; subclasses define ``_slots`` and ``_update``."""

  _SLOTS: Sequence[str] = ()

  def __init__(self, learning_rate: Schedule, weight_decay: float = 0.0,
               decay_filter: Callable[[tf.Variable], bool] = lambda v: v.shape.rank > 1,
               name=None):
    super().__init__(name=name)
    if weight_decay < 0:
      raise ValueError(f"weight_decay must be >= 0, got {weight_decay}.")
    self.learning_rate = learning_rate
    self.weight_decay = weight_decay
    self.decay_filter = decay_filter
    self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    self.slots = None
    self._ids = None

  def build(self, variables: Sequence[tf.Variable]) -> None:
    """Creates the slot variables (in the strategy scope, outside replica context)."""
    if self.slots is not None:
      return
    self._ids = [id(v) for v in variables]  # Keras variables have no ref().
    self.slots = {name: [tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False,
                                     name=f"{name}_{i}") for i, v in enumerate(variables)]
                  for name in self._SLOTS}

  def current_learning_rate(self) -> tf.Tensor:
    lr = self.learning_rate
    return tf.cast(lr(self.step) if callable(lr) else lr, tf.float32)

  def apply(self, grads: Sequence[tf.Tensor], variables: Sequence[tf.Variable]) -> None:
    if self.slots is None:
      raise ValueError(f"{self.name}: call build(variables) before apply().")
    if [id(v) for v in variables] != self._ids:
      raise ValueError(f"{self.name}: apply() got different variables than build() "
                       f"({len(variables)} vs {len(self._ids)}).")
    if len(grads) != len(variables):
      raise ValueError(f"{len(grads)} gradients for {len(variables)} variables.")
    lr = self.current_learning_rate()
    self.step.assign_add(1)
    shared = self._shared()
    for i, (g, v) in enumerate(zip(grads, variables)):
      if g is None:
        continue
      if self.weight_decay and self.decay_filter(v):
        # L2 regularisation 0.5 * wd * ||w||^2 (SM 4.2/4.3: 1e-4) as its gradient.
        g = g + self.weight_decay * v
      self._update(i, g, v, lr, shared)

  def _shared(self) -> dict:
    """Per-step quantities shared by all variables (computed once per ``apply``)."""
    return {}

  def _update(self, i, g, v, lr, shared):
    raise NotImplementedError


class MomentumSGD(_Optimizer):
  """SGD with heavy-ball momentum: ``m = mu m + g``, ``w -= lr m`` (SM 4.2: mu = 0.9).

  One fused kernel per variable (``ResourceApplyMomentum``).
  """

  _SLOTS = ("momentum",)

  def __init__(self, learning_rate: Schedule, momentum: float = 0.9, **kwargs):
    super().__init__(learning_rate, **kwargs)
    self.momentum = momentum

  def _update(self, i, g, v, lr, shared):
    tf.raw_ops.ResourceApplyMomentum(var=v.handle, accum=self.slots["momentum"][i].handle,
                                     lr=tf.cast(lr, v.dtype), grad=g,
                                     momentum=tf.cast(self.momentum, v.dtype))


class Adam(_Optimizer):
  """Adam (Kingma and Ba); SM 4.2/4.3 modules: 1e-4, no schedule.

  One fused kernel per variable (``ResourceApplyAdam``) instead of a dozen small
  ops: for small networks the per-op overhead is a large part of a step
  (``results/benchmarks.md``). The kernel applies epsilon as Kingma and Ba's
  Algorithm 1 footnote, ``lr_t m / (sqrt(v) + eps)`` with
  ``lr_t = lr sqrt(1 - b2^t) / (1 - b1^t)``, which differs from
  ``m_hat / (sqrt(v_hat) + eps)`` only in the scale of ``eps``.
  """

  _SLOTS = ("m", "v")

  def __init__(self, learning_rate: Schedule, beta1: float = 0.9, beta2: float = 0.999,
               epsilon: float = 1e-8, **kwargs):
    super().__init__(learning_rate, **kwargs)
    self.beta1, self.beta2, self.epsilon = beta1, beta2, epsilon

  def _shared(self) -> dict:
    t = tf.cast(self.step, tf.float32)  # Already incremented: t >= 1.
    return dict(beta1_power=tf.pow(self.beta1, t), beta2_power=tf.pow(self.beta2, t))

  def _update(self, i, g, v, lr, shared):
    cast = lambda x: tf.cast(x, v.dtype)
    tf.raw_ops.ResourceApplyAdam(
        var=v.handle, m=self.slots["m"][i].handle, v=self.slots["v"][i].handle,
        beta1_power=cast(shared["beta1_power"]), beta2_power=cast(shared["beta2_power"]),
        lr=cast(lr), beta1=cast(self.beta1), beta2=cast(self.beta2),
        epsilon=cast(self.epsilon), grad=g)

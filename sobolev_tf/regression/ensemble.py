"""Many independent MLPs trained in one compiled computation (section 4.1 grid).

The grid of Figure 2 is 7 functions x 3 sizes x 2 methods x 5 seeds = 210 small
networks. Evaluating them one at a time wastes the machine on Python and kernel
launch overhead, so their weights are stacked on a leading model axis ``M`` and
every layer is one batched matmul ``[M, B, i] x [M, i, o]``. The models share
nothing: the loss is the sum of per-model losses, so each model's gradient is the
gradient of its own loss, and Adam is elementwise, so one Adam over the stacked
variables is M independent Adams.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import sonnet as snt
import tensorflow as tf

__all__ = ["StackedMLP"]


class StackedMLP(snt.Module):
  """``M`` independent MLPs ``R^d -> R`` evaluated together.

  Model ``m`` is initialised from ``seeds[m]`` alone (stateless RNG), so a stack
  of models equals the same models built one by one: Sonnet's default
  ``Linear`` initialisation (truncated normal, stddev ``1/sqrt(fan_in)``, zero
  bias).

  Args:
    seeds: one integer seed per model; ``M = len(seeds)``.
    input_size: d (2 for the benchmarks).
    hidden_sizes: paper: (256, 256).
    activation: ReLU in the paper; softplus for second-order training.
  """

  def __init__(self, seeds: Sequence[int], input_size: int = 2,
               hidden_sizes: Sequence[int] = (256, 256),
               activation: Callable[[tf.Tensor], tf.Tensor] = tf.nn.relu,
               dtype: tf.DType = tf.float32, name: Optional[str] = None):
    super().__init__(name=name)
    if not seeds:
      raise ValueError("seeds must name at least one model.")
    self.num_models = len(seeds)
    self.activation = activation
    sizes = [input_size] + list(hidden_sizes) + [1]
    self.weights = []
    self.biases = []
    for layer, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
      stddev = 1.0 / fan_in**0.5
      w = tf.stack([
          tf.random.stateless_truncated_normal([fan_in, fan_out], seed=[int(s), layer],
                                               stddev=stddev, dtype=dtype)
          for s in seeds])
      self.weights.append(tf.Variable(w, name=f"w{layer}"))
      self.biases.append(tf.Variable(tf.zeros([self.num_models, 1, fan_out], dtype),
                                     name=f"b{layer}"))

  def __call__(self, x: tf.Tensor) -> tf.Tensor:
    """``x: [M, B, d] -> [M, B]``."""
    h = x
    last = len(self.weights) - 1
    for i, (w, b) in enumerate(zip(self.weights, self.biases)):
      if self.num_models == 1:
        # A 2-D matmul: TF 2.21's oneDNN batched matmul with a batch of one crashes
        # (segfault) in the third-order gradients of second-order Sobolev training.
        h = tf.matmul(h[0], w[0])[None] + b
      else:
        h = tf.matmul(h, w) + b
      if i < last:
        h = self.activation(h)
    return h[..., 0]

  def per_example(self, batch: int) -> Callable[[tf.Tensor], tf.Tensor]:
    """The stack as a ``[M*B, d] -> [M*B]`` function, for ``sobolev_tf.derivatives``.

    Each output depends on its own input only, so per-example derivatives of
    the flattened function are the models' input derivatives.
    """

    def f(flat: tf.Tensor) -> tf.Tensor:
      x = tf.reshape(flat, [self.num_models, batch, -1])
      return tf.reshape(self(x), [-1])

    return f

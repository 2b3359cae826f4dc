"""The regression network of section 4.1 (SM section 2)."""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import sonnet as snt
import tensorflow as tf

from sobolev_tf import checks

__all__ = ["regression_mlp"]


def regression_mlp(hidden_sizes: Sequence[int] = (256, 256), output_size: int = 1,
                   activation: Callable[[tf.Tensor], tf.Tensor] = tf.nn.relu,
                   name: Optional[str] = None) -> snt.nets.MLP:
  """The regression network of section 4.1: 2 hidden layers of 256 ReLU units.

  Args:
    hidden_sizes: widths of the hidden layers (paper: 256, 256).
    output_size: 1 for the scalar benchmark functions.
    activation: ReLU in the paper; use a smooth one (softplus, tanh) for
      second-order Sobolev training, since ReLU networks have zero Hessians.
    name: module name.
  """
  checks.check_widths(hidden_sizes)
  checks.check_widths((output_size,), "output_size")
  return snt.nets.MLP(list(hidden_sizes) + [output_size], activation=activation,
                      name=name)

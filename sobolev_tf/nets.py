"""Sonnet networks of the paper's experiments (SM sections 2 and 3)."""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import sonnet as snt
import tensorflow as tf

__all__ = ["regression_mlp", "AtariTeacher", "AtariStudent"]


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
  return snt.nets.MLP(list(hidden_sizes) + [output_size], activation=activation,
                      name=name)


def _scale_frames(frames: tf.Tensor) -> tf.Tensor:
  """uint8 frames in [0, 255] to float in [0, 1]; float input is used as is."""
  if frames.dtype == tf.uint8:
    return tf.cast(frames, tf.float32) / 255.0
  return frames


class AtariTeacher(snt.Module):
  """The A3C agent of SM section 3, with the value head an actor-critic needs.

  32 8x8/4, 64 4x4/2, 64 3x3/1 convolutions, a 512 linear layer, ReLUs, and a
  linear layer to the game's actions (logits; the softmax is the policy).
  Input ``[B, 84, 84, 4]`` frames, uint8 or float in [0, 1].
  """

  def __init__(self, num_actions: int, name: Optional[str] = None):
    super().__init__(name=name)
    if num_actions < 1:
      raise ValueError(f"num_actions must be positive, got {num_actions}.")
    self.num_actions = num_actions
    self.torso = snt.Sequential([
        snt.Conv2D(32, 8, stride=4, padding="VALID"), tf.nn.relu,
        snt.Conv2D(64, 4, stride=2, padding="VALID"), tf.nn.relu,
        snt.Conv2D(64, 3, stride=1, padding="VALID"), tf.nn.relu,
        snt.Flatten(), snt.Linear(512), tf.nn.relu,
    ])
    self.policy_head = snt.Linear(num_actions, name="policy")
    self.value_head = snt.Linear(1, name="value")

  def __call__(self, frames: tf.Tensor) -> tf.Tensor:
    """Policy logits ``[B, num_actions]``."""
    return self.policy_head(self.torso(_scale_frames(frames)))

  def logits_and_value(self, frames: tf.Tensor):
    h = self.torso(_scale_frames(frames))
    return self.policy_head(h), tf.squeeze(self.value_head(h), -1)


class AtariStudent(snt.Module):
  """The distillation network of SM section 3: 16 8x8/4, 32 4x4/2, 256 linear."""

  def __init__(self, num_actions: int, name: Optional[str] = None):
    super().__init__(name=name)
    if num_actions < 1:
      raise ValueError(f"num_actions must be positive, got {num_actions}.")
    self.num_actions = num_actions
    self.net = snt.Sequential([
        snt.Conv2D(16, 8, stride=4, padding="VALID"), tf.nn.relu,
        snt.Conv2D(32, 4, stride=2, padding="VALID"), tf.nn.relu,
        snt.Flatten(), snt.Linear(256), tf.nn.relu,
        snt.Linear(num_actions),
    ])

  def __call__(self, frames: tf.Tensor) -> tf.Tensor:
    """Policy logits ``[B, num_actions]``."""
    return self.net(_scale_frames(frames))

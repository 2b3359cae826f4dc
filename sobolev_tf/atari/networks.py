"""The Atari networks of SM section 3: teacher, student and their strided convolutions."""

from __future__ import annotations

import re
from typing import Optional, Tuple

import sonnet as snt
import tensorflow as tf

from sobolev_tf.atari import games

__all__ = ["StridedConv2D", "AtariTeacher", "AtariStudent", "checkpoint_policy",
           "check_policy_checkpoint"]


class StridedConv2D(snt.Module):
  """A VALID k x k convolution with stride s, computed as space-to-depth + stride 1.

  Same parameters and outputs as ``snt.Conv2D(o, k, stride=s, padding="VALID")``
  (``w: [k, k, C, o]``, ``b: [o]``), but when s divides k and the input size the
  input is regrouped into s x s blocks (``[H/s, W/s, s*s*C]``) and convolved with
  the regrouped kernel ``[k/s, k/s, s*s*C, o]`` at stride 1. On CPU the gradient
  with respect to the input, which Sobolev distillation needs for teacher and
  student alike, is then about 1.5x faster than TF's strided
  ``Conv2DBackpropInput`` (``scripts/benchmark.py``, case b).
  """

  def __init__(self, output_channels: int, kernel_size: int, stride: int,
               name: Optional[str] = None):
    super().__init__(name=name)
    if kernel_size < 1 or stride < 1:
      raise ValueError(f"kernel_size and stride must be positive, got {kernel_size}, {stride}.")
    self.output_channels = output_channels
    self.kernel_size = kernel_size
    self.stride = stride
    self.w = None
    self.b = None

  @snt.once
  def _initialize(self, inputs: tf.Tensor):
    k, c = self.kernel_size, inputs.shape[-1]
    fan_in = k * k * c
    # snt.Conv2D's default initialiser: truncated normal with stddev 1/sqrt(fan_in).
    init = snt.initializers.TruncatedNormal(stddev=1.0 / fan_in**0.5)
    self.w = tf.Variable(init([k, k, c, self.output_channels], inputs.dtype), name="w")
    self.b = tf.Variable(tf.zeros([self.output_channels], inputs.dtype), name="b")

  def __call__(self, inputs: tf.Tensor) -> tf.Tensor:
    self._initialize(inputs)
    s, k = self.stride, self.kernel_size
    h, w_in, c = inputs.shape[1], inputs.shape[2], inputs.shape[3]
    if s == 1 or k % s or h is None or w_in is None or h % s or w_in % s:
      return tf.nn.conv2d(inputs, self.w, s, "VALID") + self.b
    batch = tf.shape(inputs)[0]
    blocks = tf.reshape(inputs, [batch, h // s, s, w_in // s, s, c])
    blocks = tf.reshape(tf.transpose(blocks, [0, 1, 3, 2, 4, 5]),
                        [batch, h // s, w_in // s, s * s * c])
    kernel = tf.reshape(self.w, [k // s, s, k // s, s, c, self.output_channels])
    kernel = tf.reshape(tf.transpose(kernel, [0, 2, 1, 3, 4, 5]),
                        [k // s, k // s, s * s * c, self.output_channels])
    return tf.nn.conv2d(blocks, kernel, 1, "VALID") + self.b


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
        StridedConv2D(32, 8, stride=4), tf.nn.relu,
        StridedConv2D(64, 4, stride=2), tf.nn.relu,
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
        StridedConv2D(16, 8, stride=4), tf.nn.relu,
        StridedConv2D(32, 4, stride=2), tf.nn.relu,
        snt.Flatten(), snt.Linear(256), tf.nn.relu,
        snt.Linear(num_actions),
    ])

  def __call__(self, frames: tf.Tensor) -> tf.Tensor:
    """Policy logits ``[B, num_actions]``."""
    return self.net(_scale_frames(frames))


# Where a checkpoint keeps each network's action logits' bias (its length is the
# number of actions): a teacher under ``net`` (``train_teacher``), a student under
# ``student`` (``distill``), whose last layer has the highest index.
_TEACHER_ACTIONS = re.compile(r"net/policy_head/b/\.ATTRIBUTES/VARIABLE_VALUE")
_STUDENT_LAYER = re.compile(r"student/net/_layers/(\d+)/b/\.ATTRIBUTES/VARIABLE_VALUE")


def checkpoint_policy(path: str) -> Tuple[Optional[str], Optional[int]]:
  """``(kind, actions)`` of the checkpoint ``path``: ``"teacher"`` or ``"student"`` and its
  number of actions, or ``(None, None)`` for anything else (including unreadable files,
  left to the restore to name)."""
  try:
    shapes = dict(tf.train.list_variables(path))
  except (tf.errors.OpError, ValueError):
    return None, None
  for name, shape in shapes.items():
    if _TEACHER_ACTIONS.fullmatch(name) and len(shape) == 1:
      return "teacher", int(shape[0])
  layers = [(int(m.group(1)), shape) for name, shape in shapes.items()
            if (m := _STUDENT_LAYER.fullmatch(name))]
  if layers:
    return "student", int(max(layers)[1][0])
  return None, None


def check_policy_checkpoint(path: str, kind: str, num_actions: int, game: str,
                            other_kind_fix: str) -> None:
  """Refuses, before restoring it, a checkpoint of the other kind of network or game.

  ``kind``: ``"teacher"`` or ``"student"``, the network wanted; ``game`` (with
  ``num_actions``) names the game asked for. ``other_kind_fix``: what to do
  when ``path`` holds the other kind. A restore would fail with TensorFlow's
  "objects not bound" or a shape error instead.
  """
  found, actions = checkpoint_policy(path)
  if found is None:
    return
  name = lambda k: "distilled student" if k == "student" else "teacher"
  if found != kind:
    raise ValueError(f"{path} holds a {name(found)}, not a {name(kind)}: {other_kind_fix}")
  if actions != num_actions:
    named = [g.name for g in games.GAMES.values() if g.num_actions == actions]
    raise ValueError(
        f"{path} holds a {name(kind)} of {actions} actions ({', '.join(named) or 'no known game'})"
        f", not of {game} ({num_actions} actions): pass "
        + (f"--game={named[0]}" if named else "the game it was trained for")
        + f", or a {name(kind)} of {game}.")

"""SavedModel export of Atari policies (teachers and distilled students).

The exported model needs TensorFlow only (not this package):

    policy = tf.saved_model.load(path)
    probs = policy.serving_default(frames=uint8 [B, 84, 84, 4])["probabilities"]

or ``policy.action_probabilities(frames)``; ``policy.num_actions`` and
``policy.game`` describe it.
"""

from __future__ import annotations

from typing import Callable

import tensorflow as tf

from sobolev_tf import files

__all__ = ["export_policy", "PolicyExport"]

FRAMES_SPEC = tf.TensorSpec([None, 84, 84, 4], tf.uint8, name="frames")


class PolicyExport(tf.Module):
  """Wraps ``logits_fn`` (a Sonnet module) with a uint8 serving signature."""

  def __init__(self, net: tf.Module, logits_fn: Callable[[tf.Tensor], tf.Tensor], game: str,
               num_actions: int):
    super().__init__(name="policy")
    self.net = net  # Tracked, so that its variables are saved.
    self._logits_fn = logits_fn
    self.game = tf.Variable(game, trainable=False, name="game")
    self.num_actions = tf.Variable(num_actions, trainable=False, name="num_actions")

  @tf.function(input_signature=[FRAMES_SPEC])
  def action_probabilities(self, frames: tf.Tensor) -> tf.Tensor:
    return tf.nn.softmax(self._logits_fn(frames))


def export_policy(net: tf.Module, game: str, num_actions: int, path: str,
                  logits_fn: Callable[[tf.Tensor], tf.Tensor] = None) -> str:
  """Writes a SavedModel to ``path`` (via a temporary directory and a rename).

  ``path`` must be absent, empty or an earlier SavedModel: a directory holding
  anything else (a workdir, say) is refused before any work.
  """
  files.check_saved_model_destination(path.rstrip("/"))
  module = PolicyExport(net, logits_fn or net, game, num_actions)
  module.action_probabilities(tf.zeros([1, 84, 84, 4], tf.uint8))  # Builds variables.

  @tf.function(input_signature=[FRAMES_SPEC])
  def serving_default(frames):
    return {"probabilities": module.action_probabilities(frames)}

  return files.write_saved_model_atomic(path, lambda tmp: tf.saved_model.save(
      module, tmp, signatures={"serving_default": serving_default}))

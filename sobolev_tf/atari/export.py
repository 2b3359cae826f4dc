"""SavedModel export of Atari policies (teachers and distilled students).

The exported model needs TensorFlow only (not this package):

    policy = tf.saved_model.load(path)
    probs = policy.serving_default(frames=uint8 [B, 84, 84, 4])["probabilities"]

or ``policy.action_probabilities(frames)``; ``policy.num_actions`` and
``policy.game`` describe it.
"""

from __future__ import annotations

import os
from typing import Callable, Optional

import tensorflow as tf

from sobolev_tf import files
from sobolev_tf.atari import games

__all__ = ["export_policy", "load_policy", "PolicyExport"]

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


def load_policy(path: str, game: Optional[str] = None):
  """``(logits_fn, policy)`` of the policy SavedModel ``path`` (``export_policy``).

  ``logits_fn`` maps uint8 frames to log-probabilities. A ValueError names
  ``path`` if it is not such a SavedModel (another export, a directory of
  other files) or, with ``game``, if it plays another game.
  """
  path = files.directory_to_read(path)
  if not os.path.isdir(path) or not tf.saved_model.contains_saved_model(path):
    raise ValueError(f"No SavedModel directory at {path}; export one with "
                     "scripts/export_policy.py.")
  policy = tf.saved_model.load(path)
  missing = [a for a in ("action_probabilities", "num_actions", "game") if not hasattr(policy, a)]
  if missing:
    raise ValueError(f"{path} is a SavedModel but not a policy (it has no "
                     f"{', '.join(missing)}): export a teacher or student with "
                     "scripts/export_policy.py, and play that.")
  if game is not None:
    spec = games.get_game(game)
    played = policy.game.numpy().decode()
    if played != spec.name or int(policy.num_actions.numpy()) != spec.num_actions:
      raise ValueError(f"{path} is a policy of {played} ({int(policy.num_actions.numpy())} "
                       f"actions), not of {spec.name}: pass --game={played}, or a policy of "
                       f"{spec.name}.")
  return lambda frames: tf.math.log(policy.action_probabilities(frames) + 1e-12), policy

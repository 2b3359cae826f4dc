"""Synchronous advantage actor-critic (A2C), the batched form of the paper's A3C.

Loss for a rollout of T steps from N environments, with n-step returns
``R_t = r_t + gamma (1 - d_t) R_{t+1}`` bootstrapped from ``V(s_T)``:

    L = -mean(log pi(a_t|s_t) A_t) + c_v mean((R_t - V(s_t))^2) - c_H mean(H(pi(.|s_t)))

with ``A_t = R_t - V(s_t)`` held constant (stop gradient). A3C averages the same
gradient over asynchronous workers; A2C takes it synchronously over N envs.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Optional

import sonnet as snt
import tensorflow as tf

from sobolev_tf.atari import networks

__all__ = ["A2CHyperparams", "A2CLearner", "n_step_returns"]


@dataclasses.dataclass(frozen=True)
class A2CHyperparams:
  learning_rate: float = 7e-4   # RMSProp, as A3C / OpenAI baselines' A2C.
  rmsprop_decay: float = 0.99
  rmsprop_epsilon: float = 1e-5
  discount: float = 0.99
  value_coef: float = 0.5
  entropy_coef: float = 0.01
  max_grad_norm: float = 0.5


def n_step_returns(rewards: tf.Tensor, dones: tf.Tensor, bootstrap: tf.Tensor,
                   discount: float) -> tf.Tensor:
  """``R_t = r_t + discount * (1 - d_t) * R_{t+1}``, ``R_T = bootstrap``; inputs ``[T, N]``."""
  not_done = 1.0 - tf.cast(dones, tf.float32)

  def body(acc, inputs):
    r, nd = inputs
    return r + discount * nd * acc

  return tf.scan(body, (rewards, not_done), initializer=bootstrap, reverse=True)


class A2CLearner(tf.Module):
  """The SM section 3 teacher network trained with A2C."""

  def __init__(self, num_actions: int, hparams: A2CHyperparams = A2CHyperparams()):
    super().__init__(name="a2c")
    self.hparams = hparams
    self.net = networks.AtariTeacher(num_actions)
    self.optimizer = snt.optimizers.RMSProp(hparams.learning_rate, decay=hparams.rmsprop_decay,
                                            epsilon=hparams.rmsprop_epsilon)
    self.num_updates = tf.Variable(0, dtype=tf.int64, name="num_updates")

  @tf.function(input_signature=[tf.TensorSpec([None, 84, 84, 4], tf.uint8),
                                tf.TensorSpec([2], tf.int64)])
  def act(self, frames: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Samples actions from the policy (stateless seed)."""
    logits = self.net(frames)
    return tf.random.stateless_categorical(logits, 1, seed=seed, dtype=tf.int64)[:, 0]

  @tf.function
  def update(self, frames, actions, rewards, dones, bootstrap_frames,
             learning_rate: Optional[tf.Tensor] = None) -> Dict[str, tf.Tensor]:
    """One A2C update on a rollout: frames ``[T, N, 84, 84, 4]``, others ``[T, N]``.

    ``learning_rate``: a scalar overriding ``hparams.learning_rate`` for this
    update (a schedule, see ``train_teacher.learning_rate_at``).
    """
    hp = self.hparams
    t, n = tf.shape(actions)[0], tf.shape(actions)[1]
    _, bootstrap = self.net.logits_and_value(bootstrap_frames)
    returns = n_step_returns(tf.sign(rewards), dones, tf.stop_gradient(bootstrap), hp.discount)
    flat = tf.reshape(frames, tf.concat([[t * n], tf.shape(frames)[2:]], 0))
    with tf.GradientTape() as tape:
      logits, values = self.net.logits_and_value(flat)
      log_probs = tf.nn.log_softmax(logits)
      flat_returns = tf.reshape(returns, [-1])
      advantages = tf.stop_gradient(flat_returns - values)
      chosen = tf.gather(log_probs, tf.reshape(actions, [-1]), batch_dims=1)
      policy_loss = -tf.reduce_mean(chosen * advantages)
      value_loss = tf.reduce_mean(tf.square(flat_returns - values))
      entropy = -tf.reduce_mean(tf.reduce_sum(tf.exp(log_probs) * log_probs, axis=1))
      loss = policy_loss + hp.value_coef * value_loss - hp.entropy_coef * entropy
    variables = self.net.trainable_variables
    grads = tape.gradient(loss, variables)
    grads, grad_norm = tf.clip_by_global_norm(grads, hp.max_grad_norm)
    # The rate is an argument rather than a tf.Variable of the optimiser, so a
    # schedule adds nothing to the checkpoint and older checkpoints still load.
    if learning_rate is not None:
      self.optimizer.learning_rate = learning_rate
    try:
      self.optimizer.apply(grads, variables)
    finally:
      self.optimizer.learning_rate = hp.learning_rate
    self.num_updates.assign_add(1)
    return dict(loss=loss, policy_loss=policy_loss, value_loss=value_loss, entropy=entropy,
                grad_norm=grad_norm, mean_value=tf.reduce_mean(values))

"""Recording teacher rollouts for distillation (SM section 3)."""

from __future__ import annotations

from typing import Callable, Dict, Optional

import numpy as np
import tensorflow as tf

from sobolev_tf import loggers
from sobolev_tf.atari import dataset
from sobolev_tf.atari import games

__all__ = ["collect"]


def collect(logits_fn: Callable[[tf.Tensor], tf.Tensor], game: str, num_states: int,
            seed: int = 0, meta: Optional[Dict] = None, log_seconds: float = 30.0) -> dataset.DistillationData:
  """Runs the teacher (sampling its actions) for ``num_states`` agent steps.

  One environment, so states are in time order and episodes are contiguous:
  100K states are 400K emulator frames with action repeat 4, as in the paper.
  Progress (states, rate, ETA) goes to a ``loggers.Progress`` bar.
  """
  if not num_states >= 1:
    raise ValueError(f"num_states must be >= 1, got {num_states!r}.")
  spec = games.get_game(game)
  env = games.VectorEnv(spec, 1, seed=seed)
  obs = env.reset()
  policy = tf.function(lambda s: tf.nn.log_softmax(logits_fn(s)))
  writer = dataset.StackedFrameWriter()
  episode, new_episode, scores = 0, True, []
  progress = loggers.Progress(num_states, f"[{game}]", unit="state", log_seconds=log_seconds)
  for i in range(num_states):
    log_probs = policy(tf.constant(obs))
    action = int(tf.random.stateless_categorical(log_probs, 1, seed=[seed, i])[0, 0])
    state = obs[0]
    obs, reward, game_over, _, finished = env.step(np.array([action]))
    writer.add(state, log_probs.numpy()[0], action, float(reward[0]), episode, new_episode)
    new_episode = bool(game_over[0])
    if new_episode:
      episode += 1
      scores.extend(score for _, score, _ in finished)
    progress.update(i + 1, f"{episode} episodes done, mean score "
                    f"{np.mean(scores) if scores else float('nan'):.1f}")
  progress.close()
  env.close()
  info = dict(game=game, num_states=num_states, seed=seed, episodes_completed=episode,
              completed_episode_scores=scores, action_repeat=4, action_set=list(spec.action_set),
              protocol="teacher actions sampled from its policy; 1 environment; "
                       "no sticky actions; up to 30 no-op starts")
  info.update(meta or {})
  return writer.build(info)

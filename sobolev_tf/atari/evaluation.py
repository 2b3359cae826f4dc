"""Scores of a policy playing full games (the protocol of results/teachers.md).

Protocol: ``num_episodes`` complete games (all lives, up to 108,000 frames),
environments seeded from ``seed``, up to 30 no-op starts, no sticky actions,
unclipped scores; actions sampled from the policy (``greedy=False``, as the
stochastic A3C policies were evaluated) or its most probable action.
"""

from __future__ import annotations

import os
from typing import Callable, Dict, Optional

import numpy as np
import tensorflow as tf

from sobolev_tf import checks
from sobolev_tf import files
from sobolev_tf.atari import games

__all__ = ["evaluate_policy", "read_result"]


def evaluate_policy(logits_fn: Callable[[tf.Tensor], tf.Tensor], game: str,
                    num_episodes: int = 10, num_envs: int = 8, seed: int = 1000,
                    greedy: bool = False, max_frames_per_episode: int = 108_000) -> Dict:
  """Plays until ``num_episodes`` games have ended; returns their scores.

  Args:
    logits_fn: ``uint8 [B, 84, 84, 4] -> [B, num_actions]`` logits (or log-probs).
    game: game name.
    num_episodes: games to score, split evenly over ``num_envs`` environments, each
      scoring its first games (consecutive, from its seeded start).
  """
  spec = games.get_game(game)
  if num_episodes < 1:
    raise ValueError(f"num_episodes must be positive, got {num_episodes}.")
  n = min(num_envs, num_episodes)
  env = games.VectorEnv(spec, n, seed=seed, max_frames_per_episode=max_frames_per_episode)
  # Each environment scores a fixed quota of consecutive games: taking the first
  # games to finish overall would favour short games.
  quota = [num_episodes // n + (i < num_episodes % n) for i in range(n)]
  obs = env.reset()
  scores, lengths = [], []
  rng_step = 0
  while len(scores) < num_episodes:
    logits = logits_fn(tf.constant(obs))
    if greedy:
      actions = tf.argmax(logits, axis=-1).numpy()
    else:
      actions = tf.random.stateless_categorical(
          logits, 1, seed=[seed, rng_step])[:, 0].numpy()
    rng_step += 1
    obs, _, _, _, finished = env.step(actions)
    for i, score, length in finished:
      if quota[i] > 0:
        quota[i] -= 1
        scores.append(score)
        lengths.append(length)
  env.close()
  scores = np.asarray(scores)
  return dict(game=game, episodes=len(scores), mean=float(scores.mean()),
              std=float(scores.std()), min=float(scores.min()), max=float(scores.max()),
              scores=scores.tolist(), mean_length=float(np.mean(lengths)),
              greedy=greedy)


def read_result(path: str, game: Optional[str]) -> Dict:
  """A result of ``evaluate_policy`` read back (``scripts/evaluate_policy.py --output``).

  Errors name ``path``: not JSON, a score missing or not a number, another game
  than ``game`` (None: any).
  """
  fix = "Write it with scripts/evaluate_policy.py --output."
  result = files.read_json(path, fix)
  if not isinstance(result, dict):
    raise ValueError(f"{path} holds {type(result).__name__}, not an evaluation. {fix}")
  for key in ("mean", "std", "episodes"):
    checks.check_number(result.get(key), f"{path}: {key}", fix=fix)
  if game is not None and result.get("game", game) != game:
    raise ValueError(f"{path} evaluates {result['game']}, not {game}.")
  return result


def check_result_destination(path: str) -> None:
  """Refuses, before any game, to replace ``path`` unless it is absent, empty or an
  evaluation result (``read_result``): a run record or another JSON file is kept."""
  if not os.path.isfile(path) or not os.path.getsize(path):
    return
  try:
    read_result(path, None)
  except ValueError as e:
    raise ValueError(f"{path} exists and is not a result written earlier ({e}); refusing to "
                     "replace it: choose another path, or move that file away.") from e

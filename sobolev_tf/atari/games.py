"""Atari game specs and preprocessing (SM section 3), in one place.

Preprocessing as the paper's agents: greyscale, 84x84, a history of 4 frames,
action repeat 4 (max over the last two frames). Decisions the paper leaves open:

* sticky actions: none (``repeat_action_probability=0``), as in the A3C era;
* episode starts: up to 30 random no-ops, FIRE on reset where the game needs it;
* episodes end at game over (or 108,000 frames); a lost life is a terminal for
  the learner's bootstrapping only (``life_lost`` in ``VectorEnv.step``), not a
  reset, and scores are full-game scores;
* rewards are unclipped from the environment; the learner clips them.

Action sets are the paper's: 3 for Pong (no-op, up, down), 4 for Breakout,
6 for Space Invaders, as indices into ALE's minimal action set of the game.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Tuple

import numpy as np

__all__ = ["GameSpec", "GAMES", "get_game", "VectorEnv"]


@dataclasses.dataclass(frozen=True)
class GameSpec:
  name: str
  rom: str
  action_set: Tuple[int, ...]   # Indices into ALE's minimal action set.
  action_names: Tuple[str, ...]
  random_score: float           # Mean score of uniform random play.

  @property
  def num_actions(self) -> int:
    return len(self.action_set)


GAMES: Dict[str, GameSpec] = {
    "pong": GameSpec("pong", "pong", (0, 2, 3), ("NOOP", "UP", "DOWN"), -20.7),
    "breakout": GameSpec("breakout", "breakout", (0, 1, 2, 3),
                         ("NOOP", "FIRE", "RIGHT", "LEFT"), 1.7),
    "space_invaders": GameSpec("space_invaders", "space_invaders", (0, 1, 2, 3, 4, 5),
                               ("NOOP", "FIRE", "RIGHT", "LEFT", "RIGHTFIRE", "LEFTFIRE"),
                               148.0),
}


def get_game(name: str) -> GameSpec:
  """The spec of ``name``, or a ValueError listing the known games."""
  try:
    return GAMES[name]
  except KeyError:
    raise ValueError(f"Unknown game {name!r}; known games: {', '.join(sorted(GAMES))}.") from None


class VectorEnv:
  """``num_envs`` preprocessed copies of a game (ale_py's C++ vector env).

  Observations are ``uint8 [num_envs, 84, 84, 4]`` (NHWC, oldest frame first);
  actions are indices into the game's ``action_set``. Finished episodes reset
  in the same step (the returned observation starts the new episode).
  """

  def __init__(self, spec: GameSpec, num_envs: int, seed: int, num_threads: int = 1,
               max_frames_per_episode: int = 108_000):
    from ale_py.vector_env import AtariVectorEnv  # pylint: disable=g-import-not-at-top
    self.spec = spec
    self.num_envs = num_envs
    self._env = AtariVectorEnv(
        spec.rom, num_envs=num_envs, num_threads=num_threads, img_height=84, img_width=84,
        grayscale=True, stack_num=4, frameskip=4, maxpool=True, noop_max=30,
        repeat_action_probability=0.0, full_action_space=False, episodic_life=False,
        life_loss_info=False, reward_clipping=False, use_fire_reset=True,
        autoreset_mode="SameStep", max_num_frames_per_episode=max_frames_per_episode)
    minimal = self._env.single_action_space.n
    if max(spec.action_set) >= minimal:
      raise ValueError(f"{spec.name}: action_set {spec.action_set} exceeds the minimal "
                       f"action set of size {minimal}.")
    self._action_map = np.asarray(spec.action_set, np.int64)
    self._seed = seed
    self._lives = None
    self.episode_returns = np.zeros(num_envs)
    self.episode_lengths = np.zeros(num_envs, np.int64)

  def reset(self) -> np.ndarray:
    obs, info = self._env.reset(seed=self._seed)
    self._lives = np.asarray(info["lives"])
    self.episode_returns[:] = 0
    self.episode_lengths[:] = 0
    return np.transpose(obs, (0, 2, 3, 1))

  def step(self, actions: np.ndarray):
    """Returns ``(obs, reward, game_over, life_lost, finished)``.

    ``finished`` lists ``(env index, score, length in agent steps)`` of episodes
    that ended in this step.
    """
    obs, reward, terminated, truncated, info = self._env.step(self._action_map[actions])
    game_over = np.logical_or(terminated, truncated)
    lives = np.asarray(info["lives"])
    life_lost = np.logical_and(lives < self._lives, ~game_over)
    self._lives = lives
    self.episode_returns += reward
    self.episode_lengths += 1
    finished = [(int(i), float(self.episode_returns[i]), int(self.episode_lengths[i]))
                for i in np.flatnonzero(game_over)]
    self.episode_returns[game_over] = 0
    self.episode_lengths[game_over] = 0
    return (np.transpose(obs, (0, 2, 3, 1)), np.asarray(reward, np.float32), game_over,
            life_lost, finished)

  def close(self):
    self._env.close()

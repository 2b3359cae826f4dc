"""Distillation datasets (SM section 3): teacher rollouts stored compactly.

One file per game, ``<data_dir>/<game>.npz`` (compressed):

* ``frames``: ``uint8 [F, 84, 84]``, each distinct frame stored once;
* ``stacks``: ``int32 [S, 4]``, the frames of state i's 4-frame history
  (oldest first), so states are rebuilt as ``frames[stacks]``;
* ``log_probs``: ``float32 [S, A]``, the teacher's log-probabilities;
* ``actions``: ``int32 [S]``, the action taken; ``rewards``: ``float32 [S]``;
* ``episodes``: ``int32 [S]``, episode id (increasing in time);
* ``meta``: JSON (game, teacher checkpoint, protocol).

Files are written to a temporary name and renamed when complete; a truncated or
corrupt file is refused with an error naming it.

Splits follow SM section 3: time-wise, whole episodes, so test frames come from
other episodes than training frames; a validation split (for learning-rate
selection) is carved from the end of the training side, again by episodes.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from sobolev_tf import files

__all__ = ["DistillationData", "StackedFrameWriter", "save", "load", "read_meta",
           "split_by_episodes", "Splits"]

_KEYS = ("frames", "stacks", "log_probs", "actions", "rewards", "episodes")


@dataclasses.dataclass
class DistillationData:
  frames: np.ndarray
  stacks: np.ndarray
  log_probs: np.ndarray
  actions: np.ndarray
  rewards: np.ndarray
  episodes: np.ndarray
  meta: Dict

  def __len__(self) -> int:
    return len(self.stacks)

  def states(self, index) -> np.ndarray:
    """``uint8 [len(index), 84, 84, 4]`` states rebuilt from the stored frames."""
    return np.moveaxis(self.frames[self.stacks[index]], 1, -1)

  def validate(self, name: str = "dataset") -> None:
    s = len(self.stacks)
    if self.frames.ndim != 3 or self.frames.dtype != np.uint8:
      raise ValueError(f"{name}: frames must be uint8 [F, 84, 84], got {self.frames.dtype} "
                       f"{self.frames.shape}.")
    if self.stacks.shape != (s, 4):
      raise ValueError(f"{name}: stacks must be [S, 4], got {self.stacks.shape}.")
    for key in ("log_probs", "actions", "rewards", "episodes"):
      if len(getattr(self, key)) != s:
        raise ValueError(f"{name}: {key} has {len(getattr(self, key))} entries, stacks {s}.")
    if s and (self.stacks.min() < 0 or self.stacks.max() >= len(self.frames)):
      raise ValueError(f"{name}: stacks index frames outside [0, {len(self.frames)}).")
    if s and np.any(np.diff(self.episodes) < 0):
      raise ValueError(f"{name}: episode ids must be non-decreasing in time.")
    if not np.all(np.isfinite(self.log_probs)):
      raise ValueError(f"{name}: log_probs contains NaN or Inf.")


class StackedFrameWriter:
  """Accumulates states of one environment, storing each new frame once."""

  def __init__(self):
    self.frames, self.stacks, self.log_probs = [], [], []
    self.actions, self.rewards, self.episodes = [], [], []
    self._current: Optional[list] = None

  def add(self, state: np.ndarray, log_probs: np.ndarray, action: int, reward: float,
          episode: int, new_episode: bool) -> None:
    """``state``: ``uint8 [84, 84, 4]``; ``new_episode`` when it starts an episode."""
    if new_episode or self._current is None:
      ids = []
      for k in range(4):
        self.frames.append(state[..., k])
        ids.append(len(self.frames) - 1)
      self._current = ids
    else:
      self.frames.append(state[..., 3])
      self._current = self._current[1:] + [len(self.frames) - 1]
    self.stacks.append(list(self._current))
    self.log_probs.append(log_probs)
    self.actions.append(action)
    self.rewards.append(reward)
    self.episodes.append(episode)

  def build(self, meta: Dict) -> DistillationData:
    return DistillationData(
        frames=np.asarray(self.frames, np.uint8).reshape(-1, 84, 84),
        stacks=np.asarray(self.stacks, np.int32).reshape(-1, 4),
        log_probs=np.asarray(self.log_probs, np.float32),
        actions=np.asarray(self.actions, np.int32),
        rewards=np.asarray(self.rewards, np.float32),
        episodes=np.asarray(self.episodes, np.int32), meta=dict(meta))


def save(data: DistillationData, path: str) -> None:
  """Writes ``path`` (.npz) atomically: temporary name, then rename."""
  data.validate(path)
  files.save_npz_atomic(path, compressed=True,
                     meta=np.frombuffer(json.dumps(data.meta).encode(), np.uint8),
                     **{k: getattr(data, k) for k in _KEYS})


def _read(path: str, keys: Sequence[str]) -> Tuple[Dict[str, np.ndarray], Dict]:
  """The arrays ``keys`` and the meta of ``path``; a missing or corrupt file is a ValueError."""
  if not os.path.exists(path):
    raise ValueError(f"No distillation dataset at {path}; collect one with "
                     "scripts/collect_atari.py --game=... --data_dir=...")
  arrays = files.load_npz(path, (*keys, "meta"), "collect it again.")
  meta = arrays.pop("meta")
  try:
    return arrays, json.loads(bytes(meta).decode())
  except ValueError as e:
    raise ValueError(f"{path} is truncated or corrupt (its meta is not JSON: {e}); collect it "
                     "again.") from e


def read_meta(path: str) -> Dict:
  """Only the meta of a dataset (game, teacher, protocol), without reading its frames."""
  return _read(path, ())[1]


def load(path: str) -> DistillationData:
  """Reads and validates a dataset; a missing, truncated or corrupt file is a ValueError."""
  arrays, meta = _read(path, _KEYS)
  data = DistillationData(meta=meta, **arrays)
  data.validate(path)
  return data


@dataclasses.dataclass
class Splits:
  train: np.ndarray
  validation: np.ndarray
  test: np.ndarray


def _cut(indices: np.ndarray, episodes: np.ndarray, k: int):
  """First k states of ``indices``, and the states of later episodes only."""
  k = min(max(k, 1), len(indices))
  boundary = episodes[indices[k - 1]]
  return indices[:k], indices[episodes[indices] > boundary]


def split_by_episodes(episodes: np.ndarray, train_fraction: float,
                      validation_fraction: float = 0.1) -> Splits:
  """Time-wise split by episodes (SM section 3): train | validation | test.

  Training: the first ``train_fraction`` of the states in time (the rest of the
  episode in which it stops is dropped). Validation, for learning-rate
  selection: the whole episodes that follow, at least ``validation_fraction`` of
  all states (none if 0). Test: every later episode. No episode is on two sides;
  at small fractions (1% of 100K Pong states is part of one episode) validation
  exists all the same.
  """
  if not 0 < train_fraction < 1:
    raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}.")
  if not 0 <= validation_fraction < 1:
    raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}.")
  episodes = np.asarray(episodes)
  everything = np.arange(len(episodes))
  train, rest = _cut(everything, episodes, int(round(train_fraction * len(episodes))))
  validation = np.array([], np.int64)
  if validation_fraction > 0 and len(rest):
    k = min(max(int(np.ceil(validation_fraction * len(episodes))), 1), len(rest))
    boundary = episodes[rest[k - 1]]
    validation, rest = rest[episodes[rest] <= boundary], rest[episodes[rest] > boundary]
  if not len(rest):
    raise ValueError(f"train_fraction={train_fraction} and validation_fraction="
                     f"{validation_fraction} leave no later episode for testing "
                     f"({len(np.unique(episodes))} episodes in all).")
  return Splits(train=train, validation=validation, test=rest)

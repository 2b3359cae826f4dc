"""Helpers of the kill-and-resume child processes (``python -c`` scripts run from the repo root).

``sigkill_at_checkpoint`` makes the process die the way a preempted job dies: a
real SIGKILL, after an evaluation was logged and before its checkpoint.
``fixed_teacher`` gives every process the same teacher without a global seed.
"""

import os
import signal
from typing import Callable

import numpy as np
import tensorflow as tf

from sobolev_tf import training
from sobolev_tf.atari import networks


def sigkill_at_checkpoint(when: Callable[[int, int], bool]) -> None:
  """SIGKILLs this process at the first ``PeriodicCheckpointer.maybe_save(step)`` where
  ``when(step, calls)`` holds (``calls``: 1 for the first call, 2 for the next...)."""
  save = training.PeriodicCheckpointer.maybe_save
  calls = [0]

  def maybe_save(self, step, force=False):
    calls[0] += 1
    if when(step, calls[0]):
      os.kill(os.getpid(), signal.SIGKILL)
    return save(self, step, force)

  training.PeriodicCheckpointer.maybe_save = maybe_save


def fixed_teacher(num_actions: int, seed: int) -> networks.AtariTeacher:
  """An ``AtariTeacher`` with weights ``N(0, 0.05^2)`` from a numpy ``seed``."""
  teacher = networks.AtariTeacher(num_actions)
  teacher(tf.zeros([1, 84, 84, 4], tf.uint8))
  rng = np.random.default_rng(seed)
  for v in teacher.variables:
    v.assign(rng.normal(0.0, 0.05, v.shape).astype(v.dtype.as_numpy_dtype))
  return teacher

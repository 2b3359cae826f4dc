r"""Milliseconds per step of the real distillation trainer on a recorded dataset (not a test).

Times ``sobolev_tf.atari.distill.Distiller`` on batches of 200 states of a
collected dataset with its teacher, three ways: regular; Sobolev with the
teacher's cached input Jacobians; Sobolev with the teacher differentiated at
every step. Each with the batch assembled in numpy and fed to ``train_step``
(how the trainer worked before) and gathered in the graph by
``train_step_on_rows`` (how it works now).

    python scripts/benchmark_distill_trainer.py --data=data/distillation/pong.npz \
        --teacher=teachers/pong --game=pong

Run it alone: a second heavy process on the 2 cores distorts every number.
"""

import time

from absl import app
from absl import flags
import numpy as np

import sobolev_tf  # First: it imports TensorFlow without its C++ start-up lines.
import tensorflow as tf  # pylint: disable=g-import-not-at-top

from sobolev_tf.atari import dataset  # pylint: disable=g-import-not-at-top
from sobolev_tf.atari import distill  # pylint: disable=g-import-not-at-top
from sobolev_tf.atari import train_teacher  # pylint: disable=g-import-not-at-top

_DATA = flags.DEFINE_string("data", None, "Dataset written by collect_atari.py.", required=True)
_TEACHER = flags.DEFINE_string("teacher", None, "Teacher directory (teachers/<game>).",
                               required=True)
_GAME = flags.DEFINE_string("game", "pong", "Game of the teacher.")
_FRACTION = flags.DEFINE_float("train_fraction", 0.05, "Training fraction (cache size).")
_STEPS = flags.DEFINE_integer("steps", 20, "Timed steps per measurement (after 3 warm-up).")


def main(argv):
  del argv
  data = dataset.load(_DATA.value)
  splits = dataset.split_by_episodes(data.episodes, _FRACTION.value, 0.1)
  teacher, _ = train_teacher.load_teacher(_TEACHER.value, _GAME.value)
  num_actions = data.log_probs.shape[1]
  train_set = dict(frames=tf.constant(data.frames),
                   stacks=tf.constant(data.stacks[splits.train].astype(np.int32)),
                   teacher_log_probs=tf.constant(data.log_probs[splits.train]))
  print(f"{_DATA.value}: {len(splits.train):,} training states, {num_actions} actions, "
        f"batch 200, {_STEPS.value} timed steps")
  for name, method, cached in (("regular", "regular", False),
                               ("sobolev, cached Jacobians", "sobolev", True),
                               ("sobolev, teacher on the fly", "sobolev", False)):
    d = distill.Distiller(num_actions, method, 1e-4, 1.0, teacher, seed=0)
    cache = distill.teacher_jacobians(d, data, splits.train) if cached else None
    cache_t = None if cache is None else tf.constant(cache)
    times = {}
    for mode in ("numpy batch", "in-graph gather"):
      def run(first, n, mode=mode):
        for step in range(first, first + n):
          rows = np.sort(np.random.default_rng([0, step]).choice(len(splits.train), 200))
          if mode == "numpy batch":
            idx = splits.train[rows]
            m = d.train_step(tf.constant(data.states(idx)), tf.constant(data.log_probs[idx]),
                             None if cache is None else tf.constant(cache[rows]))
          else:
            extra = {} if cache_t is None else {"teacher_jacobians": cache_t}
            m = d.train_step_on_rows(tf.constant(rows, tf.int32), **train_set, **extra)
        float(m["total"])
      run(0, 3)
      t0 = time.perf_counter()
      run(3, _STEPS.value)
      times[mode] = (time.perf_counter() - t0) / _STEPS.value * 1e3
    print(f"| {name} | {times['numpy batch']:.1f} | {times['in-graph gather']:.1f} |",
          flush=True)


if __name__ == "__main__":
  app.run(main)

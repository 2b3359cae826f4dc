"""Distillation datasets: write/read round trip, splits by episode, corrupt files."""

import os

import numpy as np
import tensorflow as tf

from sobolev_tf.atari import collect
from sobolev_tf.atari import dataset


def _synthetic(num_states=40, episode_length=7, seed=0):
  """A writer fed with random frame histories, and the states it was given."""
  rng = np.random.default_rng(seed)
  writer = dataset.StackedFrameWriter()
  states = []
  for i in range(num_states):
    new = i % episode_length == 0
    if new:
      state = rng.integers(0, 255, (84, 84, 4), dtype=np.uint8)
    else:
      state = np.concatenate([state[..., 1:], rng.integers(0, 255, (84, 84, 1), np.uint8)], -1)
    writer.add(state, np.log(np.full(3, 1 / 3)), i % 3, 0.0, i // episode_length, new)
    states.append(state)
  return writer, np.stack(states)


class DatasetTest(tf.test.TestCase):

  def test_round_trip_rebuilds_every_state_and_stores_frames_once(self):
    writer, states = _synthetic()
    data = writer.build({"game": "pong"})
    self.assertEqual(len(data.frames), 40 + 3 * 6)  # 1 new frame per step + 3 per episode start.
    path = os.path.join(self.create_tempdir().full_path, "pong.npz")
    dataset.save(data, path)
    self.assertFalse(os.path.exists(path + ".tmp.npz"))
    back = dataset.load(path)
    self.assertEqual(back.meta, {"game": "pong"})
    np.testing.assert_array_equal(back.states(np.arange(40)), states)

  def test_refuses_truncated_corrupt_and_missing_files(self):
    data = _synthetic()[0].build({})
    path = os.path.join(self.create_tempdir().full_path, "pong.npz")
    dataset.save(data, path)
    with open(path, "rb") as f:
      blob = f.read()
    with open(path, "wb") as f:
      f.write(blob[:len(blob) // 2])
    with self.assertRaisesRegex(ValueError, "pong.npz is truncated or corrupt"):
      dataset.load(path)
    with self.assertRaisesRegex(ValueError, "No distillation dataset at"):
      dataset.load(path + ".missing")
    data.stacks[0, 0] = 10**6
    with self.assertRaisesRegex(ValueError, "outside"):
      dataset.save(data, path)

  def test_splits_are_disjoint_by_episode(self):
    episodes = np.repeat(np.arange(20), 50)
    for fraction in (0.01, 0.1, 0.5):
      s = dataset.split_by_episodes(episodes, fraction, validation_fraction=0.2)
      self.assertLen(s.train, int(round(fraction * 1000)))
      self.assertGreaterEqual(len(s.validation), 200)
      train_eps, val_eps, test_eps = (set(episodes[i]) for i in (s.train, s.validation, s.test))
      self.assertFalse(train_eps & test_eps)
      self.assertFalse(val_eps & test_eps)
      self.assertFalse(train_eps & val_eps)
      self.assertLess(max(s.train), min(s.validation))
      self.assertLess(max(s.validation), min(s.test))
    s = dataset.split_by_episodes(episodes, 0.5, validation_fraction=0.1)
    self.assertAllEqual(s.train, np.arange(500))             # Episodes 0-9.
    self.assertAllEqual(s.validation, np.arange(500, 600))   # Episodes 10-11.
    self.assertAllEqual(s.test, np.arange(600, 1000))        # Episodes 12-19.
    s = dataset.split_by_episodes(episodes, 0.01)            # 10 states inside episode 0.
    self.assertAllEqual(s.train, np.arange(10))
    self.assertAllEqual(s.validation, np.arange(50, 150))    # Episodes 1-2.
    self.assertAllEqual(s.test, np.arange(150, 1000))
    s = dataset.split_by_episodes(episodes, 0.01, validation_fraction=0.0)
    self.assertEmpty(s.validation)
    self.assertAllEqual(s.test, np.arange(50, 1000))
    with self.assertRaisesRegex(ValueError, "train_fraction"):
      dataset.split_by_episodes(episodes, 1.5)
    with self.assertRaisesRegex(ValueError, "no later episode"):
      dataset.split_by_episodes(np.zeros(10, np.int64), 0.5)
    with self.assertRaisesRegex(ValueError, "no later episode"):
      dataset.split_by_episodes(np.repeat(np.arange(3), 10), 0.3, validation_fraction=0.5)

  def test_collect_a_few_real_states(self):
    logits = lambda s: tf.zeros([tf.shape(s)[0], 3])
    data = collect.collect(logits, "pong", 30, seed=0)
    self.assertLen(data, 30)
    self.assertEqual(len(data.frames), 30 + 3)
    self.assertAllClose(data.log_probs, np.log(np.full((30, 3), 1 / 3)), atol=1e-6)
    states = data.states(np.arange(30))
    np.testing.assert_array_equal(states[1:, ..., :3], states[:-1, ..., 1:])


if __name__ == "__main__":
  tf.test.main()

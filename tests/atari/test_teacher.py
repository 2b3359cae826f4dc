"""Game specs, real environment steps, the A2C update, and checkpoint resume."""

import os

import numpy as np
import tensorflow as tf

from configs import teacher as teacher_configs
from sobolev_tf import atari
from sobolev_tf.atari import a2c
from sobolev_tf.atari import train_teacher


class GamesTest(tf.test.TestCase):

  def test_specs(self):
    self.assertEqual({g: s.num_actions for g, s in atari.GAMES.items()},
                     {"pong": 3, "breakout": 4, "space_invaders": 6})
    with self.assertRaisesRegex(ValueError, "Unknown game 'tetris'.*breakout"):
      atari.get_game("tetris")

  def test_real_environment_steps(self):
    for name, spec in atari.GAMES.items():
      env = atari.VectorEnv(spec, num_envs=2, seed=0)
      obs = env.reset()
      self.assertEqual(obs.shape, (2, 84, 84, 4))
      self.assertEqual(obs.dtype, np.uint8)
      for _ in range(5):
        obs, reward, game_over, life_lost, finished = env.step(
            np.array([spec.num_actions - 1, 0]))
      self.assertEqual(obs.shape, (2, 84, 84, 4))
      self.assertEqual(reward.shape, (2,))
      self.assertGreater(int(obs.max()), 0, msg=name)
      env.close()


class A2CTest(tf.test.TestCase):

  def test_n_step_returns(self):
    rewards = tf.constant([[1.0], [0.0], [2.0]])
    dones = tf.constant([[False], [True], [False]])
    returns = a2c.n_step_returns(rewards, dones, tf.constant([10.0]), 0.5)
    # R2 = 2 + 0.5*10 = 7; R1 = 0 (done); R0 = 1 + 0.5*0 = 1.
    self.assertAllClose(returns[:, 0], [1.0, 0.0, 7.0])

  def test_one_update_on_a_tiny_rollout_changes_the_network(self):
    tf.random.set_seed(0)
    learner = a2c.A2CLearner(3)
    frames = tf.random.stateless_uniform([2, 3, 84, 84, 4], seed=[0, 1], maxval=255,
                                         dtype=tf.int32)
    frames = tf.cast(frames, tf.uint8)
    actions = learner.act(frames[0], tf.constant([0, 0], tf.int64))
    self.assertEqual(actions.shape, [3])
    before = [v.numpy() for v in learner.net.trainable_variables]
    metrics = learner.update(frames, tf.constant([[0, 1, 2], [2, 1, 0]], tf.int64),
                             tf.constant([[1.0, 0.0, -1.0], [0.0, 0.0, 5.0]]),
                             tf.zeros([2, 3], tf.bool), frames[1])
    self.assertTrue(np.isfinite(float(metrics["loss"])))
    after = learner.net.trainable_variables
    self.assertTrue(any(np.abs(a.numpy() - b).max() > 0 for a, b in zip(after, before)))
    # A zero learning rate (the end of the linear schedule) freezes the network,
    # and the next update without an override uses hparams' rate again.
    before = [v.numpy() for v in learner.net.trainable_variables]
    learner.update(frames, tf.constant([[0, 1, 2], [2, 1, 0]], tf.int64),
                   tf.constant([[1.0, 0.0, -1.0], [0.0, 0.0, 5.0]]),
                   tf.zeros([2, 3], tf.bool), frames[1], tf.constant(0.0))
    for a, b in zip(learner.net.trainable_variables, before):
      self.assertAllEqual(a, b)
    self.assertEqual(learner.optimizer.learning_rate, a2c.A2CHyperparams().learning_rate)
    learner.update(frames, tf.constant([[0, 1, 2], [2, 1, 0]], tf.int64),
                   tf.constant([[1.0, 0.0, -1.0], [0.0, 0.0, 5.0]]),
                   tf.zeros([2, 3], tf.bool), frames[1])
    after = learner.net.trainable_variables
    self.assertTrue(any(np.abs(a.numpy() - b).max() > 0 for a, b in zip(after, before)))

  def test_learning_rate_schedules(self):
    config = teacher_configs.get_config("pong")
    self.assertEqual(config.learning_rate_schedule, "constant")
    self.assertEqual(train_teacher.learning_rate_at(config, 10**9), config.learning_rate)
    config = teacher_configs.get_config("space_invaders")
    self.assertEqual(config.learning_rate_schedule, "linear")
    self.assertAlmostEqual(train_teacher.learning_rate_at(config, 0), 7e-4)
    self.assertAlmostEqual(train_teacher.learning_rate_at(config, config.total_frames // 4),
                           7e-4 * 0.75)
    self.assertEqual(train_teacher.learning_rate_at(config, config.total_frames), 0.0)
    config.learning_rate_schedule = "cosine"
    with self.assertRaisesRegex(ValueError, "Unknown learning_rate_schedule 'cosine'"):
      train_teacher.learning_rate_at(config, 0)


class ResumeTest(tf.test.TestCase):

  def test_checkpoint_kill_and_resume_continue_the_same_run(self):
    workdir = self.create_tempdir().full_path
    config = teacher_configs.get_config("quick")
    first = train_teacher.train_and_evaluate(config, workdir, log=lambda s: None)
    self.assertEqual(first["frames"], config.total_frames)
    config.total_frames *= 2
    # Resuming under another schedule (as Space Invaders did) restores the same
    # checkpoint: the rate is not part of it.
    config.learning_rate_schedule = "linear"
    messages = []
    second = train_teacher.train_and_evaluate(config, workdir, log=messages.append)
    self.assertTrue(any("resumed from" in m for m in messages))
    self.assertEqual(second["frames"], config.total_frames)
    self.assertTrue(os.path.exists(os.path.join(workdir, "episodes.csv")))
    net, path = train_teacher.load_teacher(workdir, "pong")
    self.assertIn("checkpoints", path)
    self.assertEqual(net(tf.zeros([1, 84, 84, 4], tf.uint8)).shape, [1, 3])
    with self.assertRaisesRegex(ValueError, "No teacher checkpoint in"):
      train_teacher.load_teacher(self.create_tempdir().full_path, "pong")
    # Shipped teachers: weights only, loaded by the same function.
    shipped = os.path.join(self.create_tempdir().full_path, "pong")
    train_teacher.save_teacher_weights(net, shipped)
    self.assertEqual(os.listdir(shipped), ["weights"])
    self.assertCountEqual([n.split(".")[0] for n in os.listdir(os.path.join(shipped, "weights"))],
                          ["weights"] * 2)
    train_teacher.save_teacher_weights(net, shipped)  # Replaces them.
    reloaded, path = train_teacher.load_teacher(shipped, "pong")
    self.assertEqual(path, os.path.join(shipped, "weights", "weights"))
    frames = tf.cast(tf.random.stateless_uniform([2, 84, 84, 4], [1, 2], maxval=255,
                                                 dtype=tf.int32), tf.uint8)
    self.assertAllClose(reloaded(frames), net(frames))
    with self.assertRaisesRegex(ValueError, "holds a teacher of 3 actions \\(pong\\), not of "
                                "breakout \\(4 actions\\): pass --game=pong"):
      train_teacher.load_teacher(shipped, "breakout")

  def test_episodes_logged_after_the_checkpoint_are_dropped_on_resume(self):
    workdir = self.create_tempdir().full_path
    config = teacher_configs.get_config("quick")
    train_teacher.train_and_evaluate(config, workdir, log=lambda s: None)
    path = os.path.join(workdir, "episodes.csv")
    with open(path) as f:
      header, *rows = f.read().splitlines()
    self.assertEqual(header, "frames,score,length")
    # A killed run's episode past its checkpoint, played again after resume.
    with open(path, "a") as f:
      f.write(f"{config.total_frames + 4},-21.0,100\n")
    config.total_frames *= 2
    train_teacher.train_and_evaluate(config, workdir, log=lambda s: None)
    with open(path) as f:
      _, *resumed = f.read().splitlines()
    self.assertEqual(resumed[:len(rows)], rows)
    self.assertNotIn(f"{config.total_frames // 2 + 4},-21.0,100", resumed)
    frames = [int(r.split(",")[0]) for r in resumed]
    self.assertEqual(frames, sorted(frames))
    self.assertTrue(os.listdir(os.path.join(workdir, "tb")))

  def test_corrupt_checkpoint_is_refused(self):
    workdir = self.create_tempdir().full_path
    config = teacher_configs.get_config("quick")
    train_teacher.train_and_evaluate(config, workdir, log=lambda s: None)
    ckpt_dir = os.path.join(workdir, "checkpoints")
    for name in os.listdir(ckpt_dir):
      if ".data-" in name:
        with open(os.path.join(ckpt_dir, name), "wb") as f:
          f.write(b"not a checkpoint")
    config.total_frames *= 2
    with self.assertRaisesRegex(ValueError, "Corrupt or incompatible checkpoint"):
      train_teacher.train_and_evaluate(config, workdir, log=lambda s: None)

  def test_unknown_game(self):
    with self.assertRaisesRegex(ValueError, "Unknown teacher config variant"):
      teacher_configs.get_config("tetris")



class EvaluationTest(tf.test.TestCase):

  def test_scores_full_games(self):
    from sobolev_tf.atari import evaluation  # pylint: disable=g-import-not-at-top
    noop = lambda frames: tf.one_hot(tf.zeros([tf.shape(frames)[0]], tf.int32), 3) * 10.0
    result = evaluation.evaluate_policy(noop, "pong", num_episodes=2, num_envs=2, greedy=True)
    self.assertEqual(result["episodes"], 2)
    self.assertLessEqual(result["mean"], -20.0)  # A paddle that never moves loses 21 (or 20) to 0.
    with self.assertRaisesRegex(ValueError, "num_episodes"):
      evaluation.evaluate_policy(noop, "pong", num_episodes=0)


if __name__ == "__main__":
  tf.test.main()

"""Training loop of the Atari teachers: A2C with checkpoints, resume, TensorBoard.

Training state (network, optimiser, update count, frames, RNG counter) lives in a
``tf.train.Checkpoint`` under ``workdir/checkpoints``; a killed run resumes at its
last checkpoint (environments restart their episodes; nothing learned is lost).
That resume is not bit-exact by choice: exactness would need every emulator's
state (``cloneState``), frame stack and episode statistics in the checkpoint,
for a teacher that is trained once and judged by its scores, not its trajectory.
Episode scores go to ``workdir/episodes.csv`` (frames, score, length), the
learning curve of ``results/teachers.md``, and training scalars to TensorBoard
(``workdir/tb``), through one ``loggers.MetricsLogger``; a resumed run first
drops the rows its killed predecessor logged after the checkpoint.
"""

from __future__ import annotations

import os
import time
from typing import Callable, Optional

import numpy as np
import tensorflow as tf

from sobolev_tf.atari import a2c
from sobolev_tf.atari import games
from sobolev_tf.atari import networks
from sobolev_tf import checks
from sobolev_tf import files
from sobolev_tf import loggers
from sobolev_tf import training
from sobolev_tf.training import PeriodicCheckpointer
from sobolev_tf.training import restore_checkpoint

__all__ = ["train_and_evaluate", "load_teacher", "save_teacher_weights", "learning_rate_at",
           "FRAMES_PER_STEP", "LEARNING_RATE_SCHEDULES"]

FRAMES_PER_STEP = 4  # Action repeat: one agent step is 4 emulator frames.
WEIGHTS = "weights"  # Shipped teachers: <dir>/weights/weights.index, weights.data-*.


def _hparams(config) -> a2c.A2CHyperparams:
  return a2c.A2CHyperparams(
      learning_rate=config.learning_rate, discount=config.discount,
      value_coef=config.value_coef, entropy_coef=config.entropy_coef,
      max_grad_norm=config.max_grad_norm)


LEARNING_RATE_SCHEDULES = ("constant", "linear")


def learning_rate_at(config, frames: int) -> float:
  """The learning rate after ``frames`` emulator frames.

  ``config.learning_rate_schedule``: ``"constant"`` keeps ``config.learning_rate``;
  ``"linear"`` decays it to 0 at ``config.total_frames``, as OpenAI baselines' A2C
  does. A constant rate leaves the agent adapting within each game, so a frozen
  snapshot can score far below its training curve
  (results/teachers_frozen_vs_learning.md); the decay ends training on a policy
  that is the frozen one.
  """
  schedule = config.get("learning_rate_schedule", "constant")
  if schedule == "constant":
    return float(config.learning_rate)
  if schedule == "linear":
    return float(config.learning_rate) * max(0.0, 1.0 - frames / config.total_frames)
  raise ValueError(f"Unknown learning_rate_schedule {schedule!r}: use one of "
                   f"{', '.join(LEARNING_RATE_SCHEDULES)}.")


def make_checkpoint(learner: a2c.A2CLearner):
  frames = tf.Variable(0, dtype=tf.int64, name="frames")
  rng_counter = tf.Variable(0, dtype=tf.int64, name="rng_counter")
  ckpt = tf.train.Checkpoint(net=learner.net, optimizer=learner.optimizer,
                             num_updates=learner.num_updates, frames=frames,
                             rng_counter=rng_counter)
  return ckpt, frames, rng_counter


def _weights_path(directory: str) -> Optional[str]:
  """The weights-only checkpoint in ``directory``, if any: ``weights/weights`` (written by
  ``save_teacher_weights``), else ``weights`` (the layout before it had its own directory)."""
  inner = files.directory_to_read(os.path.join(directory, WEIGHTS))
  for prefix in (os.path.join(inner, WEIGHTS), os.path.join(directory, WEIGHTS)):
    if os.path.exists(prefix + ".index"):
      return prefix
  return None


def load_teacher(workdir: str, game: str):
  """The trained teacher network of ``game`` from ``workdir``.

  ``workdir`` is a training workdir (its latest checkpoint) or a shipped teacher
  directory holding weights only (``weights/``, written by
  ``save_teacher_weights``). Returns ``(net, path)``; a ValueError names the
  directory if it holds neither, and the game or network a checkpoint holds if
  it is not a teacher of ``game``.
  """
  spec = games.get_game(game)
  learner = a2c.A2CLearner(spec.num_actions)
  ckpt_dir = os.path.join(workdir, "checkpoints")
  path = tf.train.latest_checkpoint(ckpt_dir)
  written = path is None
  path = path or _weights_path(workdir)
  if path is None:
    raise ValueError(f"No teacher checkpoint in {ckpt_dir} and no {WEIGHTS}/ in "
                     f"{workdir}; train one with scripts/train_teacher.py "
                     f"--config=configs/teacher.py:{game}.")
  networks.check_policy_checkpoint(
      path, "teacher", spec.num_actions, spec.name,
      "give a teacher's workdir (scripts/export_policy.py exports a student with --student).")
  learner.net.logits_and_value(tf.zeros([1, 84, 84, 4], tf.uint8))
  restore_checkpoint(tf.train.Checkpoint(net=learner.net), path, written=written)
  return learner.net, path


# What ``save_teacher_weights`` writes in ``<directory>/weights/`` (one data file per shard).
_WEIGHT_FILES = (WEIGHTS + ".index", WEIGHTS + ".data-*")


def check_weights_destination(directory: str) -> None:
  """Raises, before any work, the ValueError ``save_teacher_weights(net, directory)`` would
  (``directory/weights`` or its leftovers holding other files)."""
  files.check_directory_write(os.path.join(directory.rstrip("/"), WEIGHTS), _WEIGHT_FILES,
                              "a teacher's weights")


def save_teacher_weights(net: tf.Module, directory: str) -> str:
  """Writes the network's weights only (no optimiser state) as ``directory/weights/``.

  The weights are two files (index and data) that must change together, so they
  live in a directory of their own, replaced whole by ``files.write_directory_atomic``:
  a write killed at any point leaves the earlier weights or the new ones.
  Returns the checkpoint's path (``load_teacher`` reads it).
  """
  target = os.path.join(directory.rstrip("/"), WEIGHTS)
  files.write_directory_atomic(
      target, lambda tmp: tf.train.Checkpoint(net=net).write(os.path.join(tmp, WEIGHTS)),
      _WEIGHT_FILES, "a teacher's weights")
  return os.path.join(target, WEIGHTS)


def restore_or_initialize(ckpt, manager, log) -> None:
  if not manager.latest_checkpoint:
    return
  restore_checkpoint(ckpt, manager.latest_checkpoint,
                     "Move it away to start again, or point --workdir elsewhere.")
  log(f"resumed from {manager.latest_checkpoint} at {int(ckpt.frames.numpy())} frames")


EPISODE_COLUMNS = ("frames", "score", "length")  # episodes.csv, one row per finished game.
EPISODE_TYPES = dict(frames=int, score=float, length=int)


def train_and_evaluate(config, workdir: str, log: Callable[[str], None] = print,
                       max_seconds: Optional[float] = None) -> dict:
  """Trains a teacher for ``config.game`` until ``config.total_frames`` (or ``max_seconds``)."""
  spec = games.get_game(config.game)
  learning_rate_at(config, 0)  # Rejects an unknown schedule before any work.
  checks.check_config(config, positive=("total_frames", "num_envs", "rollout_length",
                                        "learning_rate"),
                      non_negative=("checkpoint_minutes", "log_seconds"))
  if not 0 < config.discount <= 1:
    raise ValueError(f"config.discount must be in (0, 1], got {config.discount!r}.")
  checks.check_writable_directory(workdir, "checkpoints and episodes")
  learner = a2c.A2CLearner(spec.num_actions, _hparams(config))
  ckpt, frames, rng_counter = make_checkpoint(learner)
  manager = tf.train.CheckpointManager(ckpt, os.path.join(workdir, "checkpoints"),
                                       max_to_keep=2)
  training.check_same_config(os.path.join(workdir, "run_config.json"), config.to_dict(),
                             resuming=manager.latest_checkpoint is not None,
                             # A teacher may be trained on under a new rate schedule.
                             ignore=("total_frames", "max_hours", "checkpoint_minutes",
                                     "log_seconds", "num_threads", "learning_rate",
                                     "learning_rate_schedule"),
                             hint="Use another --workdir.")
  # Create every variable (network, optimiser slots) before restoring, so that
  # assert_existing_objects_matched covers all of them. A zero-gradient RMSProp
  # step from the initial state changes nothing.
  learner.net.logits_and_value(tf.zeros([1, 84, 84, 4], tf.uint8))
  if manager.latest_checkpoint:
    variables = learner.net.trainable_variables
    learner.optimizer.apply([tf.zeros_like(v) for v in variables], variables)
  restore_or_initialize(ckpt, manager, log)
  start_frames = int(frames.numpy())
  # Episodes logged after the checkpoint are dropped: the resumed run plays those frames again.
  metrics_log = loggers.MetricsLogger(workdir, "episodes.csv", EPISODE_COLUMNS,
                                      types=EPISODE_TYPES, step_column="frames",
                                      start_step=start_frames, key_columns=None)
  progress = loggers.Progress(config.total_frames, f"[{spec.name}]", unit="frame",
                              initial=start_frames, log_seconds=config.log_seconds)
  env = games.VectorEnv(spec, config.num_envs, seed=config.seed + int(rng_counter.numpy()),
                        num_threads=config.num_threads)
  obs = env.reset()
  n, t_len = config.num_envs, config.rollout_length
  recent = []
  start_time = last_log = time.time()

  def save(frame_count):
    metrics_log.flush()  # Rows first: the CSV may run ahead of the checkpoint, never behind.
    manager.save(checkpoint_number=frame_count)

  checkpointer = PeriodicCheckpointer(save, config.checkpoint_minutes)
  metrics = {}
  while int(frames.numpy()) < config.total_frames:
    if max_seconds is not None and time.time() - start_time > max_seconds:
      break
    rollout_obs = np.empty((t_len, n, 84, 84, 4), np.uint8)
    rollout_actions = np.empty((t_len, n), np.int64)
    rollout_rewards = np.empty((t_len, n), np.float32)
    rollout_dones = np.empty((t_len, n), np.bool_)
    for step in range(t_len):
      seed = tf.constant([config.seed, int(rng_counter.numpy())], tf.int64)
      rng_counter.assign_add(1)
      actions = learner.act(tf.constant(obs), seed).numpy()
      rollout_obs[step] = obs
      rollout_actions[step] = actions
      obs, reward, game_over, life_lost, finished = env.step(actions)
      rollout_rewards[step] = reward
      rollout_dones[step] = np.logical_or(game_over, life_lost)
      frames.assign_add(n * FRAMES_PER_STEP)
      for _, score, length in finished:
        recent.append(score)
        metrics_log.record(dict(frames=int(frames.numpy()), score=float(score),
                                length=int(length)), flush=False)
    learning_rate = learning_rate_at(config, int(frames.numpy()))
    metrics = learner.update(tf.constant(rollout_obs), tf.constant(rollout_actions),
                             tf.constant(rollout_rewards), tf.constant(rollout_dones),
                             tf.constant(obs), tf.constant(learning_rate, tf.float32))
    metrics["learning_rate"] = learning_rate
    f = int(frames.numpy())
    mean_return = float(np.mean(recent[-config.return_window:])) if recent else float("nan")
    progress.update(f, f"recent return {mean_return:.1f} "
                    f"({len(recent[-config.return_window:])} episodes) "
                    f"entropy {float(metrics['entropy']):.3f} lr {learning_rate:.2e}")
    now = time.time()
    if now - last_log > config.log_seconds:
      metrics_log.scalars(f, dict(metrics, frames_per_second=(f - start_frames) /
                                  (now - start_time)), prefix="train/")
      if recent:
        metrics_log.scalars(f, {"episode_return": mean_return})
      metrics_log.flush()
      last_log = now
    checkpointer.maybe_save(f)
  progress.close()
  save(int(frames.numpy()))
  metrics_log.close()
  env.close()
  return dict(frames=int(frames.numpy()),
              recent_return=float(np.mean(recent[-config.return_window:])) if recent else None,
              **{k: float(v) for k, v in metrics.items()})

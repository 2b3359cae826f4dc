"""Policy distillation with and without Sobolev training (section 4.2, SM section 3).

Regular:  min_theta  D_KL(pi(s|theta) || pi*(s))
Sobolev:  ... + alpha E_v || grad_s <log pi*(s), v> - grad_s <log pi(s|theta), v> ||

with v uniform on the unit sphere of the action space (``sobolev_loss`` with
``stochastic=True, projection_space="output", derivative_loss="l2_norm"``); the
teacher's input gradients are computed on the fly with no gradient into it.
"""

from __future__ import annotations

import json
import os
import time
from typing import Callable, Dict, Optional

import numpy as np
import sonnet as snt
import tensorflow as tf

from sobolev_tf import checks
from sobolev_tf import derivatives
from sobolev_tf import loggers
from sobolev_tf import losses
from sobolev_tf import training
from sobolev_tf.atari import dataset
from sobolev_tf.atari import games
from sobolev_tf.atari import networks
from sobolev_tf.files import write_text_atomic
from sobolev_tf.training import PeriodicCheckpointer
from sobolev_tf.training import restore_checkpoint

__all__ = ["METHODS", "DERIVATIVE_LOSSES", "Distiller", "train_and_evaluate", "load_student"]

METHODS = ("regular", "sobolev")
# The gradient term's loss: the paper's (and the issue's) plain L2 norm, or its
# square, whose gradient shrinks with the mismatch (an ablation:
# results/distillation/ablation_squared_norm.md).
DERIVATIVE_LOSSES = ("l2_norm", "squared_l2")


CURVE_COLUMNS = ("step", "split", "action_error", "kl")  # curves.csv, one row per evaluation.
CURVE_TYPES = dict(step=int, action_error=float, kl=float)
# Config keys a resumed run may change: its budget, evaluation and logging rhythm,
# the cache size, and the grid's lists (each run's own values are compared).
# The dataset is compared by what it holds (``data``), not by its path.
RESUMABLE_KEYS = ("num_steps", "eval_every", "checkpoint_minutes", "log_seconds", "data_path",
                  "games", "fractions", "methods", "learning_rates", "seeds", "alpha_search")


def resumable_keys(config) -> tuple:
  """``RESUMABLE_KEYS``, and the gradient term's settings for a regular run (it has none)."""
  return RESUMABLE_KEYS + (("alpha", "derivative_loss") if config.method == "regular" else ())


class Distiller(tf.Module):
  """The SM section 3 student, its optimiser and one compiled training step."""

  def __init__(self, num_actions: int, method: str, learning_rate: float, alpha: float = 1.0,
               teacher_logits: Optional[Callable[[tf.Tensor], tf.Tensor]] = None,
               seed: int = 0, derivative_loss: str = "l2_norm"):
    super().__init__(name="distiller")
    if method not in METHODS:
      raise ValueError(f"Unknown method {method!r}; known: {', '.join(METHODS)}.")
    if derivative_loss not in DERIVATIVE_LOSSES:
      raise ValueError(f"Unknown derivative_loss {derivative_loss!r}; known: "
                       f"{', '.join(DERIVATIVE_LOSSES)}.")
    if method == "sobolev" and teacher_logits is None:
      raise ValueError("method='sobolev' needs teacher_logits to differentiate the teacher.")
    self.method = method
    self.alpha = alpha
    self.seed = seed
    self.derivative_loss = derivative_loss
    self.student = networks.AtariStudent(num_actions)
    self.optimizer = snt.optimizers.Adam(learning_rate)
    self.step = tf.Variable(0, dtype=tf.int64, name="step")
    self._teacher_logits = teacher_logits

  def student_log_probs(self, states: tf.Tensor) -> tf.Tensor:
    return tf.nn.log_softmax(self.student(states))

  def teacher_log_probs(self, states: tf.Tensor) -> tf.Tensor:
    return tf.nn.log_softmax(self._teacher_logits(states))

  def loss(self, frames: tf.Tensor, teacher_log_probs: tf.Tensor,
           teacher_jacobian: Optional[tf.Tensor] = None) -> Dict[str, tf.Tensor]:
    """Loss terms; ``teacher_jacobian`` ``[B, A, 84, 84, 4]``: precomputed, else on the fly."""
    states = tf.cast(frames, tf.float32) / 255.0  # Differentiable input in [0, 1].
    if self.method == "regular":
      kl = tf.reduce_mean(losses.categorical_kl_from_log_probs(
          teacher_log_probs, self.student_log_probs(states)))
      return {"total": kl, "value": kl}
    if teacher_jacobian is not None:
      # The same term from the teacher's cached input Jacobian J: the target
      # projection is J^T v, contracted inside sobolev_loss.
      target = dict(targets=(teacher_log_probs, tf.cast(teacher_jacobian, tf.float32)),
                    check_targets=False)
    else:
      target = dict(teacher=self.teacher_log_probs)
    _, terms = losses.sobolev_loss(
        self.student_log_probs, states, **target,
        value_loss=losses.categorical_kl_from_log_probs, derivative_loss=self.derivative_loss,
        derivative_weights=(self.alpha,), stochastic=True, projection_space="output",
        seed=tf.stack([tf.constant(self.seed, tf.int64), self.step]))
    return terms

  @tf.function
  def train_step(self, frames: tf.Tensor, teacher_log_probs: tf.Tensor,
                 teacher_jacobian: Optional[tf.Tensor] = None) -> Dict[str, tf.Tensor]:
    """One Adam step on a batch of uint8 ``frames [B, 84, 84, 4]``."""
    return self._train(frames, teacher_log_probs, teacher_jacobian)

  @tf.function
  def train_step_on_rows(self, rows: tf.Tensor, frames: tf.Tensor, stacks: tf.Tensor,
                         teacher_log_probs: tf.Tensor,
                         teacher_jacobians: Optional[tf.Tensor] = None) -> Dict[str, tf.Tensor]:
    """``train_step`` on the training rows ``rows``, gathered in the graph.

    ``frames [F, 84, 84]``, ``stacks [N, 4]`` (frame indices of each state),
    ``teacher_log_probs [N, A]`` and ``teacher_jacobians [N, A, 84, 84, 4]``
    hold the whole training set. Assembling a batch here rather than in numpy
    keeps it off the critical path: the cached Jacobians of a batch of 200 are
    68 MB (``scripts/benchmark_distill_trainer.py``, ``results/benchmarks.md``).
    """
    states = tf.transpose(tf.gather(frames, tf.gather(stacks, rows)), [0, 2, 3, 1])
    jacobian = None if teacher_jacobians is None else tf.gather(teacher_jacobians, rows)
    return self._train(states, tf.gather(teacher_log_probs, rows), jacobian)

  def _train(self, frames, teacher_log_probs, teacher_jacobian):
    with tf.GradientTape() as tape:
      terms = self.loss(frames, teacher_log_probs, teacher_jacobian)
    variables = self.student.trainable_variables
    self.optimizer.apply(tape.gradient(terms["total"], variables), variables)
    self.step.assign_add(1)
    return terms

  @tf.function
  def disagreement_and_kl(self, frames: tf.Tensor, teacher_log_probs: tf.Tensor):
    """Per-state action disagreement (argmax differs) and KL(pi || pi*)."""
    log_pi = self.student_log_probs(frames)
    disagree = tf.cast(tf.argmax(log_pi, -1) != tf.argmax(teacher_log_probs, -1), tf.float32)
    return disagree, losses.categorical_kl_from_log_probs(teacher_log_probs, log_pi)


_FLOAT16_MAX = float(np.finfo(np.float16).max)  # 65504


def teacher_jacobians(distiller: Distiller, data: dataset.DistillationData, index: np.ndarray,
                      batch_size: int = 50) -> np.ndarray:
  """The teacher's input Jacobians of log-probabilities at ``index``, float16 ``[n, A, 84, 84, 4]``.

  Precomputed once for small training sets, they replace differentiating the
  teacher at every step (the teacher is fixed, so the term is the same up to
  float16 rounding, which halves the memory: A x 28,224 values per frame, 0.34 MB
  for 6 actions). Raises a ValueError if an entry exceeds float16's range.
  """
  jac_fn = tf.function(lambda s: derivatives.batch_jacobian(distiller.teacher_log_probs, s)[1])
  out = None
  for start in range(0, len(index), batch_size):
    idx = index[start:start + batch_size]
    states = tf.cast(tf.constant(data.states(idx)), tf.float32) / 255.0
    jac = jac_fn(states).numpy()
    largest = float(np.max(np.abs(jac)))
    if not largest <= _FLOAT16_MAX:  # Also catches NaN.
      raise ValueError(
          f"The teacher's input Jacobian reaches {largest:.4g} at states {idx[0]}..{idx[-1]}, "
          f"beyond float16 ({_FLOAT16_MAX}): the cache would hold inf. Set "
          "config.jacobian_cache_gb=0 to differentiate the teacher every step instead.")
    jac = jac.astype(np.float16)
    if out is None:
      out = np.empty((len(index),) + jac.shape[1:], np.float16)
    out[start:start + len(idx)] = jac
  return out


def evaluate(distiller: Distiller, data: dataset.DistillationData, index: np.ndarray,
             batch_size: int = 500) -> Dict[str, float]:
  """Action prediction error and mean KL on the states ``index``."""
  errors, kls = [], []
  for start in range(0, len(index), batch_size):
    idx = index[start:start + batch_size]
    d, k = distiller.disagreement_and_kl(tf.constant(data.states(idx)),
                                         tf.constant(data.log_probs[idx]))
    errors.append(d.numpy())
    kls.append(k.numpy())
  return dict(action_error=float(np.mean(np.concatenate(errors))),
              kl=float(np.mean(np.concatenate(kls))))


def train_and_evaluate(config, workdir: str,
                       teacher_logits: Optional[Callable[[tf.Tensor], tf.Tensor]] = None,
                       log: Optional[Callable[[str], None]] = None) -> Dict:
  """Distils ``config.data_path`` into a student; resumes from ``workdir``.

  Writes ``workdir/curves.csv`` (step, split, action_error, kl) and TensorBoard
  scalars (``workdir/tb``) during training, and ``workdir/result.json`` (final
  test metrics, wall time) at the end, and returns the final test metrics. Wall
  time is the training time summed over resumed segments (up to each segment's
  last checkpoint). Progress goes to a bar (``loggers.Progress``), messages to
  ``log`` (above the bar by default).
  """
  checks.check_config(config, positive=("num_steps", "batch_size", "eval_every", "learning_rate",
                                        "max_eval_states"),
                      non_negative=("alpha", "checkpoint_minutes", "jacobian_cache_gb"),
                      fractions=("train_fraction", "validation_fraction"))
  checks.check_writable_directory(workdir, "checkpoints and curves")
  data = dataset.load(config.data_path)
  splits = dataset.split_by_episodes(data.episodes, config.train_fraction,
                                     config.validation_fraction)
  num_actions = data.log_probs.shape[1]
  if teacher_logits is not None:
    width = teacher_logits(tf.constant(data.states(splits.train[:1]))).shape[-1]
    if width != num_actions:
      raise ValueError(f"The teacher has {width} actions but {config.data_path} records "
                       f"{num_actions}: they are of different games.")
  derivative_loss = config.get("derivative_loss", "l2_norm")
  tf.random.set_seed(config.seed)  # The student's initialisation (a resumed run restores it).
  distiller = Distiller(num_actions, config.method, config.learning_rate, config.alpha,
                        teacher_logits, seed=config.seed, derivative_loss=derivative_loss)
  # Training wall time, summed over resumed segments up to their last checkpoint.
  seconds = tf.Variable(0.0, dtype=tf.float64, name="wall_seconds")
  ckpt = tf.train.Checkpoint(student=distiller.student, optimizer=distiller.optimizer,
                             step=distiller.step, wall_seconds=seconds)
  manager = tf.train.CheckpointManager(ckpt, os.path.join(workdir, "checkpoints"), max_to_keep=1)
  held = {k: data.meta.get(k) for k in ("game", "num_states", "seed", "teacher_checkpoint")}
  record_path = os.path.join(workdir, "run_config.json")
  recorded = training.check_same_config(record_path, dict(config.to_dict(), data=held),
                             resuming=manager.latest_checkpoint is not None,
                             ignore=resumable_keys(config), hint="Use another --workdir.")
  eval_index = {"test": splits.test[:config.max_eval_states],
                "validation": splits.validation[:config.max_eval_states]}
  if manager.latest_checkpoint:
    distiller.train_step(tf.constant(data.states(splits.train[:1])),
                         tf.constant(data.log_probs[splits.train[:1]]))  # Builds slots.
    restore_checkpoint(ckpt, manager.latest_checkpoint)
  start_step = int(distiller.step.numpy())
  # The rows before the restored step were logged under the eval_every of their time.
  segments = training.logging_segments(record_path, recorded, config.to_dict(), start_step,
                                       ("eval_every",))
  metrics_log = loggers.MetricsLogger(
      workdir, "curves.csv", CURVE_COLUMNS, types=CURVE_TYPES, start_step=start_step,
      key_columns=("split",), expected_steps=training.logged_steps(
          segments, start_step, lambda s, first, last: training.multiples(s["eval_every"],
                                                                          first, last)))
  progress = loggers.Progress(config.num_steps, f"[{config.method}]", initial=start_step)
  log = log or progress.write
  if start_step:
    log(f"[{config.method}] resumed at step {start_step}")
  cache = None
  if config.method == "sobolev" and config.get("jacobian_cache_gb", 0.0):
    needed_gb = len(splits.train) * num_actions * 84 * 84 * 4 * 2 / 1e9
    if needed_gb <= config.jacobian_cache_gb:
      t0 = time.time()
      cache = teacher_jacobians(distiller, data, splits.train)
      log(f"[sobolev] cached the teacher's input Jacobians of {len(splits.train):,} training "
          f"states ({needed_gb:.2f} GB float16) in {time.time() - t0:.0f} s")
  # The training set as tensors; a step gathers its batch from them by row.
  train_set = dict(frames=tf.constant(data.frames),
                   stacks=tf.constant(data.stacks[splits.train].astype(np.int32)),
                   teacher_log_probs=tf.constant(data.log_probs[splits.train]))
  if cache is not None:  # Rows of the cache are positions in splits.train.
    train_set["teacher_jacobians"] = tf.constant(cache)
    del cache
  start_time = time.time()

  def save(step):
    nonlocal start_time
    seconds.assign_add(time.time() - start_time)
    start_time = time.time()
    manager.save(checkpoint_number=step)

  checkpointer = PeriodicCheckpointer(save, config.checkpoint_minutes)
  metrics = {}
  last_test = ""
  while int(distiller.step.numpy()) < config.num_steps:
    step = int(distiller.step.numpy())
    rng = np.random.default_rng([config.seed, step])  # Resumable batch sequence.
    rows = np.sort(rng.choice(len(splits.train), size=config.batch_size,
                              replace=len(splits.train) < config.batch_size))
    metrics = distiller.train_step_on_rows(tf.constant(rows, tf.int32), **train_set)
    step += 1
    if step % config.eval_every == 0 or step == config.num_steps:
      metrics_log.scalars(step, metrics, prefix="train/")
      for split, index in eval_index.items():
        if len(index):
          metrics_log.record(dict(step=step, split=split, **evaluate(distiller, data, index)),
                             flush=False)
          last_test = (f" {split} KL {metrics_log.rows[-1]['kl']:.4f} "
                       f"error {metrics_log.rows[-1]['action_error']:.3f}")
      metrics_log.flush()
    progress.update(step, f"loss {float(metrics['total']):.4f}{last_test}")
    checkpointer.maybe_save(step, force=step == config.num_steps)
  metrics_log.close()
  progress.close()
  final = evaluate(distiller, data, eval_index["test"])
  final.update(method=config.method, train_fraction=config.train_fraction,
               learning_rate=config.learning_rate, seed=config.seed,
               derivative_loss=derivative_loss if config.method == "sobolev" else None,
               train_states=len(splits.train), test_states=len(splits.test),
               steps=int(distiller.step.numpy()),
               wall_seconds=float(seconds.numpy()))
  write_text_atomic(os.path.join(workdir, "result.json"), json.dumps(final, indent=1))
  return final


def load_student(workdir: str, num_actions: int):
  """The distilled student of ``workdir``'s latest checkpoint: ``(student, path)``."""
  ckpt_dir = os.path.join(workdir, "checkpoints")
  path = tf.train.latest_checkpoint(ckpt_dir)
  if path is None:
    raise ValueError(f"No student checkpoint in {ckpt_dir}; train one with scripts/distill.py.")
  games_of = [g.name for g in games.GAMES.values() if g.num_actions == num_actions]
  networks.check_policy_checkpoint(
      path, "student", num_actions, games_of[0] if games_of else f"{num_actions} actions",
      "give a distillation workdir (scripts/export_policy.py exports a teacher without "
      "--student).")
  student = networks.AtariStudent(num_actions)
  student(tf.zeros([1, 84, 84, 4], tf.uint8))
  restore_checkpoint(tf.train.Checkpoint(student=student), path)
  return student, path

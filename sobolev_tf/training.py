"""Training-loop helpers: many compiled steps per call (Acme/Flax style).

Python overhead per ``tf.function`` call (~100 us) is comparable to a whole
step of the paper's small regression network, so loops run inside the graph.
"""

from __future__ import annotations

import json
import os
import time
from typing import Callable, Dict, Iterable, Mapping, Optional

import sonnet as snt
import tensorflow as tf

from sobolev_tf import files
from sobolev_tf import losses

__all__ = ["multi_step", "fit_full_batch", "restore_checkpoint", "check_same_config",
           "config_differences", "PeriodicCheckpointer"]

StepFn = Callable[[tf.Tensor], Dict[str, tf.Tensor]]


def multi_step(step_fn: StepFn, steps_per_call: int,
               jit_compile: Optional[bool] = None) -> Callable[[tf.Tensor], Dict[str, tf.Tensor]]:
  """Compiles ``steps_per_call`` consecutive calls of ``step_fn`` into one function.

  Args:
    step_fn: ``step_fn(step) -> dict of scalar tensors``, one training step; the
      int64 ``step`` lets it pick its batch and fold it into RNG seeds. Pick
      batches with ``tf.gather(data, step % n)``, not ``data[step % n]``: under
      XLA a slice start is a compile-time constant, so slicing would recompile
      the function for every new ``step``.
    steps_per_call: number of steps each call runs (>= 1).
    jit_compile: passed to ``tf.function``. On CPU (TF 2.21) XLA runs a loop
      over a conv net's steps ~20x slower per step than one compiled step (the
      SM student: 2.4 s vs 0.1 s per step, not a recompilation: every call is
      slow, see ``results/benchmarks.md``); for conv nets use ``jit_compile=False``
      here or a single ``tf.function(step, jit_compile=True)``.

  Returns:
    ``run(first_step) -> metrics of the last step``, a ``tf.function``.
  """
  if not isinstance(steps_per_call, int) or steps_per_call < 1:
    raise ValueError(f"steps_per_call must be a positive integer, got {steps_per_call!r}.")

  @tf.function(jit_compile=jit_compile,
               input_signature=[tf.TensorSpec([], tf.int64)])
  def compiled(first_step):
    metrics = step_fn(first_step)
    if steps_per_call == 1:
      return metrics

    def body(i, _):
      return i + 1, step_fn(first_step + i)

    _, metrics = tf.while_loop(
        lambda i, _: i < steps_per_call, body,
        (tf.constant(1, tf.int64), metrics))
    return metrics

  def run(first_step) -> Dict[str, tf.Tensor]:
    # A tensor argument: Python ints would retrace for every distinct value.
    return compiled(tf.cast(first_step, tf.int64))

  return run


def fit_full_batch(module: tf.Module, x: tf.Tensor, y: tf.Tensor, dy: tf.Tensor,
                   sobolev: bool, learning_rate: float, num_steps: int,
                   steps_per_call: Optional[int] = None) -> Dict[str, tf.Tensor]:
  """Full-batch Adam on ``module(x)[:, 0]``: MSE, plus eq. 1's gradient term if ``sobolev``.

  The small regular-vs-Sobolev comparison of the demo and of Figure 2 (left).
  ``dy`` are the gradient targets ``[B, *in]``. Returns the last step's metrics.
  """
  if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
    raise ValueError(f"num_steps must be an integer >= 1, got {num_steps!r}.")
  model = lambda z: module(z)[:, 0]
  opt = snt.optimizers.Adam(learning_rate)

  def step(_):
    with tf.GradientTape() as tape:
      if sobolev:
        loss, _ = losses.sobolev_loss(model, x, (y, dy))
      else:
        loss = tf.reduce_mean(losses.squared_l2(y, model(x)))
    opt.apply(tape.gradient(loss, module.trainable_variables), module.trainable_variables)
    return {"loss": loss}

  spc = steps_per_call or num_steps
  if num_steps % spc:
    raise ValueError(f"num_steps ({num_steps}) must be a multiple of steps_per_call ({spc}).")
  run = multi_step(step, spc)
  metrics = {}
  for first in range(0, num_steps, spc):
    metrics = run(first)
  return metrics


def restore_checkpoint(checkpoint: tf.train.Checkpoint, path: str, hint: str = "",
                       written: bool = False) -> None:
  """Restores ``path`` or raises a ValueError naming it (corrupt, truncated, incompatible).

  ``written``: ``path`` was made by ``Checkpoint.write`` (no save counter), not ``save``.
  """
  try:
    status = checkpoint.read(path) if written else checkpoint.restore(path)
    status.assert_existing_objects_matched()
    # Values for objects not built yet (optimizer slots before the first step,
    # or the optimizer of a loader that wants only the network) stay deferred;
    # without this TF warns about each of them when the checkpoint is deleted.
    status.expect_partial()
  except (tf.errors.OpError, AssertionError, ValueError, IndexError, KeyError) as e:
    raise ValueError(f"Corrupt or incompatible checkpoint {path}: {e}. {hint}".strip()) from e


def config_differences(recorded: Mapping, wanted: Mapping, ignore: Iterable[str] = ()) -> list:
  """``"key: old there, new now"`` for every key (outside ``ignore``) whose JSON value differs."""
  ignore = set(ignore)
  as_json = lambda c: json.loads(json.dumps({k: v for k, v in dict(c).items() if k not in ignore},
                                            sort_keys=True, default=str))
  recorded, wanted = as_json(recorded), as_json(wanted)
  return [f"{k}: {recorded.get(k, '(unset)')!r} there, {wanted.get(k, '(unset)')!r} now"
          for k in sorted(set(recorded) | set(wanted)) if recorded.get(k) != wanted.get(k)]


def check_same_config(path: str, config: Mapping, resuming: bool, ignore: Iterable[str] = (),
                      hint: str = "", record: bool = True) -> None:
  """Refuses to resume a run under another configuration; records the config of a new run.

  A checkpoint holds weights, not what they were trained for: resuming a
  workdir with another function, method or learning rate would report the old
  model under the new name. ``path``: the JSON record next to the checkpoint,
  (over)written when not ``resuming`` (a failed start leaves no trap) and
  compared when resuming; a workdir from before these records stays unchecked
  and unrecorded. ``ignore``: keys that may change on a resume (step budgets,
  logging, checkpoint rhythm). ``record=False`` (workers other than the chief)
  only compares.
  """
  if not resuming:
    if record:
      files.write_text_atomic(path, json.dumps(dict(config), indent=1, sort_keys=True,
                                               default=str) + "\n")
    return
  if not os.path.exists(path):
    return
  try:
    with open(path) as f:
      recorded = json.load(f)
  except (OSError, ValueError) as e:
    raise ValueError(f"Unreadable run config {path}: {e}. {hint}".strip()) from e
  differences = config_differences(recorded, config, ignore)
  if differences:
    raise ValueError(f"{os.path.dirname(path) or '.'} holds a run of another configuration "
                     f"({'; '.join(differences)}). {hint}".strip())


class PeriodicCheckpointer:
  """Calls ``save(step)`` at most every ``minutes`` of wall time, or when forced.

  The one checkpointing rhythm of every trainer (``config.checkpoint_minutes``):
  a killed run loses at most that much work. ``save`` writes the
  ``tf.train.CheckpointManager`` checkpoint and whatever state goes with it.
  """

  def __init__(self, save: Callable[[int], None], minutes: float,
               agree: Optional[Callable[[bool], bool]] = None):
    """``agree(due) -> bool``: one decision for all machines of a multi-worker run
    (e.g. any machine's clock says it is due), so they save at the same steps."""
    if not minutes >= 0:
      raise ValueError(f"checkpoint_minutes must be >= 0, got {minutes!r}.")
    self._save = save
    self._period = 60.0 * minutes
    self._last = time.monotonic()
    self._agree = agree

  def maybe_save(self, step: int, force: bool = False) -> bool:
    """Saves if forced or if the period has passed since the last save; True if it saved."""
    # A period of 0 saves every time.
    due = force or not self._period or time.monotonic() - self._last > self._period
    if self._agree is not None:
      due = self._agree(due)
    if not due:
      return False
    self._save(step)
    self._last = time.monotonic()
    return True


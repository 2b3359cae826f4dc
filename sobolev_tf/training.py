"""Training-loop helpers: many compiled steps per call (Acme/Flax style).

Python overhead per ``tf.function`` call (~100 us) is comparable to a whole
step of the paper's small regression network, so loops run inside the graph.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Set, Tuple

import numpy as np
import sonnet as snt
import tensorflow as tf

from sobolev_tf import files
from sobolev_tf import losses

__all__ = ["multi_step", "fit_full_batch", "restore_checkpoint", "check_same_config",
           "config_differences", "logging_segments", "logged_steps", "multiples",
           "PeriodicCheckpointer", "PiecewiseLinear", "CosineDecay",
           "one_cycle", "constant_rate", "learning_rate_schedule", "SCHEDULES"]

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
  if (not isinstance(steps_per_call, int) or isinstance(steps_per_call, bool)
      or steps_per_call < 1):
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


@dataclasses.dataclass(frozen=True)
class PiecewiseLinear:
  """A learning rate interpolated linearly between ``(fraction of training, rate)`` points.

  ``schedule(t)`` takes the fraction ``t`` in [0, 1] of the training done (a
  float, NumPy array or tensor) and returns the rate; before the first point and
  after the last it is held constant. Huge & Savine's one-cycle schedule
  (``one_cycle``) is one of these.
  """
  points: Tuple[Tuple[float, float], ...]

  def __post_init__(self):
    points = tuple((float(t), float(r)) for t, r in self.points)
    fractions = [t for t, _ in points]
    if not points or fractions != sorted(fractions) or not all(
        math.isfinite(t) and math.isfinite(r) and r >= 0 for t, r in points):
      raise ValueError("PiecewiseLinear points must be (fraction, rate) pairs with increasing "
                       f"fractions and finite rates >= 0, got {self.points!r}.")
    object.__setattr__(self, "points", points)

  @property
  def peak(self) -> float:
    return max(r for _, r in self.points)

  def __call__(self, fraction):
    fractions, rates = zip(*self.points)
    if isinstance(fraction, (tf.Tensor, tf.Variable)):
      t = tf.cast(fraction, tf.float32)
      xs, ys = tf.constant(fractions, tf.float32), tf.constant(rates, tf.float32)
      if len(fractions) == 1:
        return tf.fill(tf.shape(t), ys[0])
      # The segment [x_i, x_{i+1}] holding t (clamped to the ends).
      i = tf.clip_by_value(tf.searchsorted(xs[1:-1], tf.reshape(t, [-1]), side="right"),
                           0, len(fractions) - 2)
      x0, x1 = tf.gather(xs, i), tf.gather(xs, i + 1)
      y0, y1 = tf.gather(ys, i), tf.gather(ys, i + 1)
      w = tf.clip_by_value((tf.reshape(t, [-1]) - x0) / tf.maximum(x1 - x0, 1e-12), 0.0, 1.0)
      return tf.reshape(y0 + w * (y1 - y0), tf.shape(t))
    return np.interp(fraction, fractions, rates)


@dataclasses.dataclass(frozen=True)
class CosineDecay:
  """``peak * (final + (1 - final) * (1 + cos(pi t)) / 2)`` over the fraction ``t`` of training.

  Anneals from ``peak`` to ``final * peak`` (Loshchilov & Hutter's SGDR without restarts).
  """
  peak: float
  final: float = 0.0

  def __post_init__(self):
    if not (math.isfinite(self.peak) and self.peak > 0 and 0 <= self.final <= 1):
      raise ValueError(f"CosineDecay needs a finite peak > 0 and final in [0, 1], got "
                       f"peak={self.peak!r}, final={self.final!r}.")

  def __call__(self, fraction):
    if isinstance(fraction, (tf.Tensor, tf.Variable)):
      t = tf.clip_by_value(tf.cast(fraction, tf.float32), 0.0, 1.0)
      return self.peak * (self.final + (1 - self.final) * 0.5 * (1 + tf.cos(math.pi * t)))
    t = np.clip(fraction, 0.0, 1.0)
    return self.peak * (self.final + (1 - self.final) * 0.5 * (1 + np.cos(np.pi * t)))


# Huge & Savine's one-cycle schedule (their notebook's defaults): from about 0 up
# to the peak at 20% of training, down to a tenth of it at 60%, 1e-5 of it at 90%
# and about 0 at the end.
_ONE_CYCLE_SHAPE = ((0.0, 1e-7), (0.2, 1.0), (0.6, 0.1), (0.9, 1e-5), (1.0, 1e-7))


def one_cycle(peak: float = 0.1) -> PiecewiseLinear:
  """Huge & Savine's one-cycle schedule with its peak rate (0.1 in their notebook)."""
  if not (math.isfinite(peak) and peak > 0):
    raise ValueError(f"one_cycle needs a finite peak > 0, got {peak!r}.")
  return PiecewiseLinear(tuple((t, peak * r) for t, r in _ONE_CYCLE_SHAPE))


def constant_rate(rate: float) -> PiecewiseLinear:
  """A constant learning rate as a schedule."""
  return PiecewiseLinear(((0.0, float(rate)),))


SCHEDULES = ("constant", "cosine", "one_cycle")


def learning_rate_schedule(name: str, peak: float):
  """The schedule called ``name`` (one of ``SCHEDULES``) with peak rate ``peak``."""
  if name == "constant":
    return constant_rate(peak)
  if name == "cosine":
    return CosineDecay(peak)
  if name == "one_cycle":
    return one_cycle(peak)
  raise ValueError(f"Unknown learning-rate schedule {name!r}; known: {', '.join(SCHEDULES)}.")


def fit_full_batch(module: tf.Module, x: tf.Tensor, y: tf.Tensor, dy: tf.Tensor,
                   sobolev: bool, learning_rate: float, num_steps: int,
                   steps_per_call: Optional[int] = None) -> Dict[str, tf.Tensor]:
  """Full-batch Adam on ``module(x)[:, 0]``: MSE, plus eq. 1's gradient term if ``sobolev``.

  The small regular-vs-Sobolev comparison of the demo and of Figure 2 (left).
  ``dy`` are the gradient targets ``[B, *in]``. Returns the last step's metrics.
  """
  if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
    raise ValueError(f"num_steps must be an integer >= 1, got {num_steps!r}.")
  if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float)) or not (
      math.isfinite(learning_rate) and learning_rate > 0):
    raise ValueError(f"learning_rate must be a finite number > 0, got {learning_rate!r}.")
  _check_full_batch(x, y, dy)
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


def _check_full_batch(x: tf.Tensor, y: tf.Tensor, dy: tf.Tensor) -> None:
  """``x [B, n]``, ``y [B]`` and ``dy [B, n]``, checked before the step is traced (a
  failure inside the trace reads "in user code:")."""
  x, y, dy = (tf.convert_to_tensor(t) for t in (x, y, dy))
  expected = dict(y=x.shape[:1], dy=x.shape)
  for name, t in (("y", y), ("dy", dy)):
    if not t.shape.is_compatible_with(expected[name]):
      raise ValueError(f"{name} has shape {t.shape}; for x of shape {x.shape} it must be "
                       f"{expected[name]} (values [B], gradients [B, *in]).")


def restore_checkpoint(checkpoint: tf.train.Checkpoint, path: str, hint: str = "",
                       written: bool = False) -> None:
  """Restores ``path`` or raises a ValueError naming it (corrupt, truncated, incompatible).

  ``written``: ``path`` was made by ``Checkpoint.write`` (no save counter), not ``save``.
  """
  if not tf.io.gfile.exists(path + ".index"):
    raise ValueError(f"No checkpoint at {path} (no {os.path.basename(path)}.index). "
                     f"{hint}".strip())
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
  ignore = set(ignore) | {RESUMED}
  as_json = lambda c: json.loads(json.dumps({k: v for k, v in dict(c).items() if k not in ignore},
                                            sort_keys=True, default=str))
  recorded, wanted = as_json(recorded), as_json(wanted)
  return [f"{k}: {recorded.get(k, '(unset)')!r} there, {wanted.get(k, '(unset)')!r} now"
          for k in sorted(set(recorded) | set(wanted)) if recorded.get(k) != wanted.get(k)]


def check_same_config(path: str, config: Mapping, resuming: bool, ignore: Iterable[str] = (),
                      hint: str = "", record: bool = True) -> dict:
  """Refuses to resume a run under another configuration; records the config of a new run.

  A checkpoint holds weights, not what they were trained for: resuming a
  workdir with another function, method or learning rate would report the old
  model under the new name. ``path``: the JSON record next to the checkpoint,
  (over)written when not ``resuming`` (a failed start leaves no trap) and
  compared when resuming; resuming without it is refused, since nothing says
  what the checkpoint was trained for. ``ignore``: keys that may change on a
  resume (step budgets, logging, checkpoint rhythm). ``record=False`` (workers
  other than the chief) only compares, and only if it sees the record: a
  worker's workdir need not be shared, and the chief, which records, refuses a
  missing one. Returns the record (``config`` for a new run or a worker without
  it): its ignored keys say how the run was logged (``logging_segments``).
  """
  if not resuming:
    if record:
      _write_record(path, config)
    return json.loads(json.dumps(dict(config), default=str))
  if not os.path.exists(path) and not record:
    return json.loads(json.dumps(dict(config), default=str))
  if not os.path.exists(path):
    raise ValueError(f"{path} is missing: nothing records what the run beside it was trained "
                     "for, so it cannot be resumed under this configuration safely. Restore "
                     f"the file, or start the run again. {hint}".strip())
  recorded = files.read_json(path, hint)
  differences = config_differences(recorded, config, ignore)
  if differences:
    raise ValueError(f"{os.path.dirname(path) or '.'} holds a run of another configuration "
                     f"({'; '.join(differences)}). {hint}".strip())
  return recorded


# In a run record: ``[step, settings]`` of each resume that changed the settings deciding which
# steps the run logs (``logging_segments``).
RESUMED = "resumed"


def _write_record(path: str, record: Mapping) -> None:
  files.write_text_atomic(path, json.dumps(dict(record), indent=1, sort_keys=True,
                                           default=str) + "\n")


def logging_segments(path: str, recorded: Mapping, config: Mapping, step: int,
                     keys: Iterable[str], record: bool = True) -> List[Tuple[int, dict]]:
  """The settings ``keys`` (those deciding which steps a run logs: ``eval_every``, say) over
  a run resumed at ``step``, as ``[(first_step, settings), ...]``; the last is ``config``'s.

  ``recorded``: what ``check_same_config`` returned for ``path``. A resume may
  change these settings (they are among its ignored keys); the rows logged
  before it were logged under the earlier ones, so the record at ``path`` keeps
  each change and its step (with ``record``; workers other than the chief only read).
  """
  settings = lambda c: json.loads(json.dumps({k: c.get(k) for k in keys}, default=str))
  segments = [(0, settings(recorded))] + [(int(s), settings(v))
                                          for s, v in recorded.get(RESUMED, ())]
  # A resume that failed after it recorded its settings, and is retried from the same step.
  segments = [(s, v) for s, v in segments if s < step or s == 0]
  if segments[-1][1] != settings(config):
    segments.append((step, settings(config)))
  resumed = [[s, v] for s, v in segments[1:]]
  if record and resumed != recorded.get(RESUMED, []):
    _write_record(path, dict(recorded, **{RESUMED: resumed}))
  return segments


def logged_steps(segments: List[Tuple[int, dict]], step: int,
                 steps_of: Callable[[dict, int, int], Iterable[int]]) -> Set[int]:
  """The steps up to ``step`` with rows: ``steps_of(settings, first, last)``, the steps in
  ``(first, last]`` logged under ``settings``, for each of ``logging_segments``."""
  ends = [first for first, _ in segments[1:]] + [step]
  return {s for (first, settings), last in zip(segments, ends)
          for s in steps_of(settings, first, min(last, step)) if first < s <= min(last, step)}


def multiples(every: int, first: int, last: int) -> range:
  """The multiples of ``every`` in ``(first, last]``: the evaluations of a run that
  evaluates at every ``every``-th step."""
  return range((first // every + 1) * every, last + 1, every)


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


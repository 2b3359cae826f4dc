"""One metrics sink per run: a progress line, a CSV of records, TensorBoard scalars.

Every trainer (regression, distillation, teacher training, synthetic gradients)
writes through a ``MetricsLogger``; long jobs without curves (data collection)
use a ``Progress`` alone.

* ``Progress``: steps done of a total, rate and ETA. A ``tqdm`` bar on a
  terminal; in a log file (not a terminal) one plain line every
  ``log_seconds``, so background jobs stay readable.
* ``MetricsLogger``: the run's CSV (``workdir/<csv_name>``, written through
  ``files.write_csv``, so atomically) and TensorBoard (``workdir/tb``). On
  resume it keeps the CSV rows up to the restored step and drops the rest: a
  killed run wrote them after its last checkpoint, and the resumed run writes
  them again, so the file never holds a step twice.
* ``read_rows``: such a CSV read back and validated (header, steps in order,
  no step twice, no evaluation missing), by the loggers on resume and by the
  reports.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence, TextIO

import tensorflow as tf
import tqdm

from sobolev_tf import files

__all__ = ["Progress", "MetricsLogger", "read_rows"]


class Progress:
  """Progress of a long job: a ``tqdm`` bar on a terminal, periodic lines otherwise.

  Args:
    total: the count at which the job is done (steps, frames, models x steps).
    description: shown before the count, e.g. ``"[sobolev]"``.
    unit: what is counted.
    initial: the count already done (a resumed run); the rate counts only new work.
    log_seconds: without a terminal, the period of the plain progress lines.
    stream: where to write; standard error (tqdm's default) if None.
    enabled: False writes nothing (non-chief workers, tests).
  """

  def __init__(self, total: int, description: str = "", unit: str = "step", initial: int = 0,
               log_seconds: float = 60.0, stream: Optional[TextIO] = None,
               enabled: bool = True):
    if not total >= 0:
      raise ValueError(f"Progress total must be >= 0, got {total!r}.")
    self.total, self.description, self.unit = int(total), description, unit
    self._stream = stream or sys.stderr
    self._enabled = enabled
    self._initial = self.n = initial
    self._log_seconds = log_seconds
    self._start = self._last_line = time.monotonic()
    self._postfix = ""
    isatty = getattr(self._stream, "isatty", lambda: False)()
    self._bar = tqdm.tqdm(total=self.total, initial=self.n, desc=description, unit=unit,
                          file=self._stream, dynamic_ncols=True,
                          smoothing=0.05) if enabled and isatty else None

  def update(self, n: int, postfix: str = "") -> None:
    """Sets the count done to ``n`` (absolute), with ``postfix`` shown after the rate."""
    self.n = n
    self._postfix = f" {postfix}" if postfix else ""
    if self._bar is not None:
      self._bar.set_postfix_str(postfix, refresh=False)
      self._bar.update(self.n - self._bar.n)  # Redraws at most every tqdm.mininterval.
    elif self._enabled and (time.monotonic() - self._last_line >= self._log_seconds
                            or self.n >= self.total):
      self._print_line()

  def skip_to(self, n: float) -> None:
    """Sets the count to ``n`` as work done earlier (a resumed part): not counted in the rate."""
    delta = n - self.n
    self._initial += delta
    self.n = n
    if self._bar is not None:
      self._bar.initial += delta
      self._bar.n = self._bar.last_print_n = n  # The next update's rate starts from here.

  def line(self) -> str:
    """The plain progress line: count, percentage, elapsed time, ETA, rate, postfix."""
    elapsed = time.monotonic() - self._start
    rate = (self.n - self._initial) / elapsed if elapsed > 0 else 0.0
    eta = tqdm.tqdm.format_interval((self.total - self.n) / rate) if rate > 0 else "?"
    percent = 100.0 * self.n / self.total if self.total else 100.0
    done = f"{self.n:,}" if float(self.n).is_integer() else f"{self.n:,.1f}"
    return (f"{self.description} {done}/{self.total:,} {self.unit}s ({percent:.0f}%), "
            f"{tqdm.tqdm.format_interval(elapsed)} elapsed, ETA {eta}, "
            f"{rate:,.{3 if rate < 1 else 1 if rate < 1000 else 0}f} {self.unit}s/s"
            f"{self._postfix}").lstrip()

  def _print_line(self) -> None:
    print(self.line(), file=self._stream, flush=True)
    self._last_line = time.monotonic()

  def write(self, message: str) -> None:
    """Prints ``message`` above the bar (or as a line of the log)."""
    if not self._enabled:
      return
    if self._bar is not None:
      self._bar.write(message, file=self._stream)
    else:
      print(message, file=self._stream, flush=True)

  def close(self) -> None:
    if self._bar is not None:
      self._bar.close()
      self._bar = None

  def __enter__(self) -> "Progress":
    return self

  def __exit__(self, *exc) -> None:
    self.close()


def read_rows(path: str, columns: Sequence[str], types: Optional[Mapping[str, Callable]] = None,
              step_column: str = "step", key_columns: Optional[Sequence[str]] = (),
              expected_steps: Iterable[int] = ()) -> List[Dict]:
  """The rows of a trainer's CSV, each checked against the way trainers write them.

  The header must be ``columns``; steps (``step_column``, read as int) must not
  decrease. ``key_columns`` name what else tells apart the rows of one
  evaluation (``("split",)``; ``()``: one row per step): no step may hold a key
  twice, and every step must hold the keys of the others (an evaluation is
  written whole). ``None``: steps may repeat (several games ending in one
  update). Every step of ``expected_steps`` must have rows. Errors name the
  file, the step and the fix.
  """
  rows = files.read_csv(path, types=dict(types or {}, **{step_column: int}), columns=columns)
  fix = "The file was edited, cut or replaced: restore it, or start the run again elsewhere."
  keys_by_step: Dict[int, List[tuple]] = {}
  for i, row in enumerate(rows):
    step = row[step_column]
    if i and step < rows[i - 1][step_column]:
      raise ValueError(f"{path}: {step_column} {step} comes after {rows[i - 1][step_column]} "
                       f"(line {i + 2}); rows must be in order. {fix}")
    keys_by_step.setdefault(step, []).append(
        tuple(row.get(k) for k in key_columns) if key_columns is not None else i)
  if key_columns is None:
    return rows
  every = set().union(*map(set, keys_by_step.values())) if keys_by_step else set()
  for step, keys in keys_by_step.items():
    if len(set(keys)) < len(keys):
      raise ValueError(f"{path} holds {step_column} {step} twice"
                       + (f" for {dict(zip(key_columns, max(keys, key=keys.count)))}"
                          if key_columns else "") + f". {fix}")
    if set(keys) != every:
      missing = sorted(every - set(keys), key=str)[:3]
      raise ValueError(f"{path}: {step_column} {step} lacks the rows of "
                       f"{[dict(zip(key_columns, k)) for k in missing]}. {fix}")
  missing = sorted(set(expected_steps) - set(keys_by_step))
  if missing:
    raise ValueError(f"{path} has no row at {step_column} {missing[0]}"
                     + (f" (nor at {', '.join(map(str, missing[1:4]))})" if len(missing) > 1
                        else "") + ", an evaluation before the restored step. Restore the "
                     "file, resume with the evaluation steps it was logged with, or start the "
                     "run again elsewhere.")
  return rows


class MetricsLogger:
  """A run's records: rows of ``workdir/<csv_name>`` and TensorBoard scalars.

  Args:
    workdir: the run's directory; None keeps rows in memory only.
    csv_name: the CSV file in ``workdir`` (e.g. ``"curve.csv"``); None for none.
    columns: the CSV's columns, in order; the header of an existing file must match.
    types: converters of columns when the existing CSV is read back.
    step_column: the column that orders rows and is the TensorBoard step.
    start_step: the restored step; existing rows after it are dropped. A run
      resumed after step 0 needs its CSV: its rows up to there are not written
      again.
    key_columns: what tells apart the rows of one step (``read_rows``; None:
      steps may repeat).
    expected_steps: the steps up to ``start_step`` that must have rows.
    tensorboard: write scalars to ``workdir/<tensorboard_dir>``.
    tensorboard_dir: the TensorBoard subdirectory (several logs of one workdir).
    enabled: False writes no file (non-chief workers of a distributed run).
  """

  def __init__(self, workdir: Optional[str], csv_name: Optional[str] = None,
               columns: Sequence[str] = (), types: Optional[Mapping[str, Callable]] = None,
               step_column: str = "step", start_step: int = 0, tensorboard: bool = True,
               tensorboard_dir: str = "tb", enabled: bool = True,
               key_columns: Optional[Sequence[str]] = (), expected_steps: Iterable[int] = ()):
    if csv_name and step_column not in columns:
      raise ValueError(f"step_column {step_column!r} is not one of the columns {tuple(columns)}.")
    self.columns = tuple(columns)
    self._step_column = step_column
    self._path = os.path.join(workdir, csv_name) if enabled and workdir and csv_name else None
    self.rows: List[Dict] = []
    self._unwritten = False
    if self._path:
      os.makedirs(workdir, exist_ok=True)
      if os.path.exists(self._path):
        rows = read_rows(self._path, self.columns, types, step_column, key_columns,
                         [s for s in expected_steps if s <= start_step])
        self.rows = [r for r in rows if r[step_column] <= start_step]
        self._unwritten = len(self.rows) != len(rows)
      elif start_step > 0:
        raise ValueError(f"{self._path} is missing, but the run resumes at {step_column} "
                         f"{start_step}: the rows logged before it would be lost. Restore the "
                         "file, or start the run again in another --workdir.")
      else:
        self._unwritten = True
      self.flush()
    self._writer = (tf.summary.create_file_writer(os.path.join(workdir, tensorboard_dir))
                    if enabled and workdir and tensorboard else None)

  def record(self, row: Mapping, flush: bool = True) -> None:
    """Appends ``row`` (the ``columns``) to the CSV, and its numbers to TensorBoard.

    A ``split`` column, if any, prefixes the TensorBoard names (``test/kl``).
    With ``flush=False`` the CSV is rewritten at the next ``flush``.
    """
    missing = [c for c in self.columns if c not in row]
    if missing:
      raise ValueError(f"Record misses the columns {missing}; got {sorted(row)}.")
    self.rows.append({c: row[c] for c in self.columns})
    self._unwritten = True
    prefix = f"{row['split']}/" if "split" in row else ""
    self.scalars(int(row[self._step_column]),
                 {k: v for k, v in row.items() if k not in (self._step_column, "split")},
                 prefix)
    if flush:
      self.flush()

  def scalars(self, step: int, metrics: Mapping[str, object], prefix: str = "") -> None:
    """Writes the numeric ``metrics`` to TensorBoard at ``step`` (no CSV row)."""
    if self._writer is None:
      return
    with self._writer.as_default(step=int(step)):
      for name, value in metrics.items():
        if isinstance(value, (int, float)) or (hasattr(value, "dtype") and
                                               getattr(value, "shape", ()) == ()):
          tf.summary.scalar(prefix + name, value)

  def flush(self) -> None:
    """Rewrites the CSV if rows were added since the last write, and flushes TensorBoard."""
    if self._path and self._unwritten:
      files.write_csv(self._path, self.rows, self.columns)
      self._unwritten = False
    if getattr(self, "_writer", None) is not None:
      self._writer.flush()

  def close(self) -> None:
    self.flush()
    if self._writer is not None:
      self._writer.close()
      self._writer = None

  def __enter__(self) -> "MetricsLogger":
    return self

  def __exit__(self, *exc) -> None:
    self.close()

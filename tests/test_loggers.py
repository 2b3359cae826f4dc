"""The metrics sink every trainer writes through: progress lines, CSV rows, TensorBoard."""

import glob
import io
import os

import tensorflow as tf

from sobolev_tf import loggers

COLUMNS = ("step", "split", "kl")
TYPES = dict(step=int, kl=float)


class FakeTerminal(io.StringIO):

  def isatty(self):
    return True


class ProgressTest(tf.test.TestCase):

  def test_plain_lines_without_a_terminal(self):
    stream = io.StringIO()
    progress = loggers.Progress(200, "[run]", initial=50, log_seconds=0.0, stream=stream)
    progress.update(100, "loss 0.5")
    progress.write("evaluated")
    progress.update(200)
    progress.close()
    lines = stream.getvalue().splitlines()
    self.assertLen(lines, 3)
    self.assertStartsWith(lines[0], "[run] 100/200 steps (50%), ")
    self.assertIn("ETA", lines[0])
    self.assertEndsWith(lines[0], "steps/s loss 0.5")
    self.assertEqual(lines[1], "evaluated")
    self.assertStartsWith(lines[2], "[run] 200/200 steps (100%)")
    self.assertNotIn("\r", stream.getvalue())

  def test_lines_are_rate_limited_but_the_last_is_printed(self):
    stream = io.StringIO()
    progress = loggers.Progress(1000, "[run]", log_seconds=3600.0, stream=stream)
    for n in range(1, 1001):
      progress.update(n)
    lines = stream.getvalue().splitlines()
    self.assertLen(lines, 1)
    self.assertStartsWith(lines[0], "[run] 1,000/1,000 steps (100%)")

  def test_a_terminal_gets_a_tqdm_bar(self):
    stream = FakeTerminal()
    with loggers.Progress(10, "[run]", unit="model", stream=stream) as progress:
      progress.update(10, "done")
    self.assertIn("\r", stream.getvalue())
    self.assertIn("10/10", stream.getvalue())
    self.assertIn("model/s", stream.getvalue())

  def test_disabled_writes_nothing(self):
    stream = FakeTerminal()
    progress = loggers.Progress(10, stream=stream, enabled=False, log_seconds=0.0)
    progress.update(10)
    progress.write("message")
    self.assertEqual(stream.getvalue(), "")

  def test_work_done_before_a_resume_is_not_in_the_rate(self):
    progress = loggers.Progress(100, "[grid]", unit="model", stream=io.StringIO())
    progress._start -= 10.0  # Ten seconds into this invocation.
    progress.skip_to(90)  # Groups finished before the resume.
    progress.update(91)  # One model trained in those ten seconds.
    self.assertIn("91/100 models (91%)", progress.line())
    self.assertIn("0.100 models/s", progress.line())
    self.assertIn("ETA 01:30", progress.line())

  def test_bad_total(self):
    with self.assertRaisesRegex(ValueError, "total must be >= 0"):
      loggers.Progress(-1)


class MetricsLoggerTest(tf.test.TestCase):

  def test_rows_csv_and_tensorboard(self):
    workdir = self.create_tempdir().full_path
    with loggers.MetricsLogger(workdir, "curve.csv", COLUMNS, types=TYPES) as log:
      log.record(dict(step=10, split="test", kl=0.5))
      log.scalars(10, {"loss": 1.0, "name": "not a number"}, prefix="train/")
    with open(os.path.join(workdir, "curve.csv")) as f:
      self.assertEqual(f.read(), "step,split,kl\n10,test,0.5\n")
    events = glob.glob(os.path.join(workdir, "tb", "events.out.tfevents.*"))
    self.assertLen(events, 1)
    tags = {v.tag for e in tf.compat.v1.train.summary_iterator(events[0]) for v in e.summary.value}
    self.assertEqual(tags, {"test/kl", "train/loss"})

  def test_resume_drops_rows_after_the_restored_step(self):
    workdir = self.create_tempdir().full_path
    with loggers.MetricsLogger(workdir, "curve.csv", COLUMNS, types=TYPES) as log:
      for step in (10, 20, 30):
        log.record(dict(step=step, split="test", kl=step / 100))
    # The checkpoint is at step 20: the row of step 30 came after it and is written again.
    resumed = loggers.MetricsLogger(workdir, "curve.csv", COLUMNS, types=TYPES, start_step=20)
    self.assertEqual([r["step"] for r in resumed.rows], [10, 20])
    resumed.record(dict(step=30, split="test", kl=0.31))
    resumed.close()
    with open(os.path.join(workdir, "curve.csv")) as f:
      self.assertEqual(f.read(), "step,split,kl\n10,test,0.1\n20,test,0.2\n30,test,0.31\n")

  def test_unflushed_rows_are_written_by_flush(self):
    workdir = self.create_tempdir().full_path
    log = loggers.MetricsLogger(workdir, "curve.csv", COLUMNS, types=TYPES, tensorboard=False)
    log.record(dict(step=1, split="test", kl=0.5), flush=False)
    with open(os.path.join(workdir, "curve.csv")) as f:
      self.assertEqual(f.read(), "step,split,kl\n")
    log.flush()
    with open(os.path.join(workdir, "curve.csv")) as f:
      self.assertEqual(f.read(), "step,split,kl\n1,test,0.5\n")
    self.assertFalse(os.path.exists(os.path.join(workdir, "tb")))

  def test_errors_name_the_problem(self):
    workdir = self.create_tempdir().full_path
    with open(os.path.join(workdir, "curve.csv"), "w") as f:
      f.write("step,other\n")
    with self.assertRaisesRegex(ValueError, "curve.csv: expected columns step,split,kl"):
      loggers.MetricsLogger(workdir, "curve.csv", COLUMNS, types=TYPES)
    log = loggers.MetricsLogger(workdir, None, COLUMNS, tensorboard=False)
    with self.assertRaisesRegex(ValueError, r"misses the columns \['kl'\]"):
      log.record(dict(step=1, split="test"))
    with self.assertRaisesRegex(ValueError, "step_column 'frames'"):
      loggers.MetricsLogger(workdir, "x.csv", COLUMNS, step_column="frames")

  def test_disabled_writes_no_file(self):
    workdir = os.path.join(self.create_tempdir().full_path, "run")
    with loggers.MetricsLogger(workdir, "curve.csv", COLUMNS, enabled=False) as log:
      log.record(dict(step=1, split="test", kl=0.5))
    self.assertFalse(os.path.exists(workdir))


if __name__ == "__main__":
  tf.test.main()

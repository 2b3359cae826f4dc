"""Importing TensorFlow without its C++ start-up lines on a machine without a GPU.

TensorFlow's C++ libraries log before ``absl::InitializeLog()`` has run, and
such lines go to standard error whatever ``TF_CPP_MIN_LOG_LEVEL`` says
(abseil/abseil-cpp#1718): the oneDNN notice, "Could not find cuda drivers",
the CPU-feature notice and ``E0000 ... failed call to cuInit: ... (303)``,
which reads like a failure on a CPU machine. There is no switch, so the import
and the first device query (which calls cuInit) run with file descriptor 2
going through a filter process that forwards at once every line that is not
one of those known notices, so real errors (a broken driver's cuInit error, an
abort) stay visible. Side effects of ``import sobolev_tf``: the GPU platform
is initialised then (set ``CUDA_VISIBLE_DEVICES`` before the import), and the
C++ runtime's INFO lines are hidden (``TF_CPP_MIN_LOG_LEVEL=1``, unless set).

``--verbosity=0`` (absl's flag, or ``-v 0``) on the command line, or
``SOBOLEV_TF_VERBOSE=1``, leaves everything as TensorFlow prints it.
"""

from __future__ import annotations

import os
import re
import sys
import subprocess
from typing import Sequence

__all__ = ["STARTUP_NOISE", "verbose_requested", "import_tensorflow", "default_script_verbosity",
           "report_command"]

# One pattern per known start-up line of TensorFlow 2.16-2.21 on a CPU machine.
STARTUP_NOISE = re.compile("|".join([
    r"All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    r"port\.cc:\d+\] oneDNN custom operations are on",
    r"cudart_stub\.cc:\d+\] Could not find cuda drivers",
    # Only the no-driver error (303) of a CPU machine: a broken driver's error stays visible.
    r"cuda_(platform|executor)\.cc:\d+\] failed call to cuInit: .*\(303\)\s*$",
    r"cpu_feature_guard\.cc:\d+\] This TensorFlow binary is optimized",
    r"^To enable the following instructions: .*rebuild TensorFlow",
    r"Unable to register cu(DNN|FFT|BLAS) factory",
    r"TF-TRT Warning: Could not find TensorRT",
]))


def verbose_requested(argv: Sequence[str] = (), environ=None) -> bool:
  """True if absl's verbosity flag (its last value, as absl reads it) asks for INFO (>= 0),
  or ``SOBOLEV_TF_VERBOSE`` is set."""
  environ = os.environ if environ is None else environ
  if environ.get("SOBOLEV_TF_VERBOSE", "") not in ("", "0"):
    return True
  args = list(argv)
  value = None
  for i, arg in enumerate(args):
    for flag in ("--verbosity", "-verbosity", "--v", "-v"):
      if arg.startswith(flag + "="):
        value = arg[len(flag) + 1:]
      elif arg == flag and i + 1 < len(args):
        value = args[i + 1]
  if value is None:
    return False
  try:
    return int(value) >= 0
  except ValueError:
    return value.lower() in ("debug", "info")


# The filter runs in a child process, so that what it has received is still
# written out if TensorFlow aborts the importing process.
_FILTER = (
    "import re, sys\n"
    "noise = re.compile(sys.argv[1])\n"
    "for line in sys.stdin.buffer:\n"
    "  if not noise.search(line.decode(errors='replace')):\n"
    "    sys.stdout.buffer.write(line); sys.stdout.buffer.flush()\n")


def import_tensorflow():
  """``import tensorflow`` and its first device query, without the known start-up lines.

  File descriptor 2 goes through a filter process meanwhile, which forwards
  every other line at once, so an abort inside TensorFlow still shows its
  message.
  """
  if "tensorflow" in sys.modules or verbose_requested(sys.argv[1:]):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    return tf
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
  try:
    sys.stderr.flush()
    saved = os.dup(2)
    read_fd, write_fd = os.pipe()
    filter_process = subprocess.Popen(
        [sys.executable, "-S", "-c", _FILTER, STARTUP_NOISE.pattern], stdin=read_fd,
        stdout=saved, stderr=saved, close_fds=True)
  except (OSError, ValueError, AttributeError):  # No usable fd 2 (embedded interpreters).
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    return tf
  os.close(read_fd)
  os.dup2(write_fd, 2)
  os.close(write_fd)
  try:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    tf.config.list_physical_devices("GPU")  # Calls cuInit now, while filtered.
  finally:
    sys.stderr.flush()
    os.dup2(saved, 2)  # Closes the pipe's last write end: the filter reads to its end.
    os.close(saved)
    filter_process.wait(timeout=30)
  return tf


def default_script_verbosity() -> None:
  """Scripts log at WARNING (TF's INFO lines drown the progress) unless --verbosity is given."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  from absl import logging  # pylint: disable=g-import-not-at-top
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)


def report_command(script: str, argv: Sequence[str] = None) -> str:
  """The command a report quotes: ``python scripts/<script>`` and its flags, less
  where a run resumed and wrote (``--workdir``, ``--output_dir``, and the config's
  ``workdir`` and ``results_dir``): not part of what it computed, and maybe a
  path of one machine. Arguments are shell-quoted."""
  import shlex  # pylint: disable=g-import-not-at-top
  argv = list(sys.argv[1:] if argv is None else argv)
  where = ("--workdir", "--output_dir", "--config.workdir", "--config.results_dir")
  kept, skip_value = [], False
  for arg in argv:
    if skip_value:
      skip_value = False
    elif arg in where:
      skip_value = True  # The value follows as the next argument.
    elif not arg.startswith(tuple(w + "=" for w in where)):
      kept.append(arg)
  return shlex.join([f"python scripts/{script}"] + kept).replace(
      f"'python scripts/{script}'", f"python scripts/{script}")

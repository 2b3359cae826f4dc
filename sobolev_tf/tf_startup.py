"""Importing TensorFlow without its C++ start-up lines on a machine without a GPU.

TensorFlow's C++ libraries log before ``absl::InitializeLog()`` has run, and
such lines go to standard error whatever ``TF_CPP_MIN_LOG_LEVEL`` says
(abseil/abseil-cpp#1718): the oneDNN notice, "Could not find cuda drivers",
the CPU-feature notice and ``E0000 ... failed call to cuInit: ... (303)``,
which reads like a failure on a CPU machine. There is no switch, so the import
and the first device query (which calls cuInit) run with file descriptor 2
captured; afterwards every captured line that is not one of those known
notices is written back, so real errors stay visible. INFO lines of the C++
runtime are hidden afterwards (``TF_CPP_MIN_LOG_LEVEL=1``, unless set).

``--verbosity=0`` (absl's flag, or ``-v 0``) on the command line, or
``SOBOLEV_TF_VERBOSE=1``, leaves everything as TensorFlow prints it.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from typing import Sequence

__all__ = ["STARTUP_NOISE", "verbose_requested", "import_tensorflow", "default_script_verbosity"]

# One pattern per known start-up line of TensorFlow 2.16-2.21 on a CPU machine.
STARTUP_NOISE = re.compile("|".join([
    r"All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    r"port\.cc:\d+\] oneDNN custom operations are on",
    r"cudart_stub\.cc:\d+\] Could not find cuda drivers",
    r"cuda_platform\.cc:\d+\] failed call to cuInit",
    r"cuda_executor\.cc:\d+\] failed call to cuInit",
    r"cpu_feature_guard\.cc:\d+\] This TensorFlow binary is optimized",
    r"^To enable the following instructions: .*rebuild TensorFlow",
    r"Unable to register cu(DNN|FFT|BLAS) factory",
    r"TF-TRT Warning: Could not find TensorRT",
]))


def verbose_requested(argv: Sequence[str] = (), environ=None) -> bool:
  """True if absl's ``--verbosity`` / ``-v`` asks for INFO (>= 0) or the env var is set."""
  environ = os.environ if environ is None else environ
  if environ.get("SOBOLEV_TF_VERBOSE", "") not in ("", "0"):
    return True
  args = list(argv)
  for i, arg in enumerate(args):
    value = None
    for flag in ("--verbosity", "-v"):
      if arg.startswith(flag + "="):
        value = arg[len(flag) + 1:]
      elif arg == flag and i + 1 < len(args):
        value = args[i + 1]
    if value is not None:
      try:
        return int(value) >= 0
      except ValueError:
        return value.lower() in ("debug", "info")
  return False


def _write_back_unknown_lines(captured: bytes, stream_fd: int) -> None:
  for line in captured.decode(errors="replace").splitlines(keepends=True):
    if not STARTUP_NOISE.search(line):
      os.write(stream_fd, line.encode())


def import_tensorflow():
  """``import tensorflow`` and its first device query, without the known start-up lines."""
  if "tensorflow" in sys.modules or verbose_requested(sys.argv[1:]):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    return tf
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
  try:
    sys.stderr.flush()
    saved = os.dup(2)
  except (OSError, ValueError, AttributeError):  # No file descriptor 2 (embedded interpreters).
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    return tf
  with tempfile.TemporaryFile() as captured:
    os.dup2(captured.fileno(), 2)
    try:
      import tensorflow as tf  # pylint: disable=g-import-not-at-top
      tf.config.list_physical_devices("GPU")  # Calls cuInit now, while captured.
    finally:
      os.dup2(saved, 2)
      os.close(saved)
      captured.seek(0)
      _write_back_unknown_lines(captured.read(), 2)
  return tf


def default_script_verbosity() -> None:
  """Scripts log at WARNING (TF's INFO lines drown the progress) unless --verbosity is given."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  from absl import logging  # pylint: disable=g-import-not-at-top
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)

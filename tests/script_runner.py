r"""Runs many ``scripts/`` command lines in one process, each in a forked child.

Starting Python with TensorFlow takes about 5 s, most of a refused command line's
run; tests that check many refusals would spend minutes starting interpreters.
This process imports TensorFlow once, runs no TensorFlow op itself, and forks a
child per command line that runs the script as ``python scripts/<name> <args>``
would (``__main__``, its own flags, its own exit code).

    python -m tests.script_runner '[["demo.py", "--output=x"], ...]'

prints one JSON list of ``{"returncode", "stdout", "stderr"}``, in order.
"""

import json
import os
import runpy
import sys
import tempfile
import traceback

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import sobolev_tf  # pylint: disable=g-import-not-at-top,unused-import  (TensorFlow, once)
from absl import app  # pylint: disable=g-import-not-at-top,unused-import
from ml_collections import config_flags  # pylint: disable=g-import-not-at-top,unused-import

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _child(name: str, args) -> int:
  """The script's exit code, as ``python scripts/<name> <args>`` would end."""
  sys.argv = [os.path.join("scripts", name), *args]
  try:
    runpy.run_path(os.path.join(ROOT, "scripts", name), run_name="__main__")
  except SystemExit as e:
    if e.code is None or isinstance(e.code, int):
      return e.code or 0
    print(e.code, file=sys.stderr)
    return 1
  except BaseException:  # pylint: disable=broad-except
    traceback.print_exc()
    return 1
  return 0


def run(name: str, args) -> dict:
  """One command line in a forked child: its exit code, standard output and error."""
  with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
    pid = os.fork()
    if pid == 0:
      os.dup2(out.fileno(), 1)
      os.dup2(err.fileno(), 2)
      code = _child(name, args)
      sys.stdout.flush()
      sys.stderr.flush()
      os._exit(code)  # No cleanup of the parent's state in the child.
    _, status = os.waitpid(pid, 0)
    out.seek(0)
    err.seek(0)
    return dict(returncode=os.waitstatus_to_exitcode(status),
                stdout=out.read().decode(errors="replace"),
                stderr=err.read().decode(errors="replace"))


if __name__ == "__main__":
  os.chdir(ROOT)
  print(json.dumps([run(name, args) for name, *args in json.loads(sys.argv[1])]))

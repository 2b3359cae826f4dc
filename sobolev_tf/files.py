"""Small file helpers: nothing already written is lost when a process is killed mid-write.

Files and directories are replaced by renames, which a killed process cannot
leave half done. Nothing is fsynced: after a power cut or an OS crash the
renamed file may still be empty or the old one.
"""

from __future__ import annotations

import csv
import fnmatch
import io
import json
import os
import shutil
import zipfile
import zlib
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Union

__all__ = ["write_atomic", "write_text_atomic", "write_csv", "read_csv", "read_json", "load_npz",
           "write_section", "save_figure_atomic", "save_npz_atomic", "write_saved_model_atomic",
           "check_saved_model_destination", "write_directory_atomic", "check_directory_destination",
           "check_file_destination", "check_directory_write", "directory_to_read",
           "SECTIONS_START", "PNG_START"]

# How a PNG file (``save_figure_atomic``'s default format) starts.
PNG_START = b"\x89PNG"
# How a Markdown file of ``write_section``'s sections starts (its first section's first line).
SECTIONS_START = "<!-- section: "


def write_atomic(path: str, write: Callable[[str], None]) -> str:
  """``write(tmp)`` writes a file that then replaces ``path`` by a rename.

  The temporary name keeps ``path``'s extension (``x.png`` -> ``x.tmp.png``), so
  writers that pick the format from the name (matplotlib, PIL) or append one
  (``np.savez``) write the same file; a killed process leaves ``path`` as it
  was (not a power cut: nothing is fsynced).
  """
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  root, ext = os.path.splitext(path)
  tmp = root + ".tmp" + ext if ext else path + ".tmp"
  write(tmp)
  os.replace(tmp, path)
  return path


def write_text_atomic(path: str, text: str) -> None:
  """Writes ``text`` to ``path`` through a temporary file and a rename."""

  def write(tmp):
    with open(tmp, "w") as f:
      f.write(text)

  write_atomic(path, write)


def save_figure_atomic(fig, path: str, **savefig_kwargs) -> str:
  """``fig.savefig(path, **kwargs)`` through a temporary file and a rename.

  The format is that of ``path``'s extension (PNG without one), given explicitly
  so that the temporary name does not decide it.
  """
  fmt = os.path.splitext(path)[1].lstrip(".").lower() or "png"
  savefig_kwargs.setdefault("format", fmt)
  return write_atomic(path, lambda tmp: fig.savefig(tmp, **savefig_kwargs))


def save_npz_atomic(path: str, compressed: bool = False, **arrays) -> str:
  """``np.savez[_compressed](path, **arrays)`` through a temporary file and a rename."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  save = np.savez_compressed if compressed else np.savez

  def write(tmp):
    with open(tmp, "wb") as f:  # A file object: np.savez appends no ".npz" to it.
      save(f, **arrays)

  return write_atomic(path, write)


def write_csv(path: str, rows: Sequence[Mapping], columns: Optional[Sequence[str]] = None) -> None:
  """Rows (dicts) as a CSV file with a header, through a temporary file and a rename.

  ``columns`` default to every key of any row, in order of appearance; a row
  without a column leaves its cell empty. Numbers are written as ``str`` does
  (shortest round-trip form), so ``read_csv`` gives them back exactly.
  """
  if columns is None:
    columns = list(dict.fromkeys(k for row in rows for k in row))
  text = io.StringIO()
  writer = csv.DictWriter(text, fieldnames=list(columns), restval="", lineterminator="\n",
                          extrasaction="raise")
  writer.writeheader()
  writer.writerows(rows)
  write_text_atomic(path, text.getvalue())


def write_section(path: str, name: str, text: str) -> None:
  """Replaces the section ``name`` of the Markdown file ``path`` (or appends it), atomically.

  A section runs from the line ``<!-- section: name -->`` to ``<!-- end of section: name -->``;
  scripts that share one report each keep their own section of it. An existing file that
  does not start with a section (``SECTIONS_START``) is not such a report: it is refused
  (``check_file_destination``), not added to.
  """
  check_file_destination(path, SECTIONS_START, "a Markdown file of named sections")
  begin, end = f"{SECTIONS_START}{name} -->", f"<!-- end of section: {name} -->"
  block = f"{begin}\n{text.rstrip()}\n{end}\n"
  old = ""
  if os.path.exists(path):
    with open(path) as f:
      old = f.read()
  if begin in old and end in old and old.index(begin) < old.index(end):
    new = old[:old.index(begin)] + block + old[old.index(end) + len(end):].lstrip("\n")
  else:
    new = old.rstrip("\n") + ("\n\n" if old else "") + block
  write_text_atomic(path, new)


def read_csv(path: str, types: Optional[Mapping[str, Callable[[str], object]]] = None,
             columns: Optional[Sequence[str]] = None,
             required: Sequence[str] = ()) -> List[Dict]:
  """The rows of a CSV file written by ``write_csv``, as dicts.

  ``types`` converts named columns (the rest stay strings); empty cells are left
  out of the row. With ``columns`` the header must be exactly those; with
  ``required`` it must hold those (others may follow) and no row may leave them
  empty. Errors name the file and the row.
  """
  types = types or {}
  with open(path, newline="") as f:
    reader = csv.DictReader(f)
    header = tuple(reader.fieldnames or ())
    if columns is not None and header != tuple(columns):
      raise ValueError(f"{path}: expected columns {','.join(columns)}, got {','.join(header)}.")
    missing = [c for c in required if c not in header]
    if missing:
      raise ValueError(f"{path} lacks the columns {', '.join(missing)} (it has "
                       f"{','.join(header)}): it is not the file expected here, or was cut.")
    rows = []
    for row in reader:
      line = reader.line_num
      try:
        if None in row or None in row.values():  # More or fewer cells than the header.
          cells = sum(v is not None for k, v in row.items() if k is not None)
          raise ValueError(f"{cells + len(row.get(None, []))} cells for {len(header)} columns")
        rows.append({k: types.get(k, str)(v) for k, v in row.items() if v != ""})
      except (KeyError, ValueError, TypeError) as e:
        raise ValueError(f"Malformed CSV file {path}, line {line}: {e}.") from e
      empty = [c for c in required if c not in rows[-1]]
      if empty:
        raise ValueError(f"Malformed CSV file {path}, line {line}: no value for "
                         f"{', '.join(empty)}.")
    return rows


def load_npz(path: str, keys: Optional[Sequence[str]] = None, fix: str = "") -> Dict:
  """The arrays ``keys`` (all by default) of the ``.npz`` file ``path``, read now; a
  truncated or corrupt file, or a missing array, is a ValueError naming it and ``fix``."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  try:
    with np.load(path) as archive:
      return {k: archive[k] for k in (archive.files if keys is None else keys)}
  except (zipfile.BadZipFile, zlib.error, KeyError, ValueError, OSError, EOFError) as e:
    raise ValueError(f"{path} is truncated or corrupt ({type(e).__name__}: {e}); "
                     f"{fix}".strip()) from e


def read_json(path: str, fix: str = "") -> Union[Dict, List]:
  """The JSON value of ``path``; a missing or unreadable file is a ValueError naming it and
  ``fix`` (what to do about it)."""
  try:
    with open(path) as f:
      return json.load(f)
  except FileNotFoundError as e:
    raise ValueError(f"No file {path}. {fix}".strip()) from e
  except (OSError, ValueError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors.
    raise ValueError(f"{path} is not valid JSON ({e}): it was cut or edited. {fix}".strip()) from e


# What tf.saved_model.save (and Keras) put in a SavedModel directory.
_SAVED_MODEL_ENTRIES = frozenset({"saved_model.pb", "saved_model.pbtxt", "variables", "assets",
                                  "fingerprint.pb", "keras_metadata.pb"})

# Written first into the temporary directory of ``write_directory_atomic`` and removed last: a
# leftover holding it is a killed write's, deleted whatever else it holds (the writer's own
# temporaries, such as TensorFlow's ``weights_temp/`` or ``saved_model.pb.tmp<id>``).
_PARTIAL_MARKER = ".partial_write_directory_atomic"


def check_directory_destination(path: str, entries, what: str) -> None:
  """Raises a ValueError unless ``path`` is absent, empty or holds only ``entries`` (a
  directory of ``what`` written earlier, safe to replace).

  ``entries`` are names or ``fnmatch`` patterns (``weights.data-*``: any number of shards).
  """
  if not os.path.lexists(path):
    return
  if not os.path.isdir(path):
    raise ValueError(f"{path} exists and is not a directory; refusing to replace it with "
                     f"{what}: choose another path.")
  others = sorted(name for name in os.listdir(path)
                  if not any(fnmatch.fnmatchcase(name, entry) for entry in entries))
  if others:
    raise ValueError(f"{path} holds files that are not part of {what} ({', '.join(others[:5])}"
                     f"{', ...' if len(others) > 5 else ''}); refusing to replace it: choose "
                     "another path.")


def check_file_destination(path: str, starts_with: Union[str, bytes], what: str) -> None:
  """Raises a ValueError if ``path`` exists and is not a ``what`` written earlier.

  A file is one of ours, safe to replace, if it is empty or starts with
  ``starts_with`` (a report's title, a format's magic bytes); anything else (a
  user's notes, another tool's output) is kept.
  """
  if not os.path.lexists(path):
    return
  if os.path.isdir(path):
    raise ValueError(f"{path} is a directory; give the path of the {what} file.")
  prefix = starts_with.encode() if isinstance(starts_with, str) else starts_with
  with open(path, "rb") as f:
    head = f.read(len(prefix))
  if head and head != prefix:
    raise ValueError(f"{path} exists and is not {what} (it does not start with {prefix[:60]!r}); "
                     "refusing to replace it: choose another path, or move that file away.")


def check_saved_model_destination(path: str) -> None:
  """Raises, before any work, the ValueError ``write_saved_model_atomic(path, ...)`` would."""
  check_directory_write(path, _SAVED_MODEL_ENTRIES, "a SavedModel")


def check_directory_write(path: str, entries, what: str) -> None:
  """Raises the ValueError ``write_directory_atomic(path, ..., entries, what)`` would raise
  before writing, and changes nothing: for checks before any work.

  ``path`` and its leftovers ``path.tmp`` and ``path.old`` must each be absent,
  empty or hold ``entries`` only, unless marked as a killed write's own.
  """
  path = path.rstrip("/")
  for directory in (path, path + ".tmp", path + ".old"):
    if not _is_partial_write(directory):
      check_directory_destination(directory, entries, what)


def write_directory_atomic(path: str, write: Callable[[str], None], entries, what: str) -> str:
  """``write(tmp_dir)`` writes a directory that then replaces ``path`` by renames.

  ``path`` must be absent, empty or a directory of ``entries`` only (names or
  ``fnmatch`` patterns), checked first. ``write`` gets an existing directory,
  ``path.tmp``, marked as this helper's until ``write`` returns; until the final
  rename an existing ``path`` stays intact. What a killed process leaves is
  cleaned up by the next write: a marked ``path.tmp`` is deleted, an earlier
  directory left as ``path.old`` between the renames is put back first, and
  unmarked leftovers are deleted only if they hold ``entries`` alone (the names
  may be a user's).
  """
  path = path.rstrip("/")
  tmp, old = path + ".tmp", path + ".old"
  check_directory_write(path, entries, what)
  if not os.path.lexists(path) and os.path.isdir(old):  # Killed between the renames.
    os.replace(old, path)
  for leftover in (tmp, old):
    if os.path.lexists(leftover):
      shutil.rmtree(leftover)
  os.makedirs(tmp)
  marker = os.path.join(tmp, _PARTIAL_MARKER)
  try:
    open(marker, "w").close()
    write(tmp)
    os.remove(marker)  # Complete: from here a leftover tmp holds entries only.
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  if os.path.exists(path):
    os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old)
  else:
    os.replace(tmp, path)
  return path


def _is_partial_write(directory: str) -> bool:
  """Whether ``directory`` is the temporary directory of a killed ``write_directory_atomic``."""
  return (os.path.isdir(directory) and not os.path.islink(directory)
          and os.path.isfile(os.path.join(directory, _PARTIAL_MARKER)))


def directory_to_read(path: str) -> str:
  """The directory a reader should read for ``path``: ``path.old`` if a
  ``write_directory_atomic`` was killed between its renames (``path`` is then
  absent), else ``path``. Nothing is moved: only the next write puts it back.
  """
  path = path.rstrip("/")
  old = path + ".old"
  if not os.path.lexists(path) and os.path.isdir(old):
    return old
  return path


def write_saved_model_atomic(path: str, save: Callable[[str], None]) -> str:
  """``save(tmp_dir)`` writes a SavedModel that then replaces ``path`` by renames.

  ``path`` must be absent, empty or an earlier SavedModel (checked first);
  until the final rename an existing one stays intact.
  """
  return write_directory_atomic(path, save, _SAVED_MODEL_ENTRIES, "a SavedModel")

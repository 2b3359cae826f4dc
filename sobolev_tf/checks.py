"""Argument checks shared by the library: each names the argument it rejects.

Eagerly a failed check is a ``ValueError``; inside a ``tf.function`` a check
whose answer depends on tensor values runs as a TF assertion and fails the step
with an ``InvalidArgumentError`` carrying the same message.
"""

from __future__ import annotations

import importlib.util
import math
import os
import tempfile
from typing import Sequence

import tensorflow as tf

from sobolev_tf import files

__all__ = ["as_input", "as_dtype", "check_nonempty_batch", "check_order", "check_finite",
           "check_number",
           "check_non_negative", "check_same_shape", "check_config", "check_widths",
           "check_writable_directory", "check_output_file", "check_runs_to_report",
           "check_distinct", "check_loss_weights", "check_config_kind", "load_config_file"]


def as_input(x) -> tf.Tensor:
  """``x`` as a float tensor with a batch dimension, to differentiate with respect to."""
  x = tf.convert_to_tensor(x)
  if not x.dtype.is_floating:
    raise ValueError(
        f"x must be a floating point tensor to differentiate with respect to "
        f"it, got dtype {x.dtype.name}. Cast it first, e.g. tf.cast(x, tf.float32).")
  if x.shape.rank is not None and x.shape.rank < 1:
    raise ValueError(f"x must have a leading batch dimension, got shape {x.shape}.")
  return x


def check_nonempty_batch(x: tf.Tensor, name: str = "x") -> tf.Tensor:
  """Refuses a batch of 0 examples (its mean loss would be NaN)."""
  message = f"{name} has an empty batch (shape {x.shape}): give at least one example."
  if x.shape.rank is not None and x.shape[0] is not None:
    if x.shape[0] == 0:
      raise ValueError(message)
    return x
  if tf.executing_eagerly():
    if int(tf.shape(x)[0]) == 0:
      raise ValueError(message)
    return x
  with tf.control_dependencies([tf.debugging.assert_positive(tf.shape(x)[0], message=message)]):
    return tf.identity(x)


def as_dtype(t, dtype: tf.DType, name: str) -> tf.Tensor:
  """``t`` as a tensor of the floating ``dtype``: arrays and floating tensors of another
  precision are cast (as NumPy arrays always were); anything else is named."""
  if isinstance(t, (tf.Tensor, tf.Variable)) and t.dtype != dtype:
    if t.dtype.is_floating or t.dtype.is_integer:
      return tf.cast(t, dtype)
    raise ValueError(f"{name} has dtype {t.dtype.name}; it must be numeric (the model "
                     f"computes in {dtype.name}).")
  return tf.convert_to_tensor(t, dtype=dtype)


def check_order(order: int, minimum: int = 0) -> int:
  if not isinstance(order, int) or isinstance(order, bool) or order < minimum:
    raise ValueError(f"order must be an integer >= {minimum}, got {order!r}.")
  return order


def check_finite(t: tf.Tensor, name: str) -> tf.Tensor:
  """Raises a ValueError naming ``name`` if ``t`` holds NaN or Inf.

  Eagerly this is a ``ValueError``; inside a ``tf.function`` the check runs as
  ``tf.debugging.assert_all_finite`` and fails the step with an
  ``InvalidArgumentError`` carrying the same message.
  """
  t = tf.convert_to_tensor(t)
  if not t.dtype.is_floating:
    return t
  message = (f"{name} contains NaN or Inf values; inputs and targets must be finite "
             "(check the data or the finite-difference step).")
  if tf.executing_eagerly():
    if not bool(tf.reduce_all(tf.math.is_finite(t))):
      raise ValueError(message)
    return t
  return tf.debugging.assert_all_finite(t, message)


def check_same_shape(expected: tf.Tensor, actual: tf.Tensor, name: str,
                     what: str) -> None:
  """Static check where shapes are known; dynamic assert otherwise. No broadcasting."""
  if expected.shape.rank is not None and actual.shape.rank is not None:
    if not expected.shape.is_compatible_with(actual.shape):
      raise ValueError(
          f"{name} has shape {actual.shape} but the model's {what} has shape "
          f"{expected.shape}; they must match exactly (nothing is broadcast).")
    if expected.shape.is_fully_defined() and actual.shape.is_fully_defined():
      return
  if tf.executing_eagerly():
    if tuple(expected.shape) != tuple(actual.shape):
      raise ValueError(f"{name} has shape {actual.shape} but the model's {what} "
                       f"has shape {expected.shape}.")
    return
  tf.debugging.assert_equal(
      tf.shape(expected), tf.shape(actual),
      message=f"{name} must have the shape of the model's {what}")


def check_non_negative(w: tf.Tensor, name: str) -> tf.Tensor:
  message = f"{name} must be >= 0 (0 masks an entry)."
  if tf.executing_eagerly():
    if not bool(tf.reduce_all(w >= 0)):
      raise ValueError(message)
    return w
  with tf.control_dependencies([tf.debugging.assert_non_negative(w, message=message)]):
    return tf.identity(w)


def check_widths(widths, name: str = "hidden_sizes") -> tuple:
  """``widths`` of hidden layers as a tuple: integers > 0 (a 0-wide layer has no weights to
  scale its initialisation by)."""
  if isinstance(widths, (int, str)) or not all(
      isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in widths):
    raise ValueError(f"{name} must be positive widths, e.g. (256, 256), got {widths!r}.")
  return tuple(widths)


def check_number(value, name: str, what: str = "a number", low: float = -math.inf,
                 high: float = math.inf, finite: bool = True, fix: str = ""):
  """``value`` if it is an int or float (not a bool, not NaN; finite with ``finite``) in
  ``[low, high]``; else a ValueError "``name`` must be ``what``, got ..., ``fix``"."""
  if (isinstance(value, bool) or not isinstance(value, (int, float)) or value != value
      or (finite and not math.isfinite(value)) or not low <= value <= high):
    raise ValueError(f"{name} must be {what}, got {value!r}. {fix}".strip())
  return value


def check_config(config, positive: Sequence[str] = (), non_negative: Sequence[str] = (),
                 fractions: Sequence[str] = (), widths: Sequence[str] = (),
                 seeds: Sequence[str] = (), counts: Sequence[str] = ()) -> None:
  """Refuses a config before any work: names the first field that is out of range.

  ``positive`` fields must be numbers > 0, ``non_negative`` >= 0, ``fractions``
  in (0, 1), ``widths`` lists of integers > 0, ``seeds`` non-empty lists of
  integers >= 0 and ``counts`` non-empty lists of integers >= 1. Booleans and
  NaN are refused everywhere; infinity passes where it is in range (a rhythm of
  ``inf`` minutes is never).
  """
  number = lambda name: check_number(config[name], f"config.{name}", finite=False)

  for name in positive:
    if not number(name) > 0:
      raise ValueError(f"config.{name} must be > 0, got {config[name]!r}.")
  for name in non_negative:
    if not number(name) >= 0:
      raise ValueError(f"config.{name} must be >= 0, got {config[name]!r}.")
  for name in fractions:
    if not 0 < number(name) < 1:
      raise ValueError(f"config.{name} must be in (0, 1), got {config[name]!r}.")
  for name in widths:
    check_widths(config[name], f"config.{name}")
  for names, minimum in ((seeds, 0), (counts, 1)):
    for name in names:
      values = config[name]
      if isinstance(values, (int, str)) or not len(values) or not all(
          isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in values):
        raise ValueError(f"config.{name} must be a non-empty list of integers >= {minimum}, "
                         f"got {values!r}.")


def load_config_file(spec: str):
  """The config of ``path[:variant]`` (a config file, loaded by path as ml_collections does)."""
  path, _, variant = spec.partition(":")
  module_spec = importlib.util.spec_from_file_location("config_file", path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(variant) if variant else module.get_config()


def check_config_kind(config, default: str) -> None:
  """Refuses, before any work, a config written for another script.

  ``default``: the script's default ``--config``, ``path[:variant]``. Every
  variant of a config file has the keys of its default, so a config that lacks
  some came from another file (which would otherwise fail later with a bare
  ``AttributeError``). Only top-level keys are compared; extra keys pass.
  """
  path = default.partition(":")[0]
  expected = load_config_file(default)
  missing = sorted(set(expected) - set(config))
  if missing:
    shown = ", ".join(missing[:6]) + (", ..." if len(missing) > 6 else "")
    raise ValueError(f"--config is not a config for this script: it lacks {shown}. This script "
                     f"takes configs/{os.path.basename(path)}[:<variant>].")


def check_writable_directory(path: str, what: str) -> str:
  """Creates ``path`` if needed and checks that files can be written there, before any work."""
  try:
    os.makedirs(path, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path, prefix=".write_test_"):
      pass
  except OSError as e:
    raise ValueError(f"Cannot write the {what} to {path}: {e.strerror or e}.") from e
  return path


def check_output_file(path: str, what: str, suffix: str = "", starts_with=None) -> str:
  """Checks, before any work, that the file ``path`` can be written (and ends in ``suffix``).

  ``starts_with``: how every file this output may replace starts (a report's
  title, a format's magic bytes); an existing file that does not is kept
  (``files.check_file_destination``).
  """
  if suffix and not path.endswith(suffix):
    raise ValueError(f"The {what} path {path} must end in {suffix}.")
  if os.path.isdir(path):
    raise ValueError(f"The {what} path {path} is a directory; give a file name.")
  if starts_with is not None:
    files.check_file_destination(path, starts_with, f"a {what} written earlier")
  check_writable_directory(os.path.dirname(os.path.abspath(path)), what)
  return path


def check_runs_to_report(runs: int, source: str, report: str) -> None:
  """Refuses to replace ``report`` with an empty one when ``source`` holds no finished run
  (a mistyped or empty workdir, or another experiment's)."""
  if runs < 1:
    raise ValueError(f"No finished run in {source}: refusing to replace {report} with an empty "
                     "report. Check the path (and that it is this experiment's workdir).")


def check_distinct(values: Sequence, name: str) -> list:
  """``values`` (a flag's list) as a list, refused if empty or if it names a value twice."""
  values = list(values)
  if not values:
    raise ValueError(f"{name} is empty: name at least one.")
  twice = sorted({v for v in values if values.count(v) > 1})
  if twice:
    raise ValueError(f"{name} names {', '.join(map(str, twice))} twice: each runs once.")
  return values


def check_loss_weights(derivative_weights, value_weight) -> tuple:
  """``derivative_weights`` as a tuple of floats; every weight must be finite and >= 0."""
  weights = ((float(derivative_weights),) if isinstance(derivative_weights, (int, float))
             else tuple(float(w) for w in derivative_weights))
  for name, values in (("derivative_weights", weights), ("value_weight", (float(value_weight),))):
    if not all(math.isfinite(w) and w >= 0 for w in values):
      raise ValueError(f"{name} must be finite and >= 0, got {values if len(values) > 1 else values[0]}.")
  return weights

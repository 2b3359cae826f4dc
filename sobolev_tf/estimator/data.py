"""The estimator's data: checked arrays, a seeded validation split, streamed statistics."""

from __future__ import annotations

import hashlib
import math
from typing import Optional

import numpy as np
import tensorflow as tf

__all__ = ["as_float_array", "check_finite", "check_arrays", "split", "dataset_statistics",
           "digest", "fingerprint", "finite_non_negative"]


def as_float_array(a, name: str) -> np.ndarray:
  if isinstance(a, (tf.Tensor, tf.Variable)):
    a = a.numpy()
  try:
    a = np.asarray(a)
  except (TypeError, ValueError) as e:
    raise ValueError(f"{name} must be an array of numbers: {e}") from e
  if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
    raise ValueError(f"{name} must be an array of numbers, got dtype {a.dtype}.")
  return a.astype(np.float64)


def check_finite(a: np.ndarray, name: str, mask: Optional[np.ndarray] = None) -> None:
  bad = ~np.isfinite(a) if mask is None else ~np.isfinite(a) & (mask > 0)
  if bad.any():
    where = np.argwhere(bad)[0]
    hint = " (where dydx_weight is > 0)" if mask is not None else ""
    fix = " Mask missing partials with dydx_weight=0." if name == "dydx" else ""
    raise ValueError(f"{name} holds NaN or Inf{hint}, first at index {tuple(where.tolist())}."
                     f"{fix}")


def check_arrays(x, y, dydx, sample_weight, dydx_weight, what: str = "",
                 directions=None) -> dict:
  """Checked float64 arrays ``x [m, n]``, ``y [m, out]``, ``dy [m, out, n]`` (or ``[m, out]``
  along ``directions [m, n]``), weights."""
  x = as_float_array(x, what + "x")
  if x.ndim != 2:
    raise ValueError(f"{what}x must have shape [examples, features], got {x.shape}"
                     + ("; reshape a single feature with x.reshape(-1, 1)." if x.ndim == 1
                        else "."))
  m, n = x.shape
  if m < 1 or n < 1:
    raise ValueError(f"{what}x has shape {x.shape}: it needs at least one example and one "
                     "feature.")
  y = as_float_array(y, what + "y")
  if y.ndim not in (1, 2) or len(y) != m:
    raise ValueError(f"{what}y must have shape [{m}] or [{m}, outputs] for x of shape "
                     f"{x.shape}, got {y.shape}.")
  y2 = y.reshape(m, -1)
  out = y2.shape[1]
  arrays = dict(x=x, y=y2, dy=None, sample_weight=None, dy_weight=None, directions=None)
  if directions is not None:
    if dydx is None:
      raise ValueError(f"{what}directions needs the directional derivatives: give dydx "
                       f"[{m}]" + (f" or [{m}, {out}]" if out > 1 else "") + ".")
    v = as_float_array(directions, what + "directions")
    if v.shape != (m, n):
      raise ValueError(f"{what}directions must have shape [{m}, {n}] like x, got {v.shape}.")
    check_finite(v, what + "directions")
    dy = as_float_array(dydx, what + "dydx")
    if dy.size != m * out or dy.shape not in ((m,), (m, out)):
      raise ValueError(f"{what}dydx along directions must have shape [{m}]"
                       + (f" or [{m}, {out}]" if out > 1 else "") + f", got {dy.shape}.")
    arrays.update(directions=v, dy=dy.reshape(m, out))
    dydx = None  # Checked here.
    shape_of_dy = (m, out)
  else:
    shape_of_dy = (m, out, n)
  if dydx is not None:
    dy = as_float_array(dydx, what + "dydx")
    if dy.shape in ((m, n),) and out == 1:
      dy = dy.reshape(m, 1, n)
    if dy.shape != (m, out, n):
      expected = f"[{m}, {n}]" + (f" or [{m}, 1, {n}]" if out == 1 else f" ([{m}, {out}, {n}])")
      raise ValueError(f"{what}dydx must have shape {expected} for x {x.shape} and y "
                       f"{y.shape}, got {dy.shape}.")
    arrays["dy"] = dy
  if dydx_weight is not None:
    if arrays["dy"] is None:
      raise ValueError(f"{what}dydx_weight masks derivative labels: give dydx too.")
    w = as_float_array(dydx_weight, what + "dydx_weight")
    if w.size == arrays["dy"].size and w.shape in ((m, n), (m,), (m, out), (m, out, n)):
      w = w.reshape(shape_of_dy)
    else:
      raise ValueError(f"{what}dydx_weight must have the shape of dydx "
                       f"{tuple(np.shape(dydx))}, got {w.shape}.")
    check_finite(w, what + "dydx_weight")
    if (w < 0).any():
      raise ValueError(f"{what}dydx_weight must be >= 0 (0 masks a missing partial).")
    arrays["dy_weight"] = w
  if sample_weight is not None:
    w = as_float_array(sample_weight, what + "sample_weight")
    if w.shape != (m,):
      raise ValueError(f"{what}sample_weight must have shape [{m}], got {w.shape}.")
    check_finite(w, what + "sample_weight")
    if (w < 0).any():
      raise ValueError(f"{what}sample_weight must be >= 0.")
    arrays["sample_weight"] = w
  check_finite(x, what + "x")
  check_finite(y2, what + "y")
  if arrays["dy"] is not None:
    check_finite(arrays["dy"], what + "dydx", arrays["dy_weight"])
  return arrays


def split(arrays: dict, fraction, seed: int):
  if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
    raise ValueError(f"validation_split must be a fraction in (0, 1), got {fraction!r}.")
  m = len(arrays["x"])
  held = int(round(fraction * m))
  if held < 1 or held > m - 1:
    raise ValueError(f"validation_split={fraction} of {m} examples leaves {m - held} to train "
                     f"and {held} to validate; both need at least one.")
  order = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5A11])).permutation(m)
  pick = lambda idx: {k: None if v is None else v[idx] for k, v in arrays.items()}
  return pick(np.sort(order[held:])), pick(np.sort(order[:held]))


def dataset_statistics(dataset: tf.data.Dataset) -> dict:
  """Count, means and standard deviations of x and y, and the mean square of each partial,
  in one pass over the batches (float64 sums, shifted by the first batch's mean so that
  large offsets do not cancel the variance)."""
  count, sums, shift = 0, {}, {}
  for batch in dataset:
    x = np.asarray(batch[0], np.float64)
    y = np.asarray(batch[1], np.float64).reshape(len(x), -1)
    parts = dict(x=x, y=y)
    if len(batch) == 3:
      parts["dy"] = np.asarray(batch[2], np.float64).reshape(len(x), y.shape[1], -1)
    for name, a in parts.items():
      if not np.all(np.isfinite(a)):
        raise ValueError(f"The dataset's {'dydx' if name == 'dy' else name} holds NaN or Inf "
                         f"(batch after {count} examples).")
      if name == "dy":  # Its mean square, not its variance, is wanted: no shift.
        shifted = a
      else:
        shifted = a - shift.setdefault(name, a.mean(axis=0))
      s1, s2 = sums.get(name, (0.0, 0.0))
      sums[name] = (s1 + shifted.sum(axis=0), s2 + np.square(shifted).sum(axis=0))
    count += len(x)
  if count < 2:
    raise ValueError(f"The dataset holds {count} example(s); fitting needs at least 2.")
  stats = dict(count=count)
  for name in ("x", "y"):
    mean = sums[name][0] / count
    stats[f"{name}_mean"] = shift[name] + mean
    stats[f"{name}_std"] = np.sqrt(np.maximum(sums[name][1] / count - mean**2, 0.0))
  stats["n_in"], stats["n_out"] = len(stats["x_mean"]), len(stats["y_mean"])
  if "dy" in sums:
    stats["dy_mean_square"] = sums["dy"][1] / count
  return stats


def finite_non_negative(value) -> bool:
  return (not isinstance(value, bool) and isinstance(value, (int, float, np.number))
          and math.isfinite(value) and value >= 0)


def digest(arrays) -> str:
  """A digest of a list of NumPy arrays (values and shapes)."""
  h = hashlib.sha256()
  for a in arrays:
    a = np.asarray(a)
    h.update(a.tobytes() + str(a.shape).encode())
  return h.hexdigest()


def fingerprint(data, validation) -> str:
  """A digest of the scaled training (and validation) arrays."""
  digest = hashlib.sha256()
  for part in (data, validation):
    for a in (part or ()):
      digest.update(b"-" if a is None else a.numpy().tobytes() + str(a.shape).encode())
  return digest.hexdigest()

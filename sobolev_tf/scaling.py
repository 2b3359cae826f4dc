"""Standardising Sobolev data, and Huge & Savine's balancing of its loss terms.

Whether derivative matching helps depends on scale: a function whose values
reach 1e5 (Beale) or whose inputs span [-500, 500] gives value and derivative
terms of wildly different sizes. ``SobolevScaler`` standardises inputs and
values and rescales derivatives by the chain rule. With ``x = c + s * u`` and
``y = m + t * v``,

    dv/du_i = (dy/dx_i) * s_i / t,     d2v/du_i du_k = (d2y/dx_i dx_k) * s_i s_k / t,

and predictions map back by the inverse factors.

``DerivativeBalance`` is the weighting of differential machine learning (Huge
& Savine, 2020, "Differential Machine Learning", section 2 and their public
notebooks): on scaled data, each partial ``j`` gets ``lambda_j = 1 / rms(dy_j)``,
and the value and derivative terms get ``alpha = 1 / (1 + lam * n)`` and
``beta = 1 - alpha`` for ``n`` inputs, so that

    loss = alpha * MSE(y) + beta * mean_j lambda_j^2 (dy_j - dm_j)^2.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional

import numpy as np
import tensorflow as tf

__all__ = ["SobolevScaler", "DerivativeBalance", "OriginalUnits"]


def _as_array(a) -> np.ndarray:
  return a.numpy() if isinstance(a, tf.Tensor) else np.asarray(a)


def _like(a, stat: np.ndarray):
  """``stat`` as a constant of ``a``'s kind and dtype (TF tensor or NumPy array)."""
  if isinstance(a, (tf.Tensor, tf.Variable)):
    return tf.constant(stat, dtype=a.dtype)
  return stat.astype(np.result_type(np.asarray(a).dtype, np.float32), copy=False)


def _std(a: np.ndarray) -> np.ndarray:
  """Per-feature standard deviation over the batch; 1 where it is 0 (constant feature)."""
  std = np.std(a, axis=0) if len(a) > 1 else np.zeros(a.shape[1:])
  return np.where(std > 0, std, 1.0)


def _single_or_tuple(items):
  return items[0] if len(items) == 1 else tuple(items)


class SobolevScaler:
  """Standardises ``(x, y, dy, d2y)`` consistently (chain rule) and maps back.

      scaler = st.SobolevScaler().fit(x, y, dy)
      xs, ys, dys = scaler.transform(x, y, dy)
      ... train on (xs, ys, dys) ...
      y_pred, dy_pred = scaler.inverse_transform(y=ys_pred, dy=dys_pred)

  Shapes follow ``sobolev_tf.derivatives``: ``x [B, *in]``, ``y [B, *out]``,
  ``dy [B, *out, *in]``, ``d2y [B, *out, *in, *in]``. Statistics are per input
  feature and per output. Works on NumPy arrays and TF tensors.

  Args:
    x_offset, x_scale: fixed input centre and scale (e.g. the middle and
      half-width of a known domain), ``[*in]`` or scalars; default: fitted mean
      and standard deviation.
    y_offset, y_scale: the same for values, ``[*out]``.
  """

  def __init__(self, x_offset=None, x_scale=None, y_offset=None, y_scale=None):
    self._fixed = dict(x_offset=x_offset, x_scale=x_scale, y_offset=y_offset, y_scale=y_scale)
    for name in ("x_scale", "y_scale"):
      if self._fixed[name] is not None and not np.all(np.asarray(self._fixed[name]) > 0):
        raise ValueError(f"{name} must be positive, got {self._fixed[name]!r}.")
    self.x_offset = self.x_scale = self.y_offset = self.y_scale = None
    self.scaled_gradient_rms = None

  def fit(self, x, y, dy=None, d2y=None, dy_weight=None) -> "SobolevScaler":
    """Fits the statistics on training data; returns the scaler.

    ``dy``, if given, also records the per-partial RMS of the scaled gradients
    that ``balance`` needs, over the entries whose ``dy_weight`` (a mask of
    ``dy``'s shape, as in ``sobolev_loss``) is > 0. ``d2y`` is accepted for
    symmetry with ``transform``.
    """
    del d2y  # The statistics come from x and y alone.
    x, y = _as_array(x).astype(np.float64), _as_array(y).astype(np.float64)
    if x.ndim < 1 or y.ndim < 1 or len(x) != len(y) or len(x) == 0:
      raise ValueError(f"x and y must share a non-empty batch dimension, got shapes "
                       f"{x.shape} and {y.shape}.")
    for name, a in (("x", x), ("y", y)):
      if not np.all(np.isfinite(a)):
        first = tuple(np.argwhere(~np.isfinite(a))[0].tolist())
        raise ValueError(f"{name} holds NaN or Inf (first at index {first}): its statistics "
                         "would be NaN. Drop or repair those examples before fitting.")
    stat = lambda name, default: np.broadcast_to(
        np.asarray(self._fixed[name], np.float64) if self._fixed[name] is not None
        else default, default.shape).copy()
    self.x_offset = stat("x_offset", np.mean(x, axis=0))
    self.x_scale = stat("x_scale", _std(x))
    self.y_offset = stat("y_offset", np.mean(y, axis=0))
    self.y_scale = stat("y_scale", _std(y))
    if dy is not None:
      dy = _as_array(dy).astype(np.float64)
      mask = np.ones_like(dy) if dy_weight is None else (_as_array(dy_weight) > 0).astype(float)
      if mask.shape != dy.shape:
        raise ValueError(f"dy_weight has shape {mask.shape} but dy has shape {dy.shape}.")
      dy_scaled = self._derivative(np.where(mask > 0, dy, 0.0), 1, inverse=False)
      count = np.sum(mask, axis=0)
      rms = np.sqrt(np.sum(np.square(dy_scaled), axis=0) / np.maximum(count, 1))
      if not np.all(np.isfinite(rms)):
        raise ValueError("dy holds NaN or Inf where dy_weight is > 0 (or everywhere, without "
                         "dy_weight): mask missing partials with dy_weight.")
      # A partial never observed keeps lambda = 1; the mask keeps it out of the loss anyway.
      self.scaled_gradient_rms = np.where(count > 0, rms, 1.0)
    return self

  def _check_fitted(self):
    if self.x_scale is None:
      raise ValueError("SobolevScaler is not fitted: call fit(x, y, dy) first.")

  def _derivative_factor(self, order: int) -> np.ndarray:
    """``prod_k s_{i_k} / t_o`` of shape ``[*out, *in x order]``."""
    in_rank, out_rank = self.x_scale.ndim, self.y_scale.ndim
    factor = (1.0 / self.y_scale).reshape(self.y_scale.shape + (1,) * (in_rank * order))
    for k in range(order):
      shape = ((1,) * (out_rank + in_rank * k) + self.x_scale.shape
               + (1,) * (in_rank * (order - k - 1)))
      factor = factor * self.x_scale.reshape(shape)
    return factor

  def _derivative(self, d, order: int, inverse: bool):
    factor = self._derivative_factor(order)
    expected = factor.shape
    if tuple(d.shape[1:]) != expected:
      name = "dy" if order == 1 else f"d{order}y"
      raise ValueError(f"{name} has shape {tuple(d.shape)}; expected [B, *out, *in x {order}] "
                       f"= [B, {', '.join(map(str, expected))}] for the fitted x and y.")
    factor = _like(d, factor)
    return d / factor if inverse else d * factor

  def _values(self, a, offset, scale, name, inverse: bool):
    if tuple(a.shape[1:]) != offset.shape:
      raise ValueError(f"{name} has shape {tuple(a.shape)}; the scaler was fitted on "
                       f"[B, {', '.join(map(str, offset.shape))}].")
    offset, scale = _like(a, offset), _like(a, scale)
    return a * scale + offset if inverse else (a - offset) / scale

  def _map(self, x, y, dy, d2y, inverse: bool):
    self._check_fitted()
    out = []
    if x is not None:
      out.append(self._values(x, self.x_offset, self.x_scale, "x", inverse))
    if y is not None:
      out.append(self._values(y, self.y_offset, self.y_scale, "y", inverse))
    for order, d in ((1, dy), (2, d2y)):
      if d is not None:
        out.append(self._derivative(d, order, inverse))
    if not out:
      raise ValueError("Give at least one of x, y, dy, d2y.")
    return _single_or_tuple(out)

  def transform(self, x=None, y=None, dy=None, d2y=None):
    """Scaled versions of the arrays given, in the order ``(x, y, dy, d2y)``.

    One array in gives one array out; several give a tuple.
    """
    return self._map(x, y, dy, d2y, inverse=False)

  def inverse_transform(self, x=None, y=None, dy=None, d2y=None):
    """Original units of scaled inputs, values or derivatives (e.g. predictions)."""
    return self._map(x, y, dy, d2y, inverse=True)

  def in_original_units(self, model: Callable) -> "OriginalUnits":
    """``x -> inverse(model(transform(x)))``: a model trained on scaled data, in original units.

    Its derivatives with respect to the original ``x`` are the original-unit
    derivatives (the chain rule is done by autodiff). It is a ``tf.Module``
    that tracks ``model``, so it can go straight to ``export_with_derivatives``.
    """
    self._check_fitted()
    return OriginalUnits(model, self)

  def balance(self, lam: float = 1.0) -> "DerivativeBalance":
    """Huge & Savine's weights from the scaled gradients seen by ``fit(x, y, dy)``."""
    if self.scaled_gradient_rms is None:
      raise ValueError("balance() needs the gradients: fit(x, y, dy).")
    return DerivativeBalance.from_rms(self.scaled_gradient_rms,
                                      num_inputs=int(np.prod(self.x_scale.shape)), lam=lam)


class OriginalUnits(tf.Module):
  """A model trained on scaled data, called on and returning original units."""

  def __init__(self, model: Callable, scaler: SobolevScaler):
    super().__init__(name="original_units")
    self.model = model  # Tracked: its variables belong to this module.
    self._scaler = scaler

  def __call__(self, x):
    return self._scaler.inverse_transform(y=self.model(self._scaler.transform(x=x)))


@dataclasses.dataclass(frozen=True, eq=False)
class DerivativeBalance:
  """Weights of differential machine learning (Huge & Savine, 2020).

  Attributes:
    value_weight: ``alpha = 1 / (1 + lam * n)``.
    derivative_weight: ``beta = 1 - alpha``.
    partial_weights: ``lambda_j^2 / n`` per partial, ``[*out, *in]``, so that the
      summed squared error of ``sobolev_loss`` is their ``mean_j lambda_j^2 e_j^2``.
  """
  value_weight: float
  derivative_weight: float
  partial_weights: np.ndarray

  @classmethod
  def from_rms(cls, rms, num_inputs: int, lam: float = 1.0) -> "DerivativeBalance":
    """From the RMS of each scaled partial over the training set.

    A partial that is 0 everywhere keeps weight ``1 / n`` (``lambda_j = 1``)
    rather than an infinite one.
    """
    if not lam >= 0:
      raise ValueError(f"lam must be >= 0, got {lam!r}.")
    rms = np.asarray(rms, np.float64)
    if not np.all(np.isfinite(rms)):
      raise ValueError(f"rms must be finite, got {rms}; mask missing partials (dy_weight).")
    inv = np.where(rms > 0, 1.0 / np.where(rms > 0, rms, 1.0), 1.0)
    alpha = 1.0 / (1.0 + lam * num_inputs)
    return cls(alpha, 1.0 - alpha, np.square(inv) / num_inputs)

  @classmethod
  def from_derivatives(cls, dy_scaled, lam: float = 1.0,
                       input_rank: int = 1) -> "DerivativeBalance":
    """From scaled gradient targets ``[B, *out, *in]`` whose ``*in`` has ``input_rank`` dims."""
    dy_scaled = _as_array(dy_scaled).astype(np.float64)
    num_inputs = int(np.prod(dy_scaled.shape[dy_scaled.ndim - input_rank:]))
    return cls.from_rms(np.sqrt(np.mean(np.square(dy_scaled), axis=0)),
                        num_inputs=num_inputs, lam=lam)

  def weights_like(self, dy: tf.Tensor) -> tf.Tensor:
    """The per-partial weights broadcast to a gradient tensor ``[B, *out, *in]``."""
    w = np.asarray(self.partial_weights)
    if dy.shape.rank is not None and tuple(dy.shape[1:]) != w.shape:
      raise ValueError(f"balance has partial weights of shape {w.shape} but the model's "
                       f"gradient has shape {dy.shape}; fit the scaler on this model's data.")
    return tf.broadcast_to(tf.constant(w, dtype=dy.dtype)[None], tf.shape(dy))

  def get_config(self) -> dict:
    return dict(value_weight=float(self.value_weight),
                derivative_weight=float(self.derivative_weight),
                partial_weights=np.asarray(self.partial_weights).tolist())

  @classmethod
  def from_config(cls, config: Optional[dict]) -> Optional["DerivativeBalance"]:
    if config is None:
      return None
    return cls(config["value_weight"], config["derivative_weight"],
               np.asarray(config["partial_weights"], np.float64))

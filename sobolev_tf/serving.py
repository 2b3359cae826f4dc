"""SavedModels that serve a model's input derivatives next to its values.

A surrogate model is used for its derivatives as much as for its values
(sensitivities, gradient-based optimisation through it). The export needs
TensorFlow only to load:

    served = tf.saved_model.load(path)
    out = served.signatures["serving_default"](x=x)       # or served.values_and_derivatives(x)
    out["value"], out["derivative"]                         # [B, *out], [B, *out, *in]

With ``order=2`` the output also holds ``"derivative_2"`` ``[B, *out, *in, *in]``.
"""

from __future__ import annotations

import os
from typing import Callable, Sequence, Union

import tensorflow as tf

from sobolev_tf import checks
from sobolev_tf import derivatives
from sobolev_tf import files

__all__ = ["export_with_derivatives"]


class _Served(tf.Module):

  def __init__(self, model: Callable, spec: tf.TensorSpec, order: int):
    super().__init__(name="sobolev_served")
    self.model = model  # Tracked, so that its variables are saved.
    self.order = order

    @tf.function(input_signature=[spec])
    def values_and_derivatives(x):
      tensors = derivatives.derivative_tensors(self.model, x, self.order)
      out = {"value": tensors[0], "derivative": tensors[1]}
      for k in range(2, self.order + 1):
        out[f"derivative_{k}"] = tensors[k]
      return out

    self.values_and_derivatives = values_and_derivatives


def _input_spec(input_signature) -> tf.TensorSpec:
  specs = input_signature if isinstance(input_signature, Sequence) else [input_signature]
  if len(specs) != 1 or not isinstance(specs[0], tf.TensorSpec):
    raise ValueError("input_signature must be one tf.TensorSpec (or a list of one) for the "
                     f"model's input x, got {input_signature!r}.")
  spec = specs[0]
  if not spec.dtype.is_floating:
    raise ValueError(f"input_signature has dtype {spec.dtype.name}; derivatives need a floating "
                     "input, e.g. tf.TensorSpec([None, 2], tf.float32).")
  if spec.shape.rank is None or spec.shape.rank < 1:
    raise ValueError(f"input_signature has shape {spec.shape}; it needs a batch dimension "
                     "first, e.g. [None, 2].")
  return tf.TensorSpec(spec.shape, spec.dtype, name=spec.name or "x")


def export_with_derivatives(model: Callable, path: str,
                            input_signature: Union[tf.TensorSpec, Sequence[tf.TensorSpec]],
                            order: int = 1) -> str:
  """Writes a SavedModel whose serving signature returns values and input derivatives.

  Args:
    model: a Keras model, Sonnet module or ``tf.Module`` (its variables are
      saved), ``[B, *in] -> [B, *out]``. For a model trained on scaled data,
      ``scaler.in_original_units(model)`` serves original units.
    path: the SavedModel directory; absent, empty or an earlier SavedModel
      (anything else is refused before any work). Written to a temporary
      directory and renamed.
    input_signature: ``tf.TensorSpec`` of ``x``, batch dimension first (``None``
      for any batch size).
    order: highest derivative order served (1: gradient or Jacobian ``[B, *out,
      *in]``, as ``derivatives.derivative_tensors``; 2 adds the Hessians).

  Returns:
    ``path``.
  """
  spec = _input_spec(input_signature)
  if not isinstance(order, int) or isinstance(order, bool) or order < 1:
    raise ValueError(f"order must be an integer >= 1, got {order!r}.")
  files.check_saved_model_destination(path.rstrip("/"))
  checks.check_writable_directory(os.path.dirname(os.path.abspath(path.rstrip("/"))),
                                  "SavedModel")
  served = _Served(model, spec, order)
  try:
    served.values_and_derivatives.get_concrete_function()  # Traces once: errors surface here.
  except (TypeError, ValueError, tf.errors.OpError) as e:
    first = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
    raise ValueError(f"input_signature {spec} does not fit the model: calling it on a batch of "
                     f"shape {spec.shape} and dtype {spec.dtype.name} fails ({first}). Give the "
                     "model's input shape, batch first, and its dtype.") from e
  try:
    return files.write_saved_model_atomic(path, lambda tmp: tf.saved_model.save(
        served, tmp, signatures={"serving_default": served.values_and_derivatives}))
  except OSError as e:
    raise ValueError(f"Cannot write the SavedModel to {path}: {e.strerror or e}.") from e

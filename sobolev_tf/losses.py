"""The Sobolev training objective: eq. 1 and its stochastic form, eq. 2.

Eq. 1 (section 2 of the paper):

    sum_i [ l(m(x_i), f(x_i)) + sum_{j=1..K} l_j(D^j m(x_i), D^j f(x_i)) ]

Eq. 2 replaces each derivative tensor by its projection on a random direction v
drawn uniformly from the unit sphere:

    sum_i [ l(m(x_i), f(x_i)) + sum_j E_v l_j(<D^j m(x_i), v>, <D^j f(x_i), v>) ]

Projections contract one slot of ``D^j``: an input slot (``space="input"``,
``v`` in input space; a JVP at first order) or the output (``space="output"``,
``D^j <m, v>``; for the policy distillation objective of section 4.2,
``|| grad_s <log pi*(s), v> - grad_s <log pi(s), v> ||``).

Derivation of the optional rescaling: for v uniform on the unit sphere of R^d,
``E[v v^T] = I / d``, hence ``E <g, v>^2 = ||g||^2 / d``; multiplying the
squared-L2 term by d makes eq. 2 an unbiased estimate of eq. 1's term.

All losses reduce over every non-batch dimension per example and average over
the batch, so a term is comparable across batch sizes.
"""

from __future__ import annotations

import collections
import inspect
import warnings
from typing import Callable, Dict, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import tensorflow as tf

from sobolev_tf import checks
from sobolev_tf import derivatives as derivs

__all__ = [
    "SobolevTargets",
    "sobolev_loss",
    "squared_l2",
    "l1",
    "l2_norm",
    "categorical_kl_from_log_probs",
    "DERIVATIVE_LOSSES",
    "finite_difference_derivatives",
    "sobolev_terms",
    "batch_mean",
]

PerExampleLoss = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]


class SobolevTargets(collections.namedtuple(
    "SobolevTargets", ["values", "derivatives", "partial_weights"], defaults=(None,))):
  """Targets for eq. 1: values ``f(x)`` ``[B, *out]`` and ``D^j f(x)`` for j = 1..K.

  ``derivatives[j-1]`` has shape ``[B, *out, *in x j]`` (full tensors) or, with
  ``projected_targets=True`` of ``sobolev_loss``, ``[P, B, ...]``: already
  projected on the ``directions`` given there.

  ``partial_weights`` (optional, one entry per order, None for unweighted)
  weights each partial derivative of each example, with the shape of the full
  derivative target. A weight of 0 masks a partial that is missing from the
  data: its target may hold anything (NaN included) and contributes nothing,
  so data with derivatives at some points or for some inputs only trains.
  """


def _flatten_per_example(t: tf.Tensor) -> tf.Tensor:
  return tf.reshape(t, [tf.shape(t)[0], -1])


def _masked_difference(target: tf.Tensor, prediction: tf.Tensor, weights) -> tf.Tensor:
  """``target - prediction``, 0 where ``weights`` is 0.

  Masked entries are zeroed with ``where``, so a NaN standing in for a missing
  target reaches neither the value nor the gradient.
  """
  diff = target - prediction
  if weights is None:
    return diff
  return tf.where(tf.cast(weights, diff.dtype) > 0, diff, tf.zeros_like(diff))


def _sum_of_squares(target, prediction, weights) -> tf.Tensor:
  """Per-example ``sum_k w_k e_k^2``, as ``(sqrt(w_k) e_k)^2``: for ``w = s^2``
  exactly the square of the error measured in units scaled by ``s``."""
  diff = _masked_difference(target, prediction, weights)
  if weights is not None:
    diff = diff * tf.sqrt(tf.cast(weights, diff.dtype))
  return tf.reduce_sum(tf.square(_flatten_per_example(diff)), axis=1)


def squared_l2(target: tf.Tensor, prediction: tf.Tensor, weights=None) -> tf.Tensor:
  """Per-example ``sum_k w_k (target_k - prediction_k)^2`` (regression, section 4.1)."""
  return _sum_of_squares(target, prediction, weights)


def l1(target: tf.Tensor, prediction: tf.Tensor, weights=None) -> tf.Tensor:
  """Per-example ``sum_k w_k |target_k - prediction_k|`` (synthetic gradients, SM 4.2)."""
  diff = tf.abs(_masked_difference(target, prediction, weights))
  if weights is not None:
    diff = tf.cast(weights, diff.dtype) * diff
  return tf.reduce_sum(_flatten_per_example(diff), axis=1)


def l2_norm(target: tf.Tensor, prediction: tf.Tensor, weights=None) -> tf.Tensor:
  """Per-example ``(sum_k w_k (target_k - prediction_k)^2)^(1/2)``, not squared (distillation, 4.2).

  The square root has an infinite derivative at 0; the double ``where`` keeps the
  gradient finite (zero) when prediction equals target exactly.
  """
  sq = _sum_of_squares(target, prediction, weights)
  positive = sq > 0
  safe = tf.where(positive, sq, tf.ones_like(sq))
  return tf.where(positive, tf.sqrt(safe), tf.zeros_like(sq))


DERIVATIVE_LOSSES: Dict[str, PerExampleLoss] = {
    "squared_l2": squared_l2,
    "l1": l1,
    "l2_norm": l2_norm,
}


def categorical_kl_from_log_probs(target_log_probs: tf.Tensor,
                                  predicted_log_probs: tf.Tensor) -> tf.Tensor:
  """Per-example ``D_KL(pi || pi*)`` with pi the prediction (section 4.2).

  The paper distils by minimising ``D_KL(pi(s|theta) || pi*(s))``: the expectation
  is under the student, ``sum_a pi(a) (log pi(a) - log pi*(a))``.

  Args:
    target_log_probs: ``log pi*``, ``[B, A]``.
    predicted_log_probs: ``log pi``, ``[B, A]``.
  """
  target_log_probs = tf.convert_to_tensor(target_log_probs)
  predicted_log_probs = tf.convert_to_tensor(predicted_log_probs)
  if not target_log_probs.shape.is_compatible_with(predicted_log_probs.shape):
    raise ValueError(f"target_log_probs has shape {target_log_probs.shape} but "
                     f"predicted_log_probs has {predicted_log_probs.shape}: both are [B, actions] "
                     "of one game (do the teacher and student have as many actions?).")
  return tf.reduce_sum(
      tf.exp(predicted_log_probs) * (predicted_log_probs - target_log_probs), axis=-1)


_SAME_SHAPE_LOSSES = (squared_l2, l1, l2_norm, categorical_kl_from_log_probs)


def _resolve_loss(loss, name: str) -> PerExampleLoss:
  if callable(loss):
    return loss
  if isinstance(loss, str) and loss in DERIVATIVE_LOSSES:
    return DERIVATIVE_LOSSES[loss]
  raise ValueError(
      f"{name} must be one of {sorted(DERIVATIVE_LOSSES)} or a callable "
      f"(target, prediction) -> per-example loss, got {loss!r}.")


def _resolve_losses(derivative_loss, order: int, what: str) -> list:
  """One per-example loss per derivative order, from a name, a callable or a sequence."""
  if isinstance(derivative_loss, (list, tuple)):
    if len(derivative_loss) != order:
      raise ValueError(
          f"derivative_loss has {len(derivative_loss)} entries but "
          f"{what} has {order}; give one loss per order.")
    return [_resolve_loss(l, f"derivative_loss[{i}]") for i, l in enumerate(derivative_loss)]
  return [_resolve_loss(derivative_loss, "derivative_loss")] * order


def _accepts_weights(loss_fn) -> bool:
  try:
    return "weights" in inspect.signature(loss_fn).parameters
  except (TypeError, ValueError):
    return False


def _check_weighted_losses(loss_fns, weighted) -> None:
  """Every derivative loss that gets per-partial weights (or balance) takes ``weights=``."""
  for k, (fn, w) in enumerate(zip(loss_fns, weighted), start=1):
    if w and not _accepts_weights(fn):
      raise ValueError(f"derivative_loss of order {k} must accept weights= to use "
                       "per-partial weights (dy_weight or balance).")


def batch_mean(per_example: tf.Tensor, sample_weight: Optional[tf.Tensor] = None) -> tf.Tensor:
  """``sum_i w_i l_i / B``: Keras' ``sum_over_batch_size`` reduction (plain mean if w is None).

  Dividing by the batch size, not by ``sum_i w_i``, keeps a weight of 0 from
  changing the scale of the other examples' terms, as in Keras.
  """
  if per_example.shape.rank is not None and per_example.shape.rank > 1:
    per_example = tf.reduce_mean(_flatten_per_example(per_example), axis=1)
  if sample_weight is None:
    return tf.reduce_mean(per_example)
  weighted = tf.cast(sample_weight, per_example.dtype) * per_example
  return tf.reduce_sum(weighted) / tf.cast(tf.shape(per_example)[0], per_example.dtype)


def sobolev_terms(predictions: Sequence[tf.Tensor], targets: Sequence[Optional[tf.Tensor]], *,
                  value_loss: PerExampleLoss = squared_l2,
                  derivative_loss: Union[str, PerExampleLoss, Sequence] = "squared_l2",
                  partial_weights: Optional[Sequence[Optional[tf.Tensor]]] = None,
                  ) -> Dict[str, tf.Tensor]:
  """Eq. 1's terms per example, from values and derivatives already computed.

  A pure function: ``sobolev_loss`` is the (weighted) batch mean of these terms,
  and code that reduces otherwise (per model of a stack of models, say) or that
  has the derivatives already (a synthetic-gradient module's input gradient,
  which is also the gradient it hands down) calls it directly.

  Args:
    predictions: ``[m(x), D^1 m(x), ..., D^K m(x)]``: full derivative tensors, or
      their projections on the directions the targets are projected on.
    targets: ``[f(x), D^1 f(x), ..., D^K f(x)]``, the same shapes (nothing is
      broadcast); ``f(x)`` may be None for no value term.
    value_loss: per-example loss ``(target, prediction) -> [B]`` on values.
    derivative_loss: ``"squared_l2"``, ``"l1"``, ``"l2_norm"``, a callable, or one per order.
    partial_weights: one entry per order, None or weights of the derivative's
      shape (0 masks a partial; the loss must take ``weights=``).

  Returns:
    ``{"value": [B] (with a value target), "derivative_1": [B], ...}``, unreduced.
  """
  order = len(predictions) - 1
  if order < 0 or len(targets) != len(predictions):
    raise ValueError(f"predictions and targets must both be [value, D^1, ..., D^K]; got "
                     f"{len(predictions)} and {len(targets)} entries.")
  loss_fns = _resolve_losses(derivative_loss, order, "predictions")
  partial_weights = list(partial_weights) if partial_weights is not None else [None] * order
  if len(partial_weights) != order:
    raise ValueError(f"partial_weights has {len(partial_weights)} entries for {order} "
                     "derivative orders; give one per order (None for unweighted).")
  _check_weighted_losses(loss_fns, [w is not None for w in partial_weights])
  terms = {}
  if targets[0] is not None:
    if value_loss in _SAME_SHAPE_LOSSES:  # Others, e.g. sparse cross-entropy, check their own.
      checks.check_same_shape(predictions[0], targets[0], "targets values (y)", "output")
    terms["value"] = value_loss(targets[0], predictions[0])
  for k in range(1, order + 1):
    prediction, target, w = predictions[k], targets[k], partial_weights[k - 1]
    checks.check_same_shape(prediction, target, f"targets derivative of order {k}",
                            f"derivative of order {k}")
    if w is None:
      terms[f"derivative_{k}"] = loss_fns[k - 1](target, prediction)
    else:
      checks.check_same_shape(target, w, f"targets '{_derivative_key(k)}_weight'",
                              f"derivative of order {k}")
      terms[f"derivative_{k}"] = loss_fns[k - 1](target, prediction, weights=w)
  return terms


def _project_target(target: tf.Tensor, direction: tf.Tensor, out_rank: int,
                    in_rank: int, space: str) -> tf.Tensor:
  """Projects a full derivative target ``[B, *out, *in x j]`` like the model's.

  Input space: contract the first input slot with ``direction [B, *in]``.
  Output space: contract the output dims with ``direction [B, *out]``.
  """
  shape = tf.shape(target)
  batch = shape[0]
  if space == "input":
    lead = shape[1:1 + out_rank]
    slot = shape[1 + out_rank:1 + out_rank + in_rank]
    rest = shape[1 + out_rank + in_rank:]
    # Batched matmuls contract without materialising target * direction, which
    # for a distillation teacher's Jacobian is [200, 6, 84, 84, 4] floats.
    t = tf.reshape(target, [batch, tf.reduce_prod(lead), tf.reduce_prod(slot), -1])
    v = tf.reshape(direction, [batch, 1, 1, -1])
    projected = tf.squeeze(tf.linalg.matmul(v, t), axis=2)
    return tf.reshape(projected, tf.concat([[batch], lead, rest], axis=0))
  rest = shape[1 + out_rank:]
  t = tf.reshape(target, [batch, -1, tf.reduce_prod(rest)])
  u = tf.reshape(direction, [batch, 1, -1])
  return tf.reshape(tf.linalg.matmul(u, t), tf.concat([[batch], rest], axis=0))


def _derivative_key(j: int) -> str:
  return "dy" if j == 1 else f"d{j}y"


def _unpack_targets(targets):
  """``(values, derivatives, partial_weights)`` from any accepted form of targets."""
  if targets is None:
    return None, (), ()
  if isinstance(targets, SobolevTargets):
    return targets.values, tuple(targets.derivatives or ()), tuple(targets.partial_weights or ())
  if isinstance(targets, Mapping):
    keys = {"y"} | {_derivative_key(j) for j in range(1, 10)}
    keys |= {_derivative_key(j) + "_weight" for j in range(1, 10)}
    unknown = set(targets) - keys
    if unknown:
      raise ValueError(
          f"targets has unknown keys {sorted(unknown)}; expected 'y', 'dy', "
          "'d2y', 'd3y', ... and optionally 'dy_weight', 'd2y_weight', ...")
    derivatives, partial_weights = [], []
    for j in range(1, 10):
      if _derivative_key(j) not in targets:
        break
      derivatives.append(targets[_derivative_key(j)])
      partial_weights.append(targets.get(_derivative_key(j) + "_weight"))
    orphans = [k for k in targets if k.endswith("_weight")
               and k[:-len("_weight")] not in targets]
    if orphans:
      raise ValueError(f"targets has {orphans} without the derivatives they weight.")
    return targets.get("y"), tuple(derivatives), tuple(partial_weights)
  if isinstance(targets, (tuple, list)):
    if not targets:
      raise ValueError("targets must not be empty.")
    first, *rest = targets
    if len(rest) == 1 and isinstance(rest[0], (tuple, list)):
      rest = list(rest[0])
    return first, tuple(rest), ()
  raise ValueError(
      "targets must be SobolevTargets, a tuple (y, dy, d2y, ...), a tuple "
      f"(y, [dy, d2y, ...]) or a dict with 'y', 'dy', ...; got {type(targets).__name__}.")


def _sample_weight(sample_weight, x: tf.Tensor) -> Optional[tf.Tensor]:
  """Per-example weights ``[B]`` (a ``[B, 1]`` column is accepted, as Keras gives it)."""
  if sample_weight is None:
    return None
  w = tf.convert_to_tensor(sample_weight, dtype=x.dtype)
  if w.shape.rank == 2 and w.shape[1] == 1:
    w = w[:, 0]
  if w.shape.rank != 1:
    raise ValueError(f"sample_weight must have shape [B] (one weight per example), got "
                     f"shape {w.shape}.")
  if w.shape[0] is not None and x.shape[0] is not None:
    if w.shape[0] != x.shape[0]:
      raise ValueError(f"sample_weight has {w.shape[0]} entries but x has a batch of "
                       f"{x.shape[0]}.")
    return w
  if tf.executing_eagerly():
    return w
  with tf.control_dependencies([tf.debugging.assert_equal(
      tf.shape(w)[0], tf.shape(x)[0], message="sample_weight must have one entry per example")]):
    return tf.identity(w)


def sobolev_loss(
    model: Callable[[tf.Tensor], tf.Tensor],
    x,
    targets=None,
    *,
    teacher: Optional[Callable[[tf.Tensor], tf.Tensor]] = None,
    derivative_weights: Union[float, Sequence[float]] = (1.0,),
    value_weight: float = 1.0,
    value_loss: PerExampleLoss = squared_l2,
    derivative_loss: Union[str, PerExampleLoss, Sequence] = "squared_l2",
    sample_weight=None,
    balance=None,
    stochastic: bool = False,
    num_projections: int = 1,
    projection_space: str = "input",
    seed=None,
    directions: Optional[tf.Tensor] = None,
    projected_targets: bool = False,
    rescale_projections: bool = False,
    check_targets: bool = True,
    jvp_mode: str = "auto",
) -> Tuple[tf.Tensor, Dict[str, tf.Tensor]]:
  """Sobolev training loss, eq. 1 (full derivatives) or eq. 2 (``stochastic``).

  Every term is a batch mean of a per-example loss, ``sum_i w_i l_i / B`` with
  the ``sample_weight`` w (1 when not given), as Keras reduces losses.

  Args:
    model: callable ``[B, *in] -> [B, *out]``; its derivatives w.r.t. ``x`` are
      taken, and the result is differentiable w.r.t. its parameters.
    x: inputs ``[B, *in]``.
    targets: values and derivative tensors: ``SobolevTargets``, ``(y, dy, ...)``,
      ``(y, [dy, ...])`` or ``{"y": ..., "dy": ..., "d2y": ...}`` (a dict may add
      per-partial weights ``"dy_weight"``, ... of the derivatives' shapes; 0
      masks a missing partial, see ``SobolevTargets``). ``y`` may be None to
      train derivatives only. Exclusive with ``teacher``.
    teacher: callable target function whose values and derivatives are computed
      on the fly at ``x`` with no gradient flowing into it (distillation,
      synthetic gradients).
    derivative_weights: weight of each derivative order, j = 1..K; K is the
      length (a float means K = 1). The paper's regression uses (1.0,).
    value_weight: weight of the value term; 0 drops it (VFBN-style).
    value_loss: per-example loss ``(target, prediction) -> [B]`` on values;
      default squared L2 (section 4.1). Use ``categorical_kl_from_log_probs`` for
      policies given as log-probabilities.
    derivative_loss: ``"squared_l2"`` (regression), ``"l1"`` (synthetic
      gradients), ``"l2_norm"`` (distillation), a callable, or one per order.
      With per-partial weights a callable must take ``weights=``.
    sample_weight: per-example weights ``[B]`` applied to every term.
    balance: a ``DerivativeBalance`` (Huge & Savine, 2020): multiplies the value
      weight by its alpha, the first-order weight by its beta and each partial
      by its ``lambda_j^2 / n``. First order, full derivatives only.
    stochastic: match projections on random unit directions (eq. 2) instead of
      full derivative tensors (eq. 1).
    num_projections: Monte-Carlo samples of v per example for eq. 2.
    projection_space: ``"input"`` or ``"output"``, see ``derivatives.projected_derivative``.
    seed: stateless seed ``[2]`` for the directions (required when stochastic
      and ``directions`` is None); fold in the step for fresh directions.
    directions: explicit unit directions ``[num_projections, B, *in or *out]``
      (overrides ``seed``).
    projected_targets: the derivative targets are already projected on
      ``directions``: ``[num_projections, B, *projected]`` each. Otherwise they
      are full tensors ``[B, *out, *in x j]``, projected here.
    rescale_projections: multiply stochastic terms by the projected dimension d
      so that with squared L2 they estimate eq. 1's terms without bias.
    check_targets: raise on NaN/Inf targets (masked partials excepted) and on
      negative weights (unchecked, a negative weight counts as 0).
    jvp_mode: JVP implementation for input-space projections.

  Returns:
    ``(total, terms)``: total is ``value_weight * value + sum_j w_j * term_j``;
    ``terms`` holds ``"value"``, ``"derivative_1"``, ... (unweighted batch
    means) and ``"total"``.
  """
  x = checks.as_input(x)
  if jvp_mode not in derivs.JVP_MODES:
    raise ValueError(f"jvp_mode must be one of {derivs.JVP_MODES}, got {jvp_mode!r}.")
  weights = checks.check_loss_weights(derivative_weights, value_weight)
  order = len(weights)
  if order < 1:
    raise ValueError("derivative_weights must name at least one order.")
  loss_fns = _resolve_losses(derivative_loss, order, "derivative_weights")
  if projection_space not in ("input", "output"):
    raise ValueError(
        f"projection_space must be 'input' or 'output', got {projection_space!r}.")
  if (targets is None) == (teacher is None):
    raise ValueError("Give exactly one of targets (tensors) or teacher (callable).")
  if not isinstance(num_projections, int) or num_projections < 1:
    raise ValueError(f"num_projections must be a positive integer, got {num_projections!r}.")
  if projected_targets and (directions is None or not stochastic or teacher is not None):
    raise ValueError("projected_targets=True needs stochastic=True, the directions the "
                     "targets were projected on (directions=) and tensor targets.")

  target_values, target_derivs, partial_weights = _unpack_targets(targets)
  if teacher is None and len(target_derivs) < order:
    raise ValueError(
        f"derivative_weights asks for order {order} but targets provide "
        f"derivatives up to order {len(target_derivs)} only.")
  if teacher is None and len(target_derivs) > order:
    raise ValueError(
        f"targets provide derivatives up to order {len(target_derivs)} but derivative_weights "
        f"has {order} entr{'y' if order == 1 else 'ies'}: give a weight per order (0 to leave "
        "one out of the loss), or drop the unused targets.")
  target_values = None if target_values is None else checks.as_dtype(
      target_values, x.dtype, "targets values (y)")
  target_derivs = [checks.as_dtype(d, x.dtype, f"targets derivative of order {j + 1}")
                   for j, d in enumerate(target_derivs[:order])]
  partial_weights = list(partial_weights[:order]) + [None] * (order - len(partial_weights))
  partial_weights = [None if w is None else checks.as_dtype(w, x.dtype, "partial weights")
                     for w in partial_weights]
  sample_weight = _sample_weight(sample_weight, x)
  value_weight = float(value_weight)
  if balance is not None:
    if order != 1 or stochastic:
      raise ValueError("balance weighs first derivatives (Huge & Savine): it needs "
                       "derivative_weights of length 1 and stochastic=False.")
    value_weight *= balance.value_weight
    weights = (weights[0] * balance.derivative_weight,)
  if any(w is not None for w in partial_weights) or balance is not None:
    if stochastic:
      raise ValueError("Per-partial weights (e.g. 'dy_weight') need full derivatives, "
                       "not projections: use stochastic=False.")
    # Before any derivative is computed; sobolev_terms checks the same.
    _check_weighted_losses(loss_fns, [w is not None or (balance is not None and j == 0)
                                      for j, w in enumerate(partial_weights)])
  if check_targets:
    x = checks.check_finite(checks.check_nonempty_batch(x), "inputs x")
    if target_values is not None:
      target_values = checks.check_finite(target_values, "targets values (y)")
    for j in range(len(target_derivs)):
      name = f"targets derivative of order {j + 1}"
      if partial_weights[j] is None:
        target_derivs[j] = checks.check_finite(target_derivs[j], name)
        continue
      w = partial_weights[j]
      w_name = f"targets '{_derivative_key(j + 1)}_weight'"
      w = checks.check_non_negative(checks.check_finite(w, w_name), w_name)
      partial_weights[j] = w
      masked = tf.where(w > 0, target_derivs[j], tf.zeros_like(target_derivs[j]))
      check = checks.check_finite(masked, f"{name} (where its weight is > 0)")
      if not tf.executing_eagerly():
        with tf.control_dependencies([check]):
          target_derivs[j] = tf.identity(target_derivs[j])
  if sample_weight is not None and check_targets:
    sample_weight = checks.check_non_negative(sample_weight, "sample_weight")

  value_target = None if not value_weight else target_values
  if not stochastic:
    model_tensors = _model_tensors(model, x, order)
    if teacher is not None:
      teacher_tensors = [tf.stop_gradient(t) for t in
                         derivs.derivative_tensors(teacher, x, order)]
      value_target = teacher_tensors[0] if value_weight else None
      target_derivs = teacher_tensors[1:]
    if balance is not None:
      if partial_weights[0] is not None:
        checks.check_same_shape(target_derivs[0], partial_weights[0], "targets 'dy_weight'",
                                "derivative of order 1")
      scale = balance.weights_like(model_tensors[1])
      partial_weights[0] = scale if partial_weights[0] is None else partial_weights[0] * scale
    per_example = sobolev_terms(model_tensors, [value_target] + list(target_derivs),
                                value_loss=value_loss, derivative_loss=loss_fns,
                                partial_weights=partial_weights)
    terms = {k: batch_mean(v, sample_weight) for k, v in per_example.items()}
  else:
    terms = _stochastic_terms(
        model, x, teacher, value_target, value_loss, target_derivs, order, loss_fns,
        num_projections, projection_space, seed, directions, projected_targets,
        rescale_projections, jvp_mode, sample_weight, value_weight)
  total = tf.add_n(
      ([value_weight * terms["value"]] if "value" in terms else [])
      + [w * terms[f"derivative_{j + 1}"] for j, w in enumerate(weights)])
  terms["total"] = total
  return total, terms


def _model_tensors(model, x: tf.Tensor, order: int) -> list:
  """The model's values and derivatives, with errors that say what to fix."""
  try:
    tensors = derivs.derivative_tensors(model, x, order)
  except (TypeError, tf.errors.InvalidArgumentError) as e:
    if "dtype" not in str(e) and "double" not in str(e) and "half" not in str(e):
      raise
    raise ValueError(f"The model could not be applied to x of dtype {x.dtype.name} ({e}). "
                     "Cast x (and the targets) to the model's dtype, e.g. "
                     "tf.cast(x, tf.float32).") from e
  if tensors[0].dtype != x.dtype:
    raise ValueError(f"x has dtype {x.dtype.name} but the model returns "
                     f"{tensors[0].dtype.name}: cast x and the targets to "
                     f"{tensors[0].dtype.name}, e.g. tf.cast(x, tf.{tensors[0].dtype.name}).")
  if tf.executing_eagerly():
    for k in range(2, order + 1):
      if not bool(tf.reduce_any(tensors[k] != 0)):
        warnings.warn(
            f"The model's derivative of order {k} is 0 on this whole batch, so its term "
            "cannot train the model (a piecewise-linear network such as ReLU has zero "
            "second derivatives almost everywhere): use a smooth activation such as softplus.",
            stacklevel=3)
  return tensors


def _stochastic_terms(model, x, teacher, value_target, value_loss, target_derivs, order,
                      loss_fns, num_projections, space, seed, directions, projected_targets,
                      rescale, jvp_mode, sample_weight, value_weight):
  """Eq. 2's batch-mean terms: projected derivatives averaged over ``num_projections``."""
  values = teacher_values = None
  sums = [0.0] * order
  if directions is None and seed is None:
    raise ValueError("seed is required when stochastic=True and directions is None.")
  if directions is not None:
    directions = tf.convert_to_tensor(directions, dtype=x.dtype)
    if directions.shape.rank is not None and directions.shape[0] is not None and (
        directions.shape[0] != num_projections):
      raise ValueError(
          f"directions has shape {directions.shape}: its first dimension must be "
          f"num_projections={num_projections} ([P, B, *in or *out]).")
  for p in range(num_projections):
    if directions is not None:
      v = directions[p]
    else:
      p_seed = tf.random.experimental.stateless_fold_in(
          tf.cast(tf.convert_to_tensor(seed), tf.int64), p)
      drawn = []

      def v(like, p_seed=p_seed, drawn=drawn):
        # Drawn lazily so output-space directions need no extra forward pass.
        if not drawn:
          u = derivs.random_unit_vectors(tf.shape(like), p_seed, dtype=like.dtype)
          drawn.append(tf.ensure_shape(u, like.shape))
        return drawn[0]

      if space == "input":
        v = v(x)
    model_projs, target_projs = [], []
    for j in range(order):
      k = j + 1
      y, model_proj = derivs.projected_derivative(model, x, k, v, space=space, mode=jvp_mode)
      if values is None:
        values = y
      if callable(v):
        v = v(None)  # Drawn by the model's projection above.
      if teacher is not None:
        t_values, target_proj = derivs.projected_derivative(
            teacher, x, k, v, space=space, mode=jvp_mode)
        if teacher_values is None:
          teacher_values = tf.stop_gradient(t_values)
        target_proj = tf.stop_gradient(target_proj)
      elif projected_targets:
        target = target_derivs[j]
        if target.shape.rank is not None and target.shape[0] is not None and (
            target.shape[0] != num_projections):
          raise ValueError(
              f"targets derivative of order {k} has shape {target.shape}; projected "
              f"targets are [num_projections={num_projections}, B, ...].")
        target_proj = target[p]
      else:
        target = target_derivs[j]
        out_rank = y.shape.rank - 1
        in_rank = x.shape.rank - 1
        full_rank = 1 + out_rank + in_rank * k
        if target.shape.rank != full_rank:
          raise ValueError(
              f"targets derivative of order {k} has shape {target.shape} but a full "
              f"derivative tensor has rank {full_rank} ([B, *out, *in x {k}]); targets "
              "already projected need projected_targets=True and their directions.")
        target_proj = _project_target(target, v, out_rank, in_rank, space)
      model_projs.append(model_proj)
      target_projs.append(target_proj)
    per_example = sobolev_terms([values] + model_projs, [None] + target_projs,
                                derivative_loss=loss_fns)
    for j in range(order):
      term = batch_mean(per_example[f"derivative_{j + 1}"], sample_weight)
      if rescale:
        term = term * tf.cast(tf.reduce_prod(tf.shape(v)[1:]), term.dtype)
      sums[j] = sums[j] + term
  terms = {f"derivative_{j + 1}": s / num_projections for j, s in enumerate(sums)}
  if teacher is not None and value_weight:
    value_target = teacher_values
  if value_target is not None:
    value = sobolev_terms([values], [value_target], value_loss=value_loss)["value"]
    terms["value"] = batch_mean(value, sample_weight)
  return terms


def finite_difference_derivatives(fn: Callable[[np.ndarray], np.ndarray], x,
                                  order: int = 1, step: float = 1e-3) -> list:
  """Derivative targets of a black-box function by central differences.

  For users without analytic derivatives (sections 1 and 5 of the paper):
  ``D f(x) e_i ~ (f(x + h e_i) - f(x - h e_i)) / 2h`` (error O(h^2)) and, for
  order 2, ``H_ik ~ (f(x+h e_i+h e_k) - f(x+h e_i-h e_k) - f(x-h e_i+h e_k)
  + f(x-h e_i-h e_k)) / 4h^2``. All perturbed points go to ``fn`` in one batch.

  Args:
    fn: vectorised function ``[N, *in] -> [N, *out]`` (NumPy or TF).
    x: points ``[B, *in]``.
    order: 1 or 2.
    step: h, in the units of x. Too small loses precision to rounding (float32
      wants ~1e-2 to 1e-3 relative to the scale of x), too large adds O(h^2) bias.

  Returns:
    ``[f(x), D^1 f(x)]`` or ``[f(x), D^1 f(x), D^2 f(x)]`` as NumPy arrays with
    the shapes of ``derivatives.derivative_tensors``.
  """
  if order not in (1, 2):
    raise ValueError(f"order must be 1 or 2 for finite differences, got {order!r}.")
  if not step > 0:
    raise ValueError(f"step must be positive, got {step!r}.")
  x = np.asarray(x, dtype=np.float64)
  batch, in_shape = x.shape[0], x.shape[1:]
  d = int(np.prod(in_shape))
  flat = x.reshape(batch, d)
  eye = np.eye(d) * step

  def evaluate(points):  # points [M, B, d] -> [M, B, *out]
    m = points.shape[0]
    out = np.asarray(fn(points.reshape((m * batch,) + in_shape)), dtype=np.float64)
    return out.reshape((m, batch) + out.shape[1:])

  f0 = evaluate(flat[None])[0]
  out_shape = f0.shape[1:]
  shifted = np.concatenate([flat[None] + eye[:, None], flat[None] - eye[:, None]])
  fs = evaluate(shifted)
  grad = (fs[:d] - fs[d:]) / (2 * step)  # [d, B, *out]
  grad = np.moveaxis(grad, 0, -1).reshape((batch,) + out_shape + in_shape)
  result = [f0, grad]
  if order == 2:
    pairs = eye[:, None] + eye[None, :]  # e_i + e_k
    diffs = eye[:, None] - eye[None, :]  # e_i - e_k
    pts = np.concatenate([
        (flat[None, None] + pairs[:, :, None]).reshape(d * d, batch, d),
        (flat[None, None] + diffs[:, :, None]).reshape(d * d, batch, d),
        (flat[None, None] - diffs[:, :, None]).reshape(d * d, batch, d),
        (flat[None, None] - pairs[:, :, None]).reshape(d * d, batch, d)])
    fp = evaluate(pts).reshape((4, d, d, batch) + out_shape)
    hess = (fp[0] - fp[1] - fp[2] + fp[3]) / (4 * step * step)  # [d, d, B, *out]
    hess = np.moveaxis(np.moveaxis(hess, 0, -1), 0, -1)
    result.append(hess.reshape((batch,) + out_shape + in_shape + in_shape))
  return result

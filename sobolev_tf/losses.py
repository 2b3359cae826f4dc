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
from typing import Callable, Dict, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import tensorflow as tf

from sobolev_tf import derivatives as derivs

__all__ = [
    "SobolevTargets",
    "sobolev_loss",
    "squared_error",
    "squared_l2",
    "l1",
    "l2_norm",
    "categorical_kl_from_log_probs",
    "DERIVATIVE_LOSSES",
    "finite_difference_derivatives",
    "check_finite",
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


def _per_entry(target: tf.Tensor, prediction: tf.Tensor, weights, fn) -> tf.Tensor:
  """``w * fn(target - prediction)`` per entry, ``[B, n]``; entries of weight 0 give 0.

  Masked entries are zeroed with ``where`` before ``fn``, so a NaN standing in
  for a missing target reaches neither the value nor the gradient.
  """
  diff = target - prediction
  if weights is None:
    return _flatten_per_example(fn(diff))
  weights = tf.cast(weights, diff.dtype)
  diff = tf.where(weights > 0, diff, tf.zeros_like(diff))
  return _flatten_per_example(weights * fn(diff))


def squared_l2(target: tf.Tensor, prediction: tf.Tensor, weights=None) -> tf.Tensor:
  """Per-example ``sum_k w_k (target_k - prediction_k)^2`` (regression, section 4.1)."""
  return tf.reduce_sum(_per_entry(target, prediction, weights, tf.square), axis=1)


squared_error = squared_l2  # The value loss of the regression experiments.


def l1(target: tf.Tensor, prediction: tf.Tensor, weights=None) -> tf.Tensor:
  """Per-example ``sum_k w_k |target_k - prediction_k|`` (synthetic gradients, SM 4.2)."""
  return tf.reduce_sum(_per_entry(target, prediction, weights, tf.abs), axis=1)


def l2_norm(target: tf.Tensor, prediction: tf.Tensor, weights=None) -> tf.Tensor:
  """Per-example ``(sum_k w_k (target_k - prediction_k)^2)^(1/2)``, not squared (distillation, 4.2).

  The square root has an infinite derivative at 0; the double ``where`` keeps the
  gradient finite (zero) when prediction equals target exactly.
  """
  sq = tf.reduce_sum(_per_entry(target, prediction, weights, tf.square), axis=1)
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


def _accepts_weights(loss_fn) -> bool:
  try:
    return "weights" in inspect.signature(loss_fn).parameters
  except (TypeError, ValueError):
    return False


def _batch_mean(per_example: tf.Tensor, sample_weight: Optional[tf.Tensor]) -> tf.Tensor:
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


def _term(loss_fn: PerExampleLoss, target, prediction, sample_weight=None,
          partial_weight=None) -> tf.Tensor:
  if partial_weight is None:
    per_example = loss_fn(target, prediction)
  else:
    per_example = loss_fn(target, prediction, weights=partial_weight)
  return _batch_mean(per_example, sample_weight)


def check_finite(t: tf.Tensor, name: str) -> tf.Tensor:
  """Raises a ValueError naming ``name`` if ``t`` holds NaN or Inf.

  Eagerly this is a ``ValueError``; inside a ``tf.function`` the check runs as
  ``tf.debugging.assert_all_finite`` and fails the step with an
  ``InvalidArgumentError`` carrying the same message.
  """
  t = tf.convert_to_tensor(t)
  if not t.dtype.is_floating:
    return t
  message = (f"{name} contains NaN or Inf values; Sobolev targets must be finite "
             "(check the data or the finite-difference step).")
  if tf.executing_eagerly():
    if not bool(tf.reduce_all(tf.math.is_finite(t))):
      raise ValueError(message)
    return t
  return tf.debugging.assert_all_finite(t, message)


def _check_same_shape(expected: tf.Tensor, actual: tf.Tensor, name: str,
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


def _check_non_negative(w: tf.Tensor, name: str) -> tf.Tensor:
  message = f"{name} must be >= 0 (0 masks an entry)."
  if tf.executing_eagerly():
    if not bool(tf.reduce_all(w >= 0)):
      raise ValueError(message)
    return w
  with tf.control_dependencies([tf.debugging.assert_non_negative(w, message=message)]):
    return tf.identity(w)


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
    value_loss: PerExampleLoss = squared_error,
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
  x = derivs._as_input(x)  # pylint: disable=protected-access
  weights = ((float(derivative_weights),) if isinstance(derivative_weights, (int, float))
             else tuple(float(w) for w in derivative_weights))
  order = len(weights)
  if order < 1:
    raise ValueError("derivative_weights must name at least one order.")
  if isinstance(derivative_loss, (list, tuple)):
    if len(derivative_loss) != order:
      raise ValueError(
          f"derivative_loss has {len(derivative_loss)} entries but "
          f"derivative_weights has {order}; give one loss per order.")
    loss_fns = [_resolve_loss(l, f"derivative_loss[{i}]")
                for i, l in enumerate(derivative_loss)]
  else:
    loss_fns = [_resolve_loss(derivative_loss, "derivative_loss")] * order
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
  target_values = None if target_values is None else tf.convert_to_tensor(
      target_values, dtype=x.dtype)
  target_derivs = [tf.convert_to_tensor(d, dtype=x.dtype) for d in target_derivs[:order]]
  partial_weights = list(partial_weights[:order]) + [None] * (order - len(partial_weights))
  partial_weights = [None if w is None else tf.convert_to_tensor(w, dtype=x.dtype)
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
    for j, fn in enumerate(loss_fns):
      if partial_weights[j] is not None or (balance is not None and j == 0):
        if not _accepts_weights(fn):
          raise ValueError(f"derivative_loss of order {j + 1} must accept weights= "
                           "to use per-partial weights or balance.")
  if check_targets:
    if target_values is not None:
      target_values = check_finite(target_values, "targets values (y)")
    for j in range(len(target_derivs)):
      name = f"targets derivative of order {j + 1}"
      if partial_weights[j] is None:
        target_derivs[j] = check_finite(target_derivs[j], name)
        continue
      w = partial_weights[j]
      w_name = f"targets '{_derivative_key(j + 1)}_weight'"
      w = _check_non_negative(check_finite(w, w_name), w_name)
      partial_weights[j] = w
      masked = tf.where(w > 0, target_derivs[j], tf.zeros_like(target_derivs[j]))
      check = check_finite(masked, f"{name} (where its weight is > 0)")
      if not tf.executing_eagerly():
        with tf.control_dependencies([check]):
          target_derivs[j] = tf.identity(target_derivs[j])
  if sample_weight is not None and check_targets:
    sample_weight = _check_non_negative(sample_weight, "sample_weight")

  terms: Dict[str, tf.Tensor] = {}
  if not stochastic:
    model_tensors = derivs.derivative_tensors(model, x, order)
    values = model_tensors[0]
    if teacher is not None:
      teacher_tensors = [tf.stop_gradient(t) for t in
                         derivs.derivative_tensors(teacher, x, order)]
      target_values, target_derivs = teacher_tensors[0], teacher_tensors[1:]
    for j in range(order):
      name = f"targets derivative of order {j + 1}"
      _check_same_shape(model_tensors[j + 1], target_derivs[j], name,
                        f"derivative of order {j + 1}")
      w = partial_weights[j]
      if w is not None:
        _check_same_shape(target_derivs[j], w, f"targets '{_derivative_key(j + 1)}_weight'",
                          f"derivative of order {j + 1}")
      if balance is not None:
        w = balance.weights_like(model_tensors[1]) if w is None else (
            w * balance.weights_like(model_tensors[1]))
      terms[f"derivative_{j + 1}"] = _term(
          loss_fns[j], target_derivs[j], model_tensors[j + 1], sample_weight, w)
  else:
    values, teacher_values, projected_terms = _stochastic_terms(
        model, x, teacher, target_derivs, order, loss_fns, num_projections,
        projection_space, seed, directions, projected_targets, rescale_projections,
        jvp_mode, sample_weight)
    if teacher is not None:
      target_values = teacher_values
    terms.update(projected_terms)

  if target_values is not None and value_weight:
    if value_loss in _SAME_SHAPE_LOSSES:  # Others, e.g. sparse cross-entropy, check their own.
      _check_same_shape(values, target_values, "targets values (y)", "output")
    terms["value"] = _term(value_loss, target_values, values, sample_weight)
  total = tf.add_n(
      ([value_weight * terms["value"]] if "value" in terms else [])
      + [w * terms[f"derivative_{j + 1}"] for j, w in enumerate(weights)])
  terms["total"] = total
  return total, terms


def _stochastic_terms(model, x, teacher, target_derivs, order, loss_fns,
                      num_projections, space, seed, directions, projected_targets,
                      rescale, jvp_mode, sample_weight):
  """Eq. 2's projected derivative terms, averaged over ``num_projections``."""
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
      _check_same_shape(model_proj, target_proj,
                        f"targets derivative of order {k} (projected)",
                        f"projected derivative of order {k}")
      term = _term(loss_fns[j], target_proj, model_proj, sample_weight)
      if rescale:
        term = term * tf.cast(tf.reduce_prod(tf.shape(v)[1:]), term.dtype)
      sums[j] = sums[j] + term
  terms = {f"derivative_{j + 1}": s / num_projections for j, s in enumerate(sums)}
  return values, teacher_values, terms


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

"""Synthetic gradients with Sobolev-trained loss critics (section 4.3, SM section 4).

The main network is a list of parts; the activations ``h_k`` between part k and
part k+1 are the splits. The parts below split k are updated with a synthetic
gradient for ``h_k`` produced by module k; the top part with the true gradient.
Every method is one setting of the same step:

* ``backprop``: no synthetic gradients (baseline);
* ``noprop``: parts below a split get no learning signal at all;
* ``direct``: module predicts ``dL/dh`` directly (Jaderberg et al.), L1 to the
  true gradient;
* loss predictors ``m(h, y) = L(p(h|theta), y)``, synthetic gradient ``dm/dh``:
  ``vfbn`` supervised on the gradient only, ``critic`` on the loss value only,
  ``sobolev`` on both (the paper's ``L_SG^sob``), all L1 (SM 4.2): eq. 1 at
  order 1 with the value or the derivative weight set to zero.

Targets are the main network's per-example losses ``L_i`` and the true
gradient ``g_i = d(sum_j L_j)/dh_i = B dL/dh_i`` for the batch-mean loss
``L``, computed by backpropagation as the paper did; the synthetic gradient of
the batch loss is the module's ``dm/dh_i`` divided by B. When examples do not
interact above the split, ``g_i = dL_i/dh_i``. BatchNorm in training mode (the
SM 4.2 network) couples them through the batch statistics, so ``g_i`` also holds
the effect of ``h_i`` on the other examples' losses: the module is fitted to the
gradient that backpropagation would deliver, not to ``dL_i/dh_i``.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple, Union

import sonnet as snt
import tensorflow as tf

from sobolev_tf import checks
from sobolev_tf import derivatives
from sobolev_tf import losses

__all__ = ["METHODS", "LOSS_PREDICTOR_METHODS", "LossPredictor", "DirectSG",
           "synthetic_gradient", "module_loss", "SyntheticGradientStep"]

METHODS = ("backprop", "noprop", "direct", "vfbn", "critic", "sobolev")
LOSS_PREDICTOR_METHODS = ("vfbn", "critic", "sobolev")
# (value weight, derivative weight) of the loss-predictor methods.
_WEIGHTS = {"vfbn": (0.0, 1.0), "critic": (1.0, 0.0), "sobolev": (1.0, 1.0)}


def _check_method(method: str) -> str:
  if method not in METHODS:
    raise ValueError(f"Unknown method {method!r}; known: {', '.join(METHODS)}.")
  return method


class LossPredictor(snt.Module):
  """Loss predictor ``m(h, y) = -log softmax(p(h))_y`` per example; ``dm/dh`` is the SG.

  ``p`` is a small conv net: SM 4.2 (CIFAR-10, the default): 128 3x3 conv, ReLU,
  linear to the classes. SM 4.3 (ImageNet): ``channels=(64, 64), strides=(1, 2),
  global_pool=True``: 64 3x3, ReLU, 64 3x3 stride 2, ReLU, global average, 1000
  1x1 (a linear layer on the pooled features).
  """

  def __init__(self, num_classes: int = 10, channels: Union[int, Sequence[int]] = 128,
               strides: Optional[Sequence[int]] = None, global_pool: bool = False, name=None):
    super().__init__(name=name)
    channels = (channels,) if isinstance(channels, int) else tuple(channels)
    strides = tuple(strides) if strides is not None else (1,) * len(channels)
    if len(strides) != len(channels):
      raise ValueError(f"strides {strides} and channels {channels} must have the same length.")
    self.num_classes = num_classes
    self.global_pool = global_pool
    self.convs = [snt.Conv2D(c, 3, stride=s, name=f"conv{i}")
                  for i, (c, s) in enumerate(zip(channels, strides))]
    self.linear = snt.Linear(num_classes)

  def logits(self, h: tf.Tensor) -> tf.Tensor:
    z = h
    if h.shape.rank == 4:
      for conv in self.convs:
        z = tf.nn.relu(conv(z))
      if self.global_pool:
        return self.linear(tf.reduce_mean(z, axis=[1, 2]))
    return self.linear(snt.Flatten()(z))

  def __call__(self, h: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels, self.logits(h))


class DirectSG(snt.Module):
  """SM 4.2 direct SG: 3 resolution-preserving 3x3 convs (128 channels, ReLU between).

  Conditioned on the label (one-hot planes concatenated to h, as cDNI).
  """

  def __init__(self, num_classes: int = 10, channels: int = 128, name=None):
    super().__init__(name=name)
    self.num_classes = num_classes
    self.channels = channels
    self.layers = None

  @snt.once
  def _build(self, h):
    self.layers = [snt.Conv2D(self.channels, 3), snt.Conv2D(self.channels, 3),
                   snt.Conv2D(h.shape[-1], 3, w_init=tf.zeros_initializer())]

  def __call__(self, h: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    self._build(h)
    onehot = tf.one_hot(labels, self.num_classes, dtype=h.dtype)
    planes = tf.broadcast_to(onehot[:, None, None, :],
                             tf.concat([tf.shape(h)[:-1], [self.num_classes]], 0))
    z = tf.concat([h, planes], -1)
    z = tf.nn.relu(self.layers[0](z))
    z = tf.nn.relu(self.layers[1](z))
    return self.layers[2](z)


def synthetic_gradient(method: str, module, h: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
  """Per-example synthetic ``dL_i/dh_i`` of ``module`` (no gradient into it)."""
  _check_method(method)
  if method == "direct":
    return tf.stop_gradient(module(h, labels))
  if method in LOSS_PREDICTOR_METHODS:
    _, grad = derivatives.value_and_gradient(lambda z: module(z, labels), tf.stop_gradient(h))
    return tf.stop_gradient(grad)
  raise ValueError(f"method {method!r} has no synthetic gradient.")


def label_gradient(module: "LossPredictor", h: tf.Tensor) -> tf.Tensor:
  """``dm/dy`` of a loss predictor for a one-hot label ``y``: ``-log p(h|theta)``.

  ``m(h, y) = -sum_i y_i log p_i(h)`` is linear in ``y``, so ``dm/dy_i = -log p_i``
  (SM 4.1); its target is the main network's ``-log p_h``.
  """
  return -tf.nn.log_softmax(module.logits(h))


def module_loss(method: str, module, h: tf.Tensor, labels: tf.Tensor,
                loss_values: tf.Tensor, loss_grads: tf.Tensor,
                label_log_probs: Optional[tf.Tensor] = None,
                label_gradient_weight: float = 0.0) -> Tuple[tf.Tensor, Dict]:
  """The module's training loss against the per-example loss and gradient targets (L1).

  For loss predictors this is eq. 1 at order 1 with L1 distances (the value or
  the derivative weight is zero for ``vfbn`` and ``critic``), equal to
  ``losses.sobolev_loss(..., derivative_loss="l1")``. With
  ``label_gradient_weight > 0`` (loss predictors only; SM 4.1, off in the
  paper's experiments) ``dm/dy`` is also matched to ``-label_log_probs``, the
  target's log-probabilities, in L1.
  """
  total, terms, _ = _fit_module(method, module, h, labels, loss_values, loss_grads,
                                label_log_probs, label_gradient_weight)
  return total, terms


def _fit_module(method, module, h, labels, loss_values, loss_grads, label_log_probs,
                label_gradient_weight):
  """``module_loss`` and the module's synthetic gradient from one forward and backward.

  The loss predictor's input gradient ``dm/dh`` is both the derivative term of
  its loss and the synthetic gradient the step hands to the part below, so it
  is computed once here rather than by ``sobolev_loss`` and again by
  ``synthetic_gradient``. Returns ``(total, terms, synthetic_gradient)``.
  """
  _check_method(method)
  h = tf.stop_gradient(h)
  loss_values, loss_grads = tf.stop_gradient(loss_values), tf.stop_gradient(loss_grads)
  if method == "direct":
    prediction = module(h, labels)
    l1 = tf.reduce_mean(losses.l1(loss_grads, prediction))
    return l1, {"derivative_1": l1, "total": l1}, tf.stop_gradient(prediction)
  if method not in LOSS_PREDICTOR_METHODS:
    raise ValueError(f"method {method!r} trains no module.")
  value_weight, derivative_weight = _WEIGHTS[method]
  value, grad = derivatives.value_and_gradient(lambda z: module(z, labels), h)
  checks.check_same_shape(grad, loss_grads, "loss_grads", "input gradient dm/dh")
  checks.check_same_shape(value, loss_values, "loss_values", "output")
  # Eq. 1 at order 1 with L1 distances, from the value and input gradient computed once.
  per_example = losses.sobolev_terms(
      [value, grad], [loss_values if value_weight else None, loss_grads],
      value_loss=losses.l1, derivative_loss="l1")
  terms = {name: tf.reduce_mean(t) for name, t in per_example.items()}
  total = derivative_weight * terms["derivative_1"]
  if value_weight:
    total += value_weight * terms["value"]
  if label_gradient_weight:
    if label_log_probs is None:
      raise ValueError("label_gradient_weight > 0 needs label_log_probs.")
    terms["label_gradient"] = tf.reduce_mean(losses.l1(-tf.stop_gradient(label_log_probs),
                                                       label_gradient(module, h)))
    total += label_gradient_weight * terms["label_gradient"]
  terms["total"] = total
  return total, terms, tf.stop_gradient(grad)


def _cosine(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
  """Cosine between synthetic and true gradients over the whole batch."""
  a, b = tf.reshape(a, [-1]), tf.reshape(b, [-1])
  return tf.reduce_sum(a * b) / (tf.norm(a) * tf.norm(b) + 1e-12)


class SyntheticGradientStep:
  """One training step of a split network under ``method`` (single device).

  Args:
    parts: K+1 callables (Sonnet modules); part k maps ``h_{k-1}`` (or x) to ``h_k``;
      the last maps to logits.
    modules: K SG modules (one per split), unused for backprop/noprop.
    method: one of ``METHODS``.
    main_optimizer, module_optimizer: objects with ``apply(grads, variables)``:
      Sonnet optimisers or ``sobolev_tf.optimizers`` (paper: SGD momentum 0.9 for
      the main network, Adam 1e-4 for the modules).
    bootstrap: fit module k to module k+1's prediction carried through part k+1
      (DNI style) instead of the true loss and gradient (the paper's choice).
    label_gradient_weight: weight of the SM 4.1 ``dm/dy`` term (loss predictors
      only; 0, the paper's large-scale setting, turns it off).
  """

  def __init__(self, parts: Sequence[snt.Module], modules: Sequence[snt.Module], method: str,
               main_optimizer, module_optimizer=None, bootstrap: bool = False,
               label_gradient_weight: float = 0.0):
    self.method = _check_method(method)
    if method not in ("backprop", "noprop") and len(modules) != len(parts) - 1:
      raise ValueError(f"{len(parts) - 1} splits need {len(parts) - 1} modules, "
                       f"got {len(modules)}.")
    if label_gradient_weight and method not in LOSS_PREDICTOR_METHODS:
      raise ValueError(f"label_gradient_weight needs a loss-predictor method "
                       f"({', '.join(LOSS_PREDICTOR_METHODS)}), not {method!r}.")
    self.parts = list(parts)
    self.modules = list(modules)
    self.main_optimizer = main_optimizer
    self.module_optimizer = module_optimizer
    self.bootstrap = bootstrap
    self.label_gradient_weight = label_gradient_weight

  def main_variables(self) -> List[tf.Variable]:
    """The main-network variables this method updates, in ``apply`` order.

    The top part always; the lower parts unless ``noprop`` (which never moves them).
    """
    parts = self.parts[-1:] if self.method == "noprop" else self.parts[-1:] + self.parts[:-1]
    return [v for p in parts for v in p.trainable_variables]

  def module_variables(self) -> List[tf.Variable]:
    """The SG modules' variables, in ``apply`` order (empty for backprop and noprop)."""
    if self.method in ("backprop", "noprop"):
      return []
    return [v for m in self.modules for v in m.trainable_variables]

  def __call__(self, x: tf.Tensor, labels: tf.Tensor) -> Dict[str, tf.Tensor]:
    method = self.method
    with tf.GradientTape(persistent=True) as tape:
      hs: List[tf.Tensor] = []
      h = x
      for part in self.parts[:-1]:
        h = part(h)
        hs.append(h)
      logits = self.parts[-1](h)
      per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
      loss = tf.reduce_mean(per_example)
    batch = tf.cast(tf.shape(x)[0], x.dtype)
    metrics = {"loss": loss}
    grads_and_vars = []
    top = self.parts[-1].trainable_variables
    grads_and_vars += list(zip(tape.gradient(loss, top), top))
    if method == "backprop":
      for part in self.parts[:-1]:
        v = part.trainable_variables
        grads_and_vars += list(zip(tape.gradient(loss, v), v))
    elif method != "noprop":
      # True gradients d(sum_j L_j)/dh_i (B dL/dh_i; see the module docstring):
      # the modules' targets (unless bootstrapped) and the reference of the cosines.
      true_grads = tape.gradient(per_example, hs)
      num_splits = len(hs)
      main_log_probs = tf.nn.log_softmax(logits)
      sgs: List[Optional[tf.Tensor]] = [None] * num_splits
      module_losses: List[Optional[tf.Tensor]] = [None] * num_splits
      module_grads: List[List[tf.Tensor]] = [[]] * num_splits
      # Top split first: a bootstrapped target of split k needs SG_{k+1}.
      for k in reversed(range(num_splits)):
        module = self.modules[k]
        target = self._module_target(k, tape, hs, labels, per_example, main_log_probs,
                                     true_grads, sgs)
        with tf.GradientTape() as module_tape:
          module_losses[k], _, sgs[k] = _fit_module(
              method, module, hs[k], labels, *target,
              label_gradient_weight=self.label_gradient_weight)
        module_grads[k] = module_tape.gradient(module_losses[k], module.trainable_variables)
      for k, (part, h_k) in enumerate(zip(self.parts[:-1], hs)):
        v = part.trainable_variables
        grads_and_vars += list(zip(tape.gradient(h_k, v, output_gradients=sgs[k] / batch), v))
        metrics[f"cosine_{k}"] = _cosine(sgs[k], true_grads[k])
        metrics[f"module_loss_{k}"] = module_losses[k]
      self.module_optimizer.apply(_all_reduce_mean([g for gs in module_grads for g in gs]),
                                  self.module_variables())
    del tape
    grads, variables = zip(*grads_and_vars)
    self.main_optimizer.apply(_all_reduce_mean(list(grads)), list(variables))
    return metrics

  def _module_target(self, k, tape, hs, labels, per_example, main_log_probs, true_grads, sgs):
    """(loss values, dL/dh, log-probabilities) that the module of split k is fitted to.

    By default the main network's own loss and true gradient, as the paper did.
    With ``bootstrap`` (DNI style, no backpropagation beyond one part): the top
    split's module gets the true targets from the top part; module k < K-1 gets
    module k+1's prediction carried through part k+1: the gradient
    ``(dh_{k+1}/dh_k)^T SG_{k+1}`` (``sgs[k + 1]`` must be set) and, for loss
    predictors, the value ``m_{k+1}(h_{k+1}, y)`` and its log-probabilities.
    """
    if not self.bootstrap or k == len(hs) - 1:
      return per_example, true_grads[k], main_log_probs
    grad = tape.gradient(hs[k + 1], hs[k], output_gradients=sgs[k + 1])
    upper = self.modules[k + 1]
    if self.method in LOSS_PREDICTOR_METHODS:
      value = upper(hs[k + 1], labels)
      log_probs = tf.nn.log_softmax(upper.logits(hs[k + 1]))
    else:
      value, log_probs = per_example, main_log_probs  # Unused by direct SG.
    return tf.stop_gradient(value), tf.stop_gradient(grad), tf.stop_gradient(log_probs)


def _all_reduce_mean(grads: List[tf.Tensor]) -> List[tf.Tensor]:
  """Mean over replicas under tf.distribute (identity on one device).

  Every replica holds the mean loss of its share of the global batch, so the
  replica mean of the gradients is the gradient of the global-batch mean: the
  synchronous counterpart of the paper's asynchronous workers.
  """
  ctx = tf.distribute.get_replica_context()
  if ctx is None or ctx.num_replicas_in_sync == 1:
    return grads
  return ctx.all_reduce(tf.distribute.ReduceOp.MEAN, grads)

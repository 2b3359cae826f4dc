"""Derivatives of a model with respect to its inputs, per example.

Every function here takes a callable ``f`` mapping a batch ``x`` of shape
``[B, *in]`` to ``[B, *out]`` (a Sonnet module, a Keras model or layer, or a
plain function) and returns per-example derivatives with the batch dimension
first. Shapes follow one convention throughout:

* the k-th derivative tensor ``D^k f(x)`` has shape ``[B, *out, *in, ..., *in]``
  (``*in`` repeated k times), e.g. a gradient of a scalar-per-example model
  (``out == ()``) is ``[B, *in]`` and its Hessian ``[B, *in, *in]``;
* a projection ``<D^k f, v>`` onto an input-space direction ``v`` (eq. 2 of the
  paper) contracts one input slot: ``[B, *out, *in x (k-1)]``;
* a projection onto an output-space direction ``u`` contracts the output:
  ``D^k <f, u>`` has shape ``[B, *in x k]`` (the distillation term of section 4.2).

Per-example derivatives are obtained by differentiating the batch sum, which is
exact when examples do not interact inside ``f`` (true for MLPs and convnets;
false for BatchNorm in training mode, whose per-batch statistics couple examples).

All functions work eagerly, inside ``tf.function`` (also with an unknown batch
size) and under ``jit_compile=True``. Forward-mode products use
``tf.autodiff.ForwardAccumulator`` by default; under XLA prefer
``mode="double_reverse"`` (see ``jvp``), which ``forward_mode_for_jit`` picks
automatically.
"""

from __future__ import annotations

from typing import Callable, List, Optional, Sequence, Tuple

import tensorflow as tf

from sobolev_tf import checks

Function = Callable[[tf.Tensor], tf.Tensor]

__all__ = [
    "mixed_examples",
    "value_and_gradient",
    "batch_jacobian",
    "hessian",
    "derivative_tensors",
    "jvp",
    "vjp",
    "directional_derivative",
    "projected_derivative",
    "random_unit_vectors",
    "JVP_MODES",
]

JVP_MODES = ("forward", "double_reverse", "auto")


def _per_example_size(t: tf.Tensor) -> Optional[int]:
  """Static number of elements per example, or None if unknown."""
  rest = t.shape[1:]
  return rest.num_elements() if rest.is_fully_defined() else None


def _not_connected_error(order: int) -> ValueError:
  return ValueError(
      f"The model's output does not depend on its input x (its order-{order} "
      "derivative is None). Check that f uses x and that x is a float tensor "
      "that reaches the output through differentiable ops.")


def _differentiate(tape: tf.GradientTape, y: tf.Tensor, x: tf.Tensor,
                   order: int) -> tf.Tensor:
  """Per-example derivative of ``y: [B, *s]`` w.r.t. ``x: [B, *in]``.

  Returns ``[B, *s, *in]``. For one element per example a single reverse pass
  (gradient of the batch sum) suffices; otherwise a batch Jacobian (vectorised
  with pfor) is taken. Only the first order can be disconnected in a way that
  indicates a user error: higher orders of e.g. a linear model are zero.
  """
  unconnected = (tf.UnconnectedGradients.NONE if order == 1
                 else tf.UnconnectedGradients.ZERO)
  # The tape has stopped recording: seed the reverse pass with ones instead of
  # differentiating a reduce_sum computed out here, which it would not see.
  if y.shape.rank == 1:
    d = tape.gradient(y, x, output_gradients=tf.ones_like(y),
                      unconnected_gradients=unconnected)
  elif _per_example_size(y) == 1:
    d = tape.gradient(y, x, output_gradients=tf.ones_like(y),
                      unconnected_gradients=unconnected)
    if d is not None:
      d = tf.reshape(d, tf.concat([tf.shape(y), tf.shape(x)[1:]], axis=0))
  else:
    d = tape.batch_jacobian(y, x, unconnected_gradients=unconnected)
  if d is None:
    raise _not_connected_error(order)
  return d


def derivative_tensors(f: Function, x, order: int) -> List[tf.Tensor]:
  """Values and full derivative tensors of orders 1..order (eq. 1's ``D^j_x f``).

  Nested ``tf.GradientTape``s: the tape for order j records the computation of
  order j-1, so every order is differentiable again, including with respect to
  the model's parameters by an enclosing tape (the double-backprop path of
  Sobolev training).

  Args:
    f: callable mapping ``[B, *in]`` to ``[B, *out]``.
    x: batch of inputs, float.
    order: highest order K >= 0. The tensor of order j has
      ``prod(out) * prod(in)**j`` elements per example: meant for small inputs.

  Returns:
    ``[f(x), D^1 f(x), ..., D^K f(x)]`` with ``D^j f(x)`` of shape
    ``[B, *out, *in x j]``.
  """
  x = checks.as_input(x)
  checks.check_order(order)
  return _derivative_tensors(f, x, order)


def _derivative_tensors(f: Function, x: tf.Tensor, order: int) -> List[tf.Tensor]:
  if order == 0:
    return [f(x)]
  with tf.GradientTape(watch_accessed_variables=False) as tape:
    tape.watch(x)
    lower = _derivative_tensors(f, x, order - 1)
  return lower + [_differentiate(tape, lower[-1], x, order)]


def value_and_gradient(f: Function, x) -> Tuple[tf.Tensor, tf.Tensor]:
  """Value and input gradient of a model with one output per example.

  Args:
    f: callable mapping ``[B, *in]`` to ``[B]`` or ``[B, 1]``.
    x: inputs ``[B, *in]``.

  Returns:
    ``(y, g)`` with ``y = f(x)`` and ``g = grad_x f(x)`` of shape ``[B, *in]``.
  """
  x = checks.as_input(x)
  with tf.GradientTape(watch_accessed_variables=False) as tape:
    tape.watch(x)
    y = f(x)
  size = _per_example_size(y)
  if y.shape.rank != 1 and size != 1:
    raise ValueError(
        f"value_and_gradient needs one output per example (shape [B] or [B, 1]), "
        f"got output shape {y.shape}; use batch_jacobian for vector outputs.")
  g = tape.gradient(y, x, output_gradients=tf.ones_like(y))
  if g is None:
    raise _not_connected_error(1)
  return y, g


def mixed_examples(f: Function, x, tolerance: float = 1e-5) -> bool:
  """True if ``f`` mixes the examples of a batch (its per-example derivatives are wrong).

  Every function here takes per-example derivatives from the gradient of the
  batch sum, exact only when each output depends on its own input alone;
  BatchNorm in training mode or ``x - mean(x)`` break that. The check moves the
  first example of (up to 8 examples of) ``x`` and compares the other outputs:
  two forward passes. Call it with the mode the model trains in, e.g.
  ``lambda z: model(z, training=True)``.
  """
  x = checks.as_input(x)[:8]
  if x.shape[0] is not None and x.shape[0] < 2:
    return False
  before = tf.reshape(f(x), [tf.shape(x)[0], -1])
  bump = tf.one_hot(0, tf.shape(x)[0], dtype=x.dtype)
  bump = tf.reshape(bump, tf.concat([tf.shape(bump), tf.ones([tf.rank(x) - 1], tf.int32)], 0))
  after = tf.reshape(f(x + bump * (1.0 + tf.abs(x))), [tf.shape(x)[0], -1])
  scale = 1.0 + tf.reduce_max(tf.abs(before))
  return bool(tf.reduce_max(tf.abs(after[1:] - before[1:])) > tolerance * scale)


def batch_jacobian(f: Function, x) -> Tuple[tf.Tensor, tf.Tensor]:
  """Value and per-example Jacobian ``[B, *out, *in]``."""
  y, jac = derivative_tensors(f, x, 1)
  return y, jac


def hessian(f: Function, x) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
  """Value, gradient ``[B, *in]`` and Hessian ``[B, *in, *in]`` of a scalar model.

  Args:
    f: callable mapping ``[B, *in]`` to ``[B]`` (use ``lambda x: g(x)[:, 0]``
      for a ``[B, 1]`` model).
    x: inputs.
  """
  x = checks.as_input(x)
  y, g, h = derivative_tensors(f, x, 2)
  if y.shape.rank != 1:
    raise ValueError(
        f"hessian needs a model with output shape [B], got {y.shape}; for other "
        "outputs use derivative_tensors(f, x, 2).")
  return y, g, h


def _resolve_mode(mode: str) -> str:
  if mode not in JVP_MODES:
    raise ValueError(f"mode must be one of {JVP_MODES}, got {mode!r}.")
  if mode == "auto":
    return forward_mode_for_jit()
  return mode


def forward_mode_for_jit() -> str:
  """The Jacobian-vector product implementation to use in the current context.

  Why not ``tf.autodiff.ForwardAccumulator`` under XLA: the accumulator computes
  each op's JVP by calling a separately traced function (``_jvp_exact_shapes``
  in ``tensorflow/python/eager/forwardprop.py``), which appears in the graph as
  an un-inlined ``PartitionedCall``. XLA's compile-time-constant analysis cannot
  see through those calls and marks every argument that reaches them (the
  inputs and all model weights) as *must-be-constant* (``TF_CPP_VMODULE=
  xla_launch_util=3`` prints ``Must be const args: {0,...,7}``). Constant
  arguments are part of the compilation cache key, so each training step, whose
  weights differ from the last, misses the cache and recompiles the whole step:
  0.4 s per step instead of 1.4 ms on TF 2.21 (``scripts/benchmark.py
  --jvp_study`` measures it). The double-reverse trick computes the same product
  with two ordinary reverse passes that XLA compiles once.

  Returns:
    ``"double_reverse"`` while tracing for XLA (``jit_compile=True`` or an
    enclosing XLA context), ``"forward"`` otherwise.
  """
  from tensorflow.python.ops import control_flow_util  # pylint: disable=g-import-not-at-top
  if control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph()):
    return "double_reverse"
  return "forward"


def _check_direction(v: tf.Tensor, x: tf.Tensor, name: str) -> tf.Tensor:
  v = tf.convert_to_tensor(v, dtype=x.dtype)
  if (v.shape.rank is not None and x.shape.rank is not None
      and not v.shape.is_compatible_with(x.shape)):
    raise ValueError(
        f"{name} must have the shape of x {x.shape}, got {v.shape}.")
  return v


def jvp(f: Function, x, v, mode: str = "auto") -> Tuple[tf.Tensor, tf.Tensor]:
  """Jacobian-vector product ``(f(x), D f(x)[v])``, per example.

  Args:
    f: callable ``[B, *in] -> [B, *out]``.
    x: inputs.
    v: tangents, same shape as ``x``.
    mode: ``"forward"`` uses ``tf.autodiff.ForwardAccumulator`` (one forward
      pass); ``"double_reverse"`` differentiates the linear map
      ``u -> <u^T J, v>`` with respect to ``u`` (two reverse passes, fast under
      XLA); ``"auto"`` picks ``"double_reverse"`` in XLA contexts.

  Returns:
    ``(y, jv)`` both of shape ``[B, *out]``.
  """
  x = checks.as_input(x)
  v = _check_direction(v, x, "v")
  mode = _resolve_mode(mode)
  if mode == "forward":
    with tf.autodiff.ForwardAccumulator(primals=x, tangents=v) as acc:
      y = f(x)
    jv = acc.jvp(y)
    if jv is None:
      raise _not_connected_error(1)
    return y, jv
  with tf.GradientTape(watch_accessed_variables=False) as tape:
    tape.watch(x)
    y = f(x)
  # The vjp is linear in u, so its value at u = 0 has the right derivative.
  u = tf.zeros_like(y)
  with tf.GradientTape(watch_accessed_variables=False) as outer:
    outer.watch(u)
    ujac = tape.gradient(y, x, output_gradients=u)
    if ujac is None:
      raise _not_connected_error(1)
    inner = tf.reduce_sum(ujac * v)
  return y, outer.gradient(inner, u, unconnected_gradients=tf.UnconnectedGradients.ZERO)


def vjp(f: Function, x, u) -> Tuple[tf.Tensor, tf.Tensor]:
  """Vector-Jacobian product ``(f(x), u^T D f(x))`` in reverse mode.

  Args:
    f: callable ``[B, *in] -> [B, *out]``.
    x: inputs.
    u: cotangents with the shape of ``f(x)``.

  Returns:
    ``(y, grad_x <f(x), u>)``, the second of shape ``[B, *in]``.
  """
  x = checks.as_input(x)
  with tf.GradientTape(watch_accessed_variables=False) as tape:
    tape.watch(x)
    y = f(x)
  u = tf.convert_to_tensor(u, dtype=y.dtype)
  if (u.shape.rank is not None and y.shape.rank is not None
      and not u.shape.is_compatible_with(y.shape)):
    raise ValueError(f"u must have the shape of f(x) {y.shape}, got {u.shape}.")
  g = tape.gradient(y, x, output_gradients=u)
  if g is None:
    raise _not_connected_error(1)
  return y, g


def directional_derivative(f: Function, x, directions: Sequence[tf.Tensor],
                           mode: str = "auto") -> List[tf.Tensor]:
  """Directional derivatives ``D^j f(x)[v_1, ..., v_j]`` for j = 0..k.

  Nested Jacobian-vector products: order j differentiates order j-1 along
  ``v_j``. Pass the same ``v`` k times for ``D^k f[v, ..., v]``.

  Args:
    f: callable ``[B, *in] -> [B, *out]``.
    x: inputs.
    directions: k tensors of the shape of ``x``.
    mode: see ``jvp``.

  Returns:
    ``[f(x), D f[v_1], D^2 f[v_1, v_2], ...]``, each ``[B, *out]``.
  """
  x = checks.as_input(x)
  if len(directions) < 1:
    raise ValueError("directions must hold at least one direction.")
  directions = [_check_direction(v, x, f"directions[{i}]")
                for i, v in enumerate(directions)]
  mode = _resolve_mode(mode)
  return _directional(f, x, list(directions), mode)


def _directional(f, x, directions, mode):
  if not directions:
    return [f(x)]
  *rest, v = directions
  out = []

  def top(z):
    lower = _directional(f, z, rest, mode)
    out[:] = lower  # keep the lower orders; the last one is differentiated.
    return lower[-1]

  _, d = jvp(top, x, v, mode=mode)
  return out + [d]


def projected_derivative(f: Function, x, order: int, direction,
                         space: str = "input",
                         mode: str = "auto") -> Tuple[tf.Tensor, tf.Tensor]:
  """Projection ``<D^k f(x), v>`` of the k-th derivative on a direction (eq. 2).

  Args:
    f: callable ``[B, *in] -> [B, *out]``.
    x: inputs.
    order: k >= 1.
    direction: ``[B, *in]`` for ``space="input"`` or ``[B, *out]`` for
      ``space="output"``; for the output space it may also be a callable
      receiving ``f(x)`` and returning the direction (to draw it from the
      output's shape without an extra forward pass).
    space: ``"input"`` contracts one input slot: ``D^k f[v, ., ...]`` of shape
      ``[B, *out, *in x (k-1)]`` (k = 1: a JVP; k = 2, scalar f: a
      Hessian-vector product). ``"output"`` contracts the output:
      ``D^k <f, u>`` of shape ``[B, *in x k]`` (k = 1: a VJP, the gradient
      ``grad_x <log pi(x), u>`` of the paper's distillation objective).
    mode: JVP implementation for ``space="input"``; see ``jvp``.

  Returns:
    ``(f(x), projection)``.
  """
  x = checks.as_input(x)
  checks.check_order(order, minimum=1)
  if space == "input":
    v = _check_direction(direction, x, "direction")
    mode = _resolve_mode(mode)
    values = []

    def directional(z):
      y, dv = jvp(f, z, v, mode=mode)
      values.append(y)
      return dv

    tensors = _derivative_tensors(directional, x, order - 1)
    return values[0], tensors[-1]
  if space == "output":
    values = []

    def contracted(z):
      y = f(z)
      values.append(y)
      u = direction(y) if callable(direction) else direction
      u = tf.convert_to_tensor(u, dtype=y.dtype)
      if (u.shape.rank is not None and y.shape.rank is not None
          and not u.shape.is_compatible_with(y.shape)):
        raise ValueError(
            f"direction must have the shape of f(x) {y.shape} for "
            f"space='output', got {u.shape}.")
      return tf.reduce_sum(tf.reshape(y * u, [tf.shape(y)[0], -1]), axis=1)

    tensors = _derivative_tensors(contracted, x, order)
    return values[0], tensors[-1]
  raise ValueError(f"space must be 'input' or 'output', got {space!r}.")


def random_unit_vectors(shape, seed, dtype=tf.float32,
                        batch_dims: int = 1) -> tf.Tensor:
  """Directions uniform on the unit sphere, one per leading index (stateless).

  Normalised Gaussians are uniform on the sphere. The same ``seed`` always gives
  the same directions; derive per-step seeds with
  ``tf.random.experimental.stateless_fold_in(seed, step)``.

  Args:
    shape: full shape ``[*batch, *dims]``; the sphere lives in ``R^prod(dims)``.
    seed: shape ``[2]`` integer seed (a Python int is expanded to ``[seed, 0]``).
    dtype: float dtype.
    batch_dims: how many leading dimensions index separate directions.

  Returns:
    A tensor of ``shape`` whose slices over the trailing dims have unit norm.
  """
  if isinstance(seed, int):
    seed = [seed, 0]
  if seed is None:
    raise ValueError("seed is None: random_unit_vectors is stateless, give a shape [2] integer "
                     "seed (or an int), e.g. [0, step].")
  seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
  g = tf.random.stateless_normal(shape, seed=seed, dtype=dtype)
  rank = len(shape) if not isinstance(shape, tf.Tensor) else shape.shape[0]
  if rank is None or batch_dims > rank:
    raise ValueError(
        f"shape must have at least batch_dims={batch_dims} dimensions, got {shape}.")
  # With no trailing dims (scalar outputs) the "sphere" of R^1 is {-1, +1}.
  axes = list(range(batch_dims, rank))
  return g * tf.math.rsqrt(tf.reduce_sum(tf.square(g), axis=axes, keepdims=True))

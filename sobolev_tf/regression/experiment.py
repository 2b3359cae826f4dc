"""The regression experiment of section 4.1 / Figure 2: data, methods, grid training.

Methods (same network, data, budget and optimiser within a size group):

* ``regular``: MSE on values.
* ``sobolev``: MSE on values + squared L2 on input gradients (the paper's
  first-order objective).
* ``stochastic``: eq. 2 with one random unit projection per example and step:
  ``(<grad m - grad f, v>)^2``.
* ``finite_difference``: like ``sobolev`` with gradient targets from central
  differences of the function values (the black-box case, sections 1 and 5).
* ``sobolev2``: values + gradients + Hessians (targets by central differences
  of the analytic gradient) on a softplus network, since ReLU networks have zero
  second derivatives (section 4.1).
* ``regular_softplus``: the regular baseline on that softplus network.
* ``regular_tanh``, ``sobolev_tanh``: ``regular`` and ``sobolev`` on a tanh
  network, the smooth activation beside ReLU in the default config.

Models are trained in groups that share the number of training points and the
network (activation, derivative order); inside a group every model is an
independent slice of one ``StackedMLP``.

Options of the objective beyond the paper (``configs/regression.py``; the
sensitivity study varies them): ``activation`` replaces every method's own
(``relu``, ``softplus``, ``tanh``); ``derivative_weight`` multiplies the
derivative terms (the paper weights values and derivatives equally); ``balance``
(a ``lam`` > 0) weights first-order methods as Huge & Savine (2020),
``alpha * value + (1 - alpha) * mean_j lambda_j^2 e_j^2`` with ``lambda_j`` the
inverse RMS of the scaled training gradients (``scaling.DerivativeBalance``).
"""

from __future__ import annotations

import collections
import dataclasses
import os
import time
from typing import Callable, Dict, Iterable, List, Optional, Sequence

import numpy as np
import sonnet as snt
import tensorflow as tf

from sobolev_tf import checks
from sobolev_tf import derivatives
from sobolev_tf import files
from sobolev_tf import loggers
from sobolev_tf import losses
from sobolev_tf import scaling
from sobolev_tf import training
from sobolev_tf.files import save_npz_atomic
from sobolev_tf.regression import ensemble
from sobolev_tf.regression import functions
from sobolev_tf.training import multi_step
from sobolev_tf.training import check_same_config
from sobolev_tf.training import PeriodicCheckpointer
from sobolev_tf.training import restore_checkpoint

__all__ = ["METHODS", "Method", "Run", "grid_runs", "check_grid", "train_and_evaluate", "make_data", "train_group", "run_grid", "CSV_COLUMNS",
           "write_csv", "read_csv", "group_runs", "report_starts"]

@dataclasses.dataclass(frozen=True)
class Method:
  """A regression method: its network's activation, the derivative order it matches,
  where its gradient targets come from (None for regular training), and whether it
  matches random projections (eq. 2) instead of full gradients."""
  activation: str
  order: int
  gradient_targets: Optional[str] = None  # "analytic" or "finite_difference".
  stochastic: bool = False


METHODS: Dict[str, Method] = {
    "regular": Method("relu", 0),
    "sobolev": Method("relu", 1, "analytic"),
    "stochastic": Method("relu", 1, "analytic", stochastic=True),
    "finite_difference": Method("relu", 1, "finite_difference"),
    "sobolev2": Method("softplus", 2, "analytic"),
    "regular_softplus": Method("softplus", 0),
    "regular_tanh": Method("tanh", 0),
    "sobolev_tanh": Method("tanh", 1, "analytic"),
}
ACTIVATIONS = {"relu": tf.nn.relu, "softplus": tf.nn.softplus, "tanh": tf.nn.tanh}
CSV_COLUMNS = ("function", "num_train", "method", "seed", "test_mse", "test_grad_mse",
               "steps", "wall_seconds")


@dataclasses.dataclass(frozen=True, order=True)
class Run:
  function: str
  num_train: int
  method: str
  seed: int

  def __post_init__(self):
    functions.get_function(self.function)  # Raises a ValueError naming it.
    if self.method not in METHODS:
      raise ValueError(f"Unknown method {self.method!r}; known: {', '.join(METHODS)}.")
    if self.num_train < 1:
      raise ValueError(f"num_train must be positive, got {self.num_train}.")


def _data_seed(run: Run, purpose: int) -> np.random.SeedSequence:
  index = sorted(functions.FUNCTIONS).index(run.function)
  return np.random.SeedSequence([run.seed, index, purpose])


def _hessian_by_central_differences(gradient: Callable, x: np.ndarray, step: float):
  """``[N, 2, 2]``: rows are central differences of the analytic gradient."""
  cols = []
  for i in range(x.shape[1]):
    e = np.zeros(x.shape[1])
    e[i] = step
    cols.append((gradient(x + e) - gradient(x - e)) / (2 * step))
  h = np.stack(cols, axis=2)  # h[n, j, i] = d g_j / d x_i
  return 0.5 * (h + np.transpose(h, (0, 2, 1)))


def make_data(run: Run, num_test: int = 10_000, fd_step: float = 1e-3) -> Dict[str, np.ndarray]:
  """Training and test data of one run (float64).

  The training points depend on (function, seed) and the size: the first n
  points of one stream, so the 20 points are a subset of the 100. The test set
  (``num_test`` fresh uniform points) depends on (function, seed) only, so every
  size and method of a seed is scored on the same points.
  """
  fn = functions.get_function(run.function)
  (x0, x1), (y0, y1) = fn.domain
  width = np.array([x1 - x0, y1 - y0])
  lo, hi = np.array([x0, y0], np.float64), np.array([x1, y1], np.float64)
  # Row-major [n, 2] draws: the first 20 rows of the 100-point set are the 20-point set.
  x_train = lo + (hi - lo) * np.random.default_rng(_data_seed(run, 0)).uniform(size=(run.num_train, 2))
  x_test = lo + (hi - lo) * np.random.default_rng(_data_seed(run, 1)).uniform(size=(num_test, 2))
  y_train, dy_train = fn.value_and_gradient(x_train)
  y_test, dy_test = fn.value_and_gradient(x_test)
  if METHODS[run.method].gradient_targets == "finite_difference":
    # Step relative to the domain, per axis: h = fd_step * width.
    scaled = lambda z: fn(z * width) * 1.0
    _, jac = losses.finite_difference_derivatives(scaled, x_train / width, order=1,
                                                  step=fd_step)
    dy_train = jac / width
  data = dict(x_train=x_train, y_train=y_train, dy_train=dy_train, x_test=x_test,
              y_test=y_test, dy_test=dy_test)
  if METHODS[run.method].order >= 2:
    data["d2y_train"] = _hessian_by_central_differences(fn.gradient, x_train,
                                                         fd_step * float(width.min()))
  for k, v in data.items():
    if not np.all(np.isfinite(v)):
      raise ValueError(f"{run}: {k} contains NaN or Inf.")
  return data


# Methods whose name says their network's activation: config.activation may not change it.
NAMED_ACTIVATION = ("regular_softplus", "regular_tanh", "sobolev_tanh")


def activation_of(method: str, override: str = "") -> str:
  """The network's activation: ``override`` (``config.activation``) or the method's own."""
  activation = override or METHODS[method].activation
  if method in NAMED_ACTIVATION and activation != METHODS[method].activation:
    raise ValueError(f"config.activation={override!r} would train method {method!r} on another "
                     f"network than its name says ({METHODS[method].activation}): leave "
                     "config.activation empty, or drop the method from config.methods.")
  if activation not in ACTIVATIONS:
    raise ValueError(f"Unknown activation {activation!r}; known: {', '.join(ACTIVATIONS)}.")
  if METHODS[method].order >= 2 and activation == "relu":
    raise ValueError(f"Method {method!r} matches Hessians, which are 0 for a ReLU network.")
  return activation


def group_runs(runs: Iterable[Run], activation: str = "") -> Dict[tuple, List[Run]]:
  """Runs that can share one StackedMLP: same size, activation and derivative order."""
  groups = collections.defaultdict(list)
  for run in sorted(runs):
    groups[(run.num_train, activation_of(run.method, activation),
            METHODS[run.method].order)].append(run)
  return dict(groups)


def _scaler(run: Run, data, standardize: bool) -> scaling.SobolevScaler:
  """Inputs to [-1, 1] per axis of the domain, values standardised on the training set."""
  if not standardize:
    return scaling.SobolevScaler(x_offset=0.0, x_scale=1.0, y_offset=0.0, y_scale=1.0).fit(
        data["x_train"], data["y_train"])
  fn = functions.get_function(run.function)
  lo = np.array([d[0] for d in fn.domain], dtype=np.float64)
  hi = np.array([d[1] for d in fn.domain], dtype=np.float64)
  return scaling.SobolevScaler(x_offset=(hi + lo) / 2, x_scale=(hi - lo) / 2).fit(
      data["x_train"], data["y_train"])


class _Group:
  """Stacked arrays, model and optimiser of one group of runs."""

  def __init__(self, runs: Sequence[Run], config):
    self.runs = list(runs)
    self.config = config
    self.activation = activation_of(runs[0].method, config.activation)
    _check_balance(runs, config)
    self.order = max(METHODS[r.method].order for r in runs)
    datas = [make_data(r, config.num_test, config.fd_step) for r in runs]
    self.scalers = [_scaler(r, d, config.standardize) for r, d in zip(runs, datas)]

    def scaled(name, key, default=None):
      return np.stack([sc.transform(**{name: d.get(key, default)})
                       for sc, d in zip(self.scalers, datas)])

    arrays = dict(x=scaled("x", "x_train"), y=scaled("y", "y_train"), dy=scaled("dy", "dy_train"))
    if self.order >= 2:  # First-order runs of a second-order group have no Hessian targets.
      arrays["d2y"] = scaled("d2y", "d2y_train", np.zeros((runs[0].num_train, 2, 2)))
    self.train = {k: tf.constant(v, tf.float32) for k, v in arrays.items()}
    self.test = {k: np.stack([d[k] for d in datas]) for k in ("x_test", "y_test", "dy_test")}
    self.x_train = np.stack([d["x_train"] for d in datas])
    methods = [run.method for run in runs]
    self.w1 = tf.constant([float(METHODS[m].order >= 1) for m in methods])
    self.w2 = tf.constant([float(METHODS[m].order >= 2) for m in methods])
    self.stochastic = tf.constant([METHODS[m].stochastic for m in methods])
    self.model = ensemble.StackedMLP([run.seed for run in runs],
                                     hidden_sizes=tuple(config.hidden_sizes),
                                     activation=ACTIVATIONS[self.activation])
    # An annealed rate is recomputed from the step at every step; a constant one
    # stays a float, so checkpoints written before schedules existed still restore.
    self.schedule = training.learning_rate_schedule(config.lr_schedule, config.learning_rate)
    self.learning_rate = (None if config.lr_schedule == "constant"
                          else tf.Variable(float(self.schedule(0.0)), trainable=False,
                                           name="learning_rate"))
    self.num_steps = config.num_steps
    self.optimizer = snt.optimizers.Adam(self.learning_rate if self.learning_rate is not None
                                         else config.learning_rate)
    self.step = tf.Variable(0, dtype=tf.int64, name="step")
    self.num_models = len(runs)
    # Per-model RNG keys from the run alone: minibatches and directions do not
    # depend on which other models share the stack.
    self.model_keys = [tf.constant(int(_data_seed(run, 2).generate_state(1)[0]) * 2, tf.int64)
                       for run in runs]
    self.batch = min(config.batch_size, runs[0].num_train)
    r = np.stack([sc.x_scale for sc in self.scalers])[:, None, :]
    inv_r = 1.0 / r if config.derivative_units == "original" else np.ones_like(r)
    if config.derivative_units not in ("original", "standardized"):
      raise ValueError("derivative_units must be 'original' or 'standardized', got "
                       f"{config.derivative_units!r}.")
    self.derivative_scale = tf.constant(
        np.repeat(inv_r, self.batch, axis=1).reshape(-1, 2), tf.float32)  # [M*B, 2]
    # First-order weights: value, derivative term and per-partial weights [M*B, 2].
    ones = np.ones(self.num_models)
    value_weight, derivative_weight = ones, ones * config.derivative_weight
    partial_weights = np.square(self.derivative_scale.numpy())
    if config.balance:
      balances = [scaling.DerivativeBalance.from_derivatives(dy, lam=config.balance)
                  for dy in arrays["dy"]]
      value_weight = np.array([b.value_weight for b in balances])
      derivative_weight = derivative_weight * np.array([b.derivative_weight for b in balances])
      partial_weights = np.repeat(np.stack([b.partial_weights for b in balances])[:, None],
                                  self.batch, axis=1).reshape(-1, 2)
    self.value_weight = tf.constant(value_weight, tf.float32)
    self.derivative_weight = tf.constant(derivative_weight, tf.float32)
    self.partial_weights = tf.constant(partial_weights, tf.float32)

  def loss_terms(self, step: tf.Tensor) -> Dict[str, tf.Tensor]:
    """Per-model losses ``[M]`` of one step (minibatch drawn from ``step``)."""
    m, b, n = self.num_models, self.batch, self.runs[0].num_train
    t = self.train
    if b < n:
      idx = tf.stack([
          tf.random.stateless_uniform([b], seed=tf.stack([key, step]), maxval=n, dtype=tf.int64)
          for key in self.model_keys])
      t = {k: tf.gather(v, idx, batch_dims=1) for k, v in t.items()}
    flat_x = tf.reshape(t["x"], [m * b, 2])
    tensors = derivatives.derivative_tensors(self.model.per_example(b), flat_x, self.order)
    per_model = lambda per_example: tf.reduce_mean(tf.reshape(per_example, [m, b]), axis=1)
    targets = [tf.reshape(t["y"], [-1])]
    if self.order == 0:  # Regular training: no input derivatives to compute.
      value = per_model(losses.sobolev_terms(tensors, targets)["value"])
      return {"value": value, "loss": value}
    # Derivative errors measured in the original input units (error / r, so weight
    # 1 / r^2 per partial): the paper's raw-scale weighting of value vs derivative
    # terms, up to the factor sigma^2 that Adam is invariant to. Without it,
    # standardising x would up-weight gradients r^2-fold.
    scale = self.derivative_scale  # [M*B, 2]
    targets.append(tf.reshape(t["dy"], [m * b, 2]))
    weights = [self.partial_weights]
    if self.order >= 2:
      targets.append(tf.reshape(t["d2y"], [m * b, 2, 2]))
      weights.append(tf.square(scale[:, :, None] * scale[:, None, :]))
    per_example = losses.sobolev_terms(tensors, targets, partial_weights=weights)
    value = per_model(per_example["value"])
    full = per_model(per_example["derivative_1"])
    if any(METHODS[run.method].stochastic for run in self.runs):
      # Eq. 2 on the same scaled gradients; one stream per model (not per stack), so a
      # model trains the same alone.
      v = tf.concat([derivatives.random_unit_vectors([b, 2], tf.stack([key + 1, step]))
                     for key in self.model_keys], axis=0)
      # <g_m, v> - <g_f, v> = <g_m - g_f, v>: the projection of the error, against 0.
      error_projection = tf.reduce_sum((tensors[1] - targets[1]) * scale * v, axis=1)
      projected = per_model(losses.sobolev_terms(
          [tensors[0], error_projection], [None, tf.zeros_like(error_projection)])["derivative_1"])
      first = tf.where(self.stochastic, projected, full)
    else:
      first = full
    loss = self.value_weight * value + self.derivative_weight * self.w1 * first
    terms = {"value": value, "derivative_1": first}
    if self.order >= 2:
      second = per_model(per_example["derivative_2"])
      loss = loss + self.derivative_weight * self.w2 * second
      terms["derivative_2"] = second
    terms["loss"] = loss
    return terms

  def train_step(self, step: tf.Tensor) -> Dict[str, tf.Tensor]:
    if self.learning_rate is not None:
      self.learning_rate.assign(self.schedule(tf.cast(step, tf.float32) / self.num_steps))
    with tf.GradientTape() as tape:
      terms = self.loss_terms(step)
      total = tf.reduce_sum(terms["loss"])
    variables = self.model.trainable_variables
    self.optimizer.apply(tape.gradient(total, variables), variables)
    self.step.assign_add(1)
    return {"loss": total, "per_model_loss": terms["loss"]}

  def evaluate(self, chunk: int = 2000) -> Dict[str, np.ndarray]:
    """Test MSE and gradient MSE per model, in the functions' original units."""
    x = self.test["x_test"]
    total = x.shape[1]
    preds, grads = [], []
    for start in range(0, total, chunk):
      p, g = self._predict_original(x[:, start:start + chunk])
      preds.append(p)
      grads.append(g)
    pred, grad = np.concatenate(preds, 1), np.concatenate(grads, 1)
    return dict(test_mse=np.mean((pred - self.test["y_test"])**2, axis=1),
                test_grad_mse=np.mean(np.sum((grad - self.test["dy_test"])**2, -1), axis=1))

  def _predict_original(self, xs: np.ndarray):
    """Values ``[M, N]`` and gradients ``[M, N, 2]`` at original-unit points ``[M, N, 2]``."""
    scaled = np.stack([sc.transform(x=x) for sc, x in zip(self.scalers, xs)])
    p, g = self._predict(tf.constant(scaled.astype(np.float32)))
    back = [sc.inverse_transform(y=y.astype(np.float64), dy=dy.astype(np.float64))
            for sc, y, dy in zip(self.scalers, p.numpy(), g.numpy())]
    return np.stack([b[0] for b in back]), np.stack([b[1] for b in back])

  @tf.function(reduce_retracing=True)
  def _predict(self, xs):
    m, b = self.num_models, tf.shape(xs)[1]
    y, g = derivatives.value_and_gradient(self.model.per_example(b), tf.reshape(xs, [-1, 2]))
    return tf.reshape(y, [m, b]), tf.reshape(g, [m, b, 2])

  def predict_grid(self, index: int, resolution: int):
    """Values and gradients of model ``index`` on a grid over its domain (for plots)."""
    fn = functions.get_function(self.runs[index].function)
    (x0, x1), (y0, y1) = fn.domain
    gx, gy = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    pts = np.stack([gx.ravel(), gy.ravel()], 1)
    pred, grad = self._predict_original(np.broadcast_to(pts, (self.num_models,) + pts.shape))
    return gx, gy, pred[index].reshape(gx.shape), grad[index].reshape(gx.shape + (2,))


def _group_name(key) -> str:
  num_train, activation, order = key
  return f"n{num_train}_{activation}_order{order}"


CURVE_COLUMNS = ("step", "function", "num_train", "method", "seed", "test_mse", "test_grad_mse")
# Config keys a resumed group may change: the grid's extent (its runs are compared
# instead), budgets, evaluation, reporting and speed settings.
RESUMABLE_KEYS = ("functions", "sizes", "methods", "extra_methods", "second_order_methods",
                  "second_order_sizes", "seeds", "num_steps", "steps_per_call", "eval_steps",
                  "checkpoint_minutes", "grid_resolution", "plot_sizes", "workdir",
                  "results_dir", "caption")


def resumable_keys(config) -> tuple:
  """``RESUMABLE_KEYS``, less the budget when the learning rate is annealed over it."""
  if config.get("lr_schedule", "constant") == "constant":
    return RESUMABLE_KEYS
  return tuple(k for k in RESUMABLE_KEYS if k != "num_steps")


_CURVE_TYPES = dict(step=int, num_train=int, seed=int, test_mse=float, test_grad_mse=float)


def _check_balance(runs: Sequence[Run], config) -> None:
  """Huge & Savine's weights are defined for standardised first-order training."""
  if not config.balance:
    return
  if not config.standardize:
    raise ValueError("config.balance needs config.standardize=True (its value and derivative "
                     "terms are both in standardised units).")
  others = sorted({r.method for r in runs if METHODS[r.method].stochastic
                   or METHODS[r.method].order >= 2})
  if others:
    raise ValueError("config.balance weights first-order methods with full gradients "
                     f"(sobolev, finite_difference), not {others}.")


def _recorded_config(config, runs: Sequence[Run]) -> dict:
  """What a group's checkpoint records: its config and runs (a constant rate, the only
  one before schedules existed, is left out so that earlier records still match)."""
  recorded = dict(config.to_dict(), runs=[dataclasses.astuple(r) for r in runs])
  if recorded.get("lr_schedule") == "constant":
    del recorded["lr_schedule"]
  return recorded


def _check_config(config) -> None:
  if config.lr_schedule not in training.SCHEDULES:
    raise ValueError(f"config.lr_schedule must be one of {', '.join(training.SCHEDULES)}, "
                     f"got {config.lr_schedule!r}.")
  checks.check_config(config, positive=("num_steps", "steps_per_call", "batch_size", "num_test",
                                        "learning_rate", "fd_step"),
                      non_negative=("checkpoint_minutes", "grid_resolution", "derivative_weight",
                                    "balance"))
  if config.num_steps % config.steps_per_call:
    raise ValueError(f"config.num_steps ({config.num_steps}) must be a multiple of "
                     f"config.steps_per_call ({config.steps_per_call}).")
  checks.check_config(config, widths=("hidden_sizes",), seeds=("seeds",), counts=("sizes",))
  if not all(isinstance(s, int) and not isinstance(s, bool) and s > 0
             for s in config.eval_steps):
    raise ValueError(f"config.eval_steps must be positive steps, got {config.eval_steps}.")
  if not len(config.functions):
    raise ValueError("config.functions is empty: no run to train (known functions: "
                     f"{', '.join(sorted(functions.FUNCTIONS))}).")
  if not _names(config.methods) + _names(config.extra_methods) + _names(
      config.second_order_methods):
    raise ValueError("config.methods is empty: no run to train.")


def _evaluated_steps(settings: dict, first: int, last: int) -> set:
  """The steps in ``(first, last]`` with rows, for calls of ``steps_per_call`` steps from
  ``first``: an evaluation is logged at the end of the call that passes its step."""
  spc = settings["steps_per_call"]
  return {first + -(-(s - first) // spc) * spc for s in settings["eval_steps"] if s > first}


def check_grid(runs: Sequence[Run], config) -> None:
  """Every check of a grid's config and runs, before the first group trains."""
  _check_config(config)
  _check_balance(runs, config)
  group_runs(runs, config.activation)  # Unknown activations.


def train_group(runs: Sequence[Run], config, workdir: Optional[str] = None,
                log: Optional[Callable[[str], None]] = None,
                progress: Optional[loggers.Progress] = None,
                progress_offset: float = 0.0) -> List[dict]:
  """Trains one group of runs together; resumes from ``workdir`` if it has a checkpoint.

  Returns one result dict per run with the ``CSV_COLUMNS`` and the learning
  curve (``curve``: list of (step, test_mse, test_grad_mse)). With a
  ``workdir``, evaluations go to ``workdir/curves/<group>.csv`` and TensorBoard
  (``workdir/tb/<group>``). Progress is counted in models on ``progress`` (a
  grid's bar, from ``progress_offset``) or a bar of the group's own; messages go
  to ``log`` (above the bar by default).
  """
  _check_config(config)
  group = _Group(runs, config)
  name = _group_name((runs[0].num_train, group.activation, group.order))
  # Training time, summed over resumed segments up to their last checkpoint.
  elapsed = tf.Variable(0.0, dtype=tf.float64, name="elapsed_seconds")
  ckpt = tf.train.Checkpoint(model=group.model, optimizer=group.optimizer, step=group.step,
                             elapsed_seconds=elapsed)
  manager = None
  if workdir:
    checkpoint_dir = os.path.join(workdir, "checkpoints", name)
    manager = tf.train.CheckpointManager(ckpt, checkpoint_dir, max_to_keep=1)
    hint = f"Delete {checkpoint_dir} to start this group again, or use another --workdir."
    record_path = os.path.join(checkpoint_dir, "run_config.json")
    recorded = check_same_config(record_path, _recorded_config(config, runs),
                      resuming=manager.latest_checkpoint is not None,
                      ignore=resumable_keys(config), hint=hint)
    if manager.latest_checkpoint:
      restore_checkpoint(ckpt, manager.latest_checkpoint, hint)
  start_step = int(group.step.numpy())
  if start_step > config.num_steps:
    raise ValueError(f"{manager.latest_checkpoint} is at step {start_step}, beyond num_steps "
                     f"({config.num_steps}); use a fresh --workdir for a shorter run.")
  spc = config.steps_per_call
  expected_steps = ()
  if workdir:  # The rows before the restored step were logged under the settings of their time.
    segments = training.logging_segments(record_path, recorded, config.to_dict(), start_step,
                                         ("eval_steps", "steps_per_call"))
    expected_steps = training.logged_steps(segments, start_step, _evaluated_steps)
  metrics_log = loggers.MetricsLogger(
      workdir and os.path.join(workdir, "curves"), f"{name}.csv", CURVE_COLUMNS,
      types=_CURVE_TYPES, start_step=start_step, tensorboard=False,
      key_columns=("function", "num_train", "method", "seed"), expected_steps=expected_steps)
  tensorboard = loggers.MetricsLogger(workdir and os.path.join(workdir, "tb"),
                                      tensorboard_dir=name)
  own_progress = progress is None
  if own_progress:
    progress = loggers.Progress(len(runs), f"[{name}]", unit="model")
  # Models x the restored fraction of their steps: done before, not in the rate.
  progress.skip_to(progress_offset + len(runs) * start_step / config.num_steps)
  log = log or progress.write
  if start_step:
    log(f"[{name}] resumed at step {start_step} from {manager.latest_checkpoint}")
  run = multi_step(group.train_step, spc, jit_compile=config.jit_compile)
  eval_steps = set(int(s) for s in config.eval_steps if s <= config.num_steps) | {config.num_steps}

  def save(step):
    # Rows first: after a kill the CSV may run ahead of the checkpoint (resume drops
    # those rows), never behind it.
    metrics_log.flush()
    manager.save()

  checkpointer = manager and PeriodicCheckpointer(save, config.checkpoint_minutes)
  postfix = ""
  while int(group.step.numpy()) < config.num_steps:
    t0 = time.time()
    start = int(group.step.numpy())
    metrics = run(start)
    step = int(group.step.numpy())
    elapsed.assign_add(time.time() - t0)
    tensorboard.scalars(step, {"loss": float(metrics["loss"])})
    if any(start < s <= step for s in eval_steps):
      ev = group.evaluate()
      for i, r in enumerate(runs):
        metrics_log.record(dict(step=step, function=r.function, num_train=r.num_train,
                                method=r.method, seed=r.seed,
                                test_mse=float(ev["test_mse"][i]),
                                test_grad_mse=float(ev["test_grad_mse"][i])), flush=False)
      tensorboard.scalars(step, {
          f"{m}/median_log10_test_mse": float(np.median(np.log10(
              [ev["test_mse"][i] for i, r in enumerate(runs) if r.method == m])))
          for m in sorted({r.method for r in runs})})
      postfix = f"median log10 test MSE {np.median(np.log10(ev['test_mse'])):.2f} at {step}"
    progress.update(progress_offset + len(runs) * step / config.num_steps,
                    f"{name} step {step}/{config.num_steps} loss {float(metrics['loss']):.4g}"
                    + (f", {postfix}" if postfix else ""))
    if checkpointer:
      checkpointer.maybe_save(step, force=step >= config.num_steps)
  metrics_log.close()
  tensorboard.close()
  if own_progress:
    progress.close()
  final = group.evaluate()
  curves: Dict[tuple, list] = collections.defaultdict(list)
  for row in metrics_log.rows:
    curves[row["function"], row["method"], row["seed"]].append(
        (row["step"], row["test_mse"], row["test_grad_mse"]))
  results = []
  for i, r in enumerate(runs):
    results.append(dict(function=r.function, num_train=r.num_train, method=r.method,
                        seed=r.seed, test_mse=float(final["test_mse"][i]),
                        test_grad_mse=float(final["test_grad_mse"][i]),
                        steps=config.num_steps, wall_seconds=float(elapsed.numpy()) / len(runs),
                        curve=curves[r.function, r.method, r.seed]))
  if workdir and config.grid_resolution:
    grid_dir = os.path.join(workdir, "grids")
    os.makedirs(grid_dir, exist_ok=True)
    for i, r in enumerate(runs):
      if r.seed == min(x.seed for x in runs) and r.num_train in tuple(config.plot_sizes):
        gx, gy, pred, grad = group.predict_grid(i, config.grid_resolution)
        path = os.path.join(grid_dir, f"{r.function}_{r.num_train}_{r.method}.npz")
        save_npz_atomic(path, gx=gx, gy=gy, pred=pred, grad=grad, x_train=group.x_train[i])
  return results


def run_grid(runs: Sequence[Run], config, workdir: Optional[str] = None,
             log: Optional[Callable[[str], None]] = None) -> List[dict]:
  """Trains every run, one compiled group at a time, under one progress bar (models)."""
  check_grid(runs, config)
  if not runs:
    raise ValueError("No run to train: the grid's functions, sizes, methods or seeds are empty.")
  if workdir:
    checks.check_writable_directory(workdir, "checkpoints")
  results = []
  with loggers.Progress(len(runs), "Figure 2", unit="model") as progress:
    for key, group in group_runs(runs, config.activation).items():
      results.extend(train_group(group, config, workdir, log or progress.write, progress,
                                 progress_offset=len(results)))
  return results


_CSV_TYPES = dict(num_train=int, seed=int, steps=int, test_mse=float, test_grad_mse=float,
                  wall_seconds=float)


def write_csv(results: Sequence[dict], path: str) -> None:
  """Writes the ``CSV_COLUMNS`` of ``results`` (temporary name, then rename)."""
  files.write_csv(path, [{c: r[c] for c in CSV_COLUMNS} for r in results], CSV_COLUMNS)


def read_csv(path: str) -> List[dict]:
  """The rows of a ``write_csv`` file, typed; the header must be ``CSV_COLUMNS``."""
  return files.read_csv(path, types=_CSV_TYPES, columns=CSV_COLUMNS)


def _names(values):
  """A config list; ``--config.extra_methods=`` (empty) parses as ('',)."""
  return [v for v in values if v != ""]


def grid_runs(config) -> List[Run]:
  """Every run of the config: functions x sizes x methods x seeds, and the second-order ones."""
  methods = _names(config.methods) + _names(config.extra_methods)
  runs = [Run(f, n, m, s) for f in config.functions for n in config.sizes
          for m in methods for s in config.seeds]
  runs += [Run(f, n, m, s) for f in config.functions for n in config.second_order_sizes
           for m in _names(config.second_order_methods) for s in config.seeds]
  return runs


def report_starts(config) -> Dict[str, object]:
  """The files ``train_and_evaluate`` writes to its ``output_dir``, each with how it starts
  (``files.check_file_destination``): an existing file that does not is someone else's."""
  from sobolev_tf.regression import report  # pylint: disable=g-import-not-at-top
  pngs = ["figure2.png", "curves.png"] + [f"{f}.png" for f in config.functions] + [
      "piecewise_linear.png"]
  return dict({"figure2.csv": ",".join(CSV_COLUMNS), "figure2.md": report.TITLE},
              **{name: files.PNG_START for name in pngs})


def train_and_evaluate(config, workdir: str, output_dir: str, command: str) -> list:
  """Trains the grid of ``config`` (resuming from ``workdir``) and writes its report.

  ``output_dir`` receives figure2.csv, figure2.md, figure2.png, curves.png,
  <function>.png and piecewise_linear.png; ``command`` is quoted in figure2.md.
  """
  from sobolev_tf.regression import report  # pylint: disable=g-import-not-at-top
  _check_config(config)
  runs = grid_runs(config)  # Unknown functions or methods fail here.
  check_grid(runs, config)
  checks.check_writable_directory(workdir, "checkpoints")
  checks.check_writable_directory(output_dir, "report")
  for name, first in report_starts(config).items():  # Files it did not write are kept.
    checks.check_output_file(os.path.join(output_dir, name), "report", starts_with=first)
  start = time.time()
  results = run_grid(runs, config, workdir)
  wall = time.time() - start
  write_csv(results, os.path.join(output_dir, "figure2.csv"))
  config_name = command.split("--config=")[-1].split()[0] if "--config=" in command else \
      "configs/regression.py (default)"
  header = [
      report.TITLE, "",
      f"Command: `{command}`  ",
      f"Config: `{config_name}`: lr {config.learning_rate} ({config.lr_schedule}), "
      f"{config.num_steps} steps, batch "
      f"{config.batch_size} (full batch below), standardised inputs/outputs: "
      f"{config.standardize}, seeds {list(config.seeds)}, test points {config.num_test}.  ",
      f"Wall time of this invocation: {wall / 60:.1f} min on this machine "
      f"({os.cpu_count()} CPU cores; a resumed run counts only its own part). Per-model "
      "wall_seconds in the CSV is its group's training time divided by the group's size.", "",
      "Test MSE is in the functions' original units. Each cell aggregates the seeds; "
      "see figure2.csv for every run and curves.png for the learning curves.",
  ] + (["", config.caption] if config.get("caption") else [])
  report.write_markdown(results, os.path.join(output_dir, "figure2.md"), header)
  report.plot_figure2(results, os.path.join(output_dir, "figure2.png"),
                      title=f"{config_name}; bars: mean log10 test MSE, error bars: std over seeds")
  report.plot_curves(results, os.path.join(output_dir, "curves.png"))
  for f in config.functions:
    report.plot_function(f, os.path.join(workdir, "grids"), os.path.join(output_dir, f"{f}.png"),
                         sizes=tuple(config.plot_sizes))
  report.plot_piecewise_linear(os.path.join(output_dir, "piecewise_linear.png"))
  written = list(report_starts(config))
  print("\nlog10 test MSE (mean +- std over seeds), original units\n"
        + "\n".join(report.figure2_table(results))
        + f"\n\nTrained in {wall / 60:.1f} min; wrote to {output_dir}/: " + ", ".join(written)
        + f"\nCheckpoints, curves and TensorBoard logs: {workdir}/")
  return results

"""``SobolevRegressor``: the scikit-learn estimator (parameters, fit, predictions, export)."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
import warnings
from typing import Any, Optional

import keras
import numpy as np
from sklearn import base as sklearn_base
from sklearn import exceptions as sklearn_exceptions
import tensorflow as tf

from sobolev_tf import files
from sobolev_tf import keras_model
from sobolev_tf import loggers
from sobolev_tf import scaling
from sobolev_tf import serving
from sobolev_tf import training
from sobolev_tf.estimator import data as data_lib
from sobolev_tf.estimator import loop
from sobolev_tf.estimator import networks

__all__ = ["SobolevRegressor", "Execution"]


@dataclasses.dataclass(frozen=True)
class Execution:
  """How a fit runs, as opposed to what it learns (``SobolevRegressor(execution=...)``).

  Attributes:
    strategy: a ``tf.distribute.Strategy``; None: the current scope's. The global
      batch is split over its replicas (``batch_size`` must divide evenly).
    jit_compile: XLA for the training loop: True, False or "auto" (on for batches of
      at least 4,096 examples on one replica, where it saves more than its compile
      time costs; repeated fits of small data gain from True, see
      ``results/benchmarks.md``).
    checkpoint_dir: keep the training state there (``tf.train.CheckpointManager``,
      every ``checkpoint_minutes``): a killed fit of the same data and parameters
      resumes where it stopped, a finished one returns at once.
    checkpoint_minutes: see ``checkpoint_dir``.
  """
  strategy: Optional[tf.distribute.Strategy] = None
  jit_compile: Any = "auto"
  checkpoint_dir: Optional[str] = None
  checkpoint_minutes: float = 2.0

  def __deepcopy__(self, memo):
    # Frozen, and its strategy must stay the same object: scikit-learn's clone (grid search,
    # cross-validation) then reuses the traced loops of this strategy's trainers.
    return self

  def check(self) -> None:
    if self.strategy is not None and not isinstance(self.strategy, tf.distribute.Strategy):
      raise ValueError(f"execution.strategy must be a tf.distribute.Strategy, got "
                       f"{type(self.strategy).__name__}.")
    if self.jit_compile not in (True, False, "auto"):
      raise ValueError("execution.jit_compile must be True, False or 'auto', got "
                       f"{self.jit_compile!r}.")
    if not data_lib.finite_non_negative(self.checkpoint_minutes):
      raise ValueError("execution.checkpoint_minutes must be a finite number >= 0, got "
                       f"{self.checkpoint_minutes!r}.")


class SobolevRegressor(sklearn_base.RegressorMixin, sklearn_base.BaseEstimator):
  """A neural surrogate trained on values and, when given, their input derivatives.

  Args:
    hidden_layers: widths of the hidden layers of the default network (Huge &
      Savine: 4 x 20).
    activation: activation of the default network's hidden layers. Smooth by
      default (softplus): the derivative term trains the network's input gradient,
      whose own gradient vanishes with a piecewise-linear activation such as ReLU.
    network: None (``mlp(n_in, n_out, hidden_layers, activation, seed)``), a Keras
      model ``[B, n_in] -> [B, n_out]`` whose current weights are the initial ones
      (it is copied, never trained in place), or a builder
      ``network(n_in, n_out, seed) -> keras.Model``.
    epochs: passes over the data (Huge & Savine: 100).
    batch_size: examples per step; None: ``max(256, m // 16)`` (at most ``m``).
    learning_rate: a float (constant), or a schedule ``rate(fraction of training)``
      such as ``training.one_cycle(0.1)`` (the default, Huge & Savine's) or
      ``training.CosineDecay(1e-3)``; read at the start of every epoch.
    adam: Adam's ``beta_1``, ``beta_2`` and ``epsilon`` (default 0.9, 0.999, 1e-8:
      TensorFlow 1's, as in Huge & Savine's notebook), e.g. ``{"beta_2": 0.99}``.
    standardize: standardise inputs and values and rescale derivatives by the chain
      rule (``SobolevScaler``); predictions are always in the data's units.
    balance: Huge & Savine's ``lam`` (``DerivativeBalance``): value term weight
      ``alpha = 1 / (1 + lam n)``, derivative term ``1 - alpha``, partial j weighted by
      ``1 / rms`` of its scaled labels. None: the paper's eq. 1, values and the sum
      of squared partial errors weighted 1 and ``derivative_weight``.
    derivative_weight: multiplies the derivative term.
    l2: weight of ``sum ||kernel||^2`` over the network's kernels (any variable of
      rank >= 2) added to the loss; the network's own ``losses`` are added too.
    early_stopping: patience in epochs: with validation data, stop when the
      validation loss (values and derivatives, as trained) has not improved for
      that many epochs and keep the best weights. None: train every epoch.
    shuffle: draw a new permutation of the examples every epoch.
    seed: initial weights, permutations and the validation split.
    verbose: "auto" (a progress bar with ETA on a terminal, quiet otherwise),
      True (also periodic lines in a log) or False.
    execution: an ``Execution``: the ``tf.distribute`` strategy, XLA, and a
      checkpoint directory to resume from. The hyper-parameters above are flat, as
      scikit-learn's convention wants (``GridSearchCV`` tunes them by name); how
      the fit runs is this one record.

  Fitted attributes: ``scaler_``, ``balance_`` (or None), ``coefs_`` (the network's
  weights), ``n_features_in_``, ``n_outputs_``, ``history_`` (``loss`` and
  ``val_loss`` per epoch, in scaled units), ``n_epochs_``, ``best_epoch_``,
  ``fit_seconds_``; ``network_`` builds a Keras model with the fitted weights.
  """

  def __init__(self, hidden_layers=(20, 20, 20, 20), activation="softplus", network=None,
               epochs=100, batch_size=None, learning_rate=training.one_cycle(0.1), adam=None,
               standardize=True, balance=1.0, derivative_weight=1.0, l2=0.0,
               early_stopping=None, shuffle=True, seed=0, verbose="auto", execution=None):
    self.hidden_layers = hidden_layers
    self.activation = activation
    self.network = network
    self.epochs = epochs
    self.batch_size = batch_size
    self.learning_rate = learning_rate
    self.adam = adam
    self.standardize = standardize
    self.balance = balance
    self.derivative_weight = derivative_weight
    self.l2 = l2
    self.early_stopping = early_stopping
    self.shuffle = shuffle
    self.seed = seed
    self.verbose = verbose
    self.execution = execution

  # -- checks ---------------------------------------------------------------------------

  def _check_params(self) -> None:
    """Refuses bad hyper-parameters before any work, naming the parameter."""
    def positive_int(name, value):
      if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")

    positive_int("epochs", self.epochs)
    if self.batch_size is not None:
      positive_int("batch_size", self.batch_size)
    if self.network is None:
      for width in self.hidden_layers:
        positive_int("hidden_layers (each width)", width)
      if self.activation not in networks.ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(networks.ACTIVATIONS)}, got "
                         f"{self.activation!r}.")
    elif not (isinstance(self.network, keras.Model) or callable(self.network)):
      raise ValueError("network must be None, a Keras model or a builder network(n_in, n_out, "
                       f"seed) -> keras.Model, got {type(self.network).__name__}.")
    if not (callable(self.learning_rate) or data_lib.finite_non_negative(self.learning_rate)):
      raise ValueError("learning_rate must be a finite number >= 0 or a schedule rate(fraction "
                       f"of training), got {self.learning_rate!r}.")
    if self.balance is not None and not data_lib.finite_non_negative(self.balance):
      raise ValueError(f"balance must be None or Huge & Savine's lam >= 0, got {self.balance!r}.")
    for name in ("derivative_weight", "l2"):
      if not data_lib.finite_non_negative(getattr(self, name)):
        raise ValueError(f"{name} must be a finite number >= 0, got {getattr(self, name)!r}.")
    if self.early_stopping is not None:
      positive_int("early_stopping (patience in epochs)", self.early_stopping)
    if self.verbose not in (True, False, "auto", 0, 1):
      raise ValueError(f"verbose must be True, False or 'auto', got {self.verbose!r}.")
    if self.execution is not None and not isinstance(self.execution, Execution):
      raise ValueError(f"execution must be an Execution, got {type(self.execution).__name__}.")
    self._execution().check()
    adam = self.adam if isinstance(self.adam, dict) else {}
    if self.adam is not None and (
        not isinstance(self.adam, dict) or not set(adam) <= {"beta_1", "beta_2", "epsilon"}
        or not all(data_lib.finite_non_negative(v) for v in adam.values())
        or not all(adam.get(b, 0.0) < 1 for b in ("beta_1", "beta_2"))
        or not adam.get("epsilon", 1.0) > 0):
      raise ValueError("adam must be a dict of Adam's beta_1 and beta_2 (in [0, 1)) and epsilon "
                       f"(> 0); the rate is learning_rate=. Got {self.adam!r}.")

  def _fit_scaler(self, train: dict) -> scaling.SobolevScaler:
    if self.standardize:
      std = np.std(train["x"], axis=0)
      constant = np.flatnonzero(std == 0)
      if len(constant):
        raise ValueError(f"x has constant columns {constant.tolist()} (standard deviation 0): "
                         "drop them, or pass standardize=False.")
      scaler = scaling.SobolevScaler()
    else:
      scaler = scaling.SobolevScaler(x_offset=0.0, x_scale=1.0, y_offset=0.0, y_scale=1.0)
    if train["directions"] is not None:  # Projected labels: their statistics are in fit.
      return scaler.fit(train["x"], train["y"])
    return scaler.fit(train["x"], train["y"], train["dy"], dy_weight=train["dy_weight"])

  def _scaled(self, arrays: dict) -> loop.Data:
    sc = self.scaler_
    f32 = lambda a: None if a is None else tf.constant(a, tf.float32)
    dy, directions = arrays["dy"], arrays.get("directions")
    if dy is not None:
      if arrays["dy_weight"] is not None:
        dy = np.where(arrays["dy_weight"] > 0, dy, 0.0)
      if directions is None:
        dy = sc.transform(dy=dy)
      else:
        # x = c + s u, y = m + t v: the label g = <dy/dx, d> is <dv/du, d / s> t, so the
        # network in scaled units is differentiated along d / s against g / t.
        dy = dy / sc.y_scale
        directions = directions / sc.x_scale
    return loop.Data(f32(sc.transform(x=arrays["x"])), f32(sc.transform(y=arrays["y"])), f32(dy),
                 f32(arrays["sample_weight"]), f32(arrays["dy_weight"]), f32(directions))

  # -- the network ----------------------------------------------------------------------

  def _trainer(self, spec: tuple, strategy) -> loop.Trainer:
    return loop.trainer_for(networks.architecture(spec), lambda: networks.build(spec),
                        dict(self.adam or {}), strategy)

  @property
  def network_(self) -> keras.Model:
    """A Keras model with the fitted weights (built anew at each access)."""
    self._check_fitted()
    network = networks.build(self.network_spec_)
    network.set_weights(self.coefs_)
    return network

  def _check_fitted(self) -> None:
    if not hasattr(self, "coefs_"):
      raise sklearn_exceptions.NotFittedError(
          "This SobolevRegressor is not fitted yet: call fit(x, y, dydx) first.")

  def _execution(self) -> Execution:
    return self.execution or Execution()

  def _strategy(self) -> tf.distribute.Strategy:
    return self._execution().strategy or tf.distribute.get_strategy()

  def _resolve_jit(self, strategy, batch_size: int) -> bool:
    replicas, jit = strategy.num_replicas_in_sync, self._execution().jit_compile
    if jit is True and replicas > 1:
      raise ValueError(f"execution.jit_compile=True runs on one replica; the strategy has "
                       f"{replicas}: use 'auto' or False.")
    if jit == "auto":
      return replicas == 1 and batch_size >= 4096
    return bool(jit)

  def _schedule_rates(self) -> np.ndarray:
    fractions = np.arange(self.epochs) / self.epochs
    if callable(self.learning_rate):
      rates = np.asarray([float(self.learning_rate(t)) for t in fractions], np.float64)
    else:
      rates = np.full(self.epochs, float(self.learning_rate))
    if not np.all(np.isfinite(rates) & (rates >= 0)):
      raise ValueError(f"learning_rate gave rates that are not finite and >= 0: {rates}.")
    return rates.astype(np.float32)

  # -- fit ------------------------------------------------------------------------------

  def fit(self, x, y=None, dydx=None, *, sample_weight=None, dydx_weight=None,
          directions=None, validation_data=None, validation_split=None) -> "SobolevRegressor":
    """Trains a new network on ``x [m, n]``, ``y [m]`` or ``[m, out]`` and, if given, ``dydx``.

    Args:
      x, y: inputs and values. ``x`` may instead be a ``tf.data.Dataset`` of
        batches ``(x, y)`` or ``(x, y, dydx)`` (data larger than memory; ``y`` and
        ``dydx`` are then None).
      dydx: derivative labels ``[m, n]`` (one output) or ``[m, out, n]``; None trains
        on values alone, on the same path (the standard baseline).
      sample_weight: per-example weights ``[m]`` on every term.
      dydx_weight: per-partial weights of ``dydx``'s shape; 0 masks a missing
        partial (its label may then be NaN).
      directions: ``[m, n]``: ``dydx`` then holds directional derivatives ``[m]`` (or
        ``[m, out]``) along these directions, e.g. from one forward-mode AAD sweep
        per path: eq. 2 of Czarnecki et al. with the projections given. Huge &
        Savine's weights then count one derivative label per example.
      validation_data: ``(x, y)`` or ``(x, y, dydx)``: its loss is recorded every
        epoch and watched by ``early_stopping``.
      validation_split: instead, the fraction of the examples held out (a seeded
        random draw).

    Returns:
      self.
    """
    self._check_params()
    if isinstance(x, tf.data.Dataset):
      return self._fit_dataset(x, y, dydx, sample_weight, dydx_weight, directions,
                               validation_data, validation_split)
    if y is None:
      raise ValueError("fit needs values y: fit(x, y, dydx).")
    arrays = data_lib.check_arrays(x, y, dydx, sample_weight, dydx_weight, directions=directions)
    if directions is not None and validation_data is not None and len(validation_data) > 2:
      raise ValueError("With directions, validation_data is (x, y); or use validation_split.")
    if validation_data is not None and validation_split is not None:
      raise ValueError("Give validation_data or validation_split, not both.")
    validation = None
    if validation_split is not None:
      arrays, validation = data_lib.split(arrays, validation_split, self.seed)
    elif validation_data is not None:
      validation = self._validation_arrays(validation_data, arrays)
    if self.early_stopping is not None and validation is None:
      raise ValueError("early_stopping watches a validation loss: give validation_data or "
                       "validation_split.")
    m = len(arrays["x"])
    batch_size = networks.default_batch_size(m) if self.batch_size is None else int(self.batch_size)
    if batch_size > m:
      raise ValueError(f"batch_size={batch_size} is larger than the {m} training examples.")
    strategy = self._strategy()
    if batch_size % strategy.num_replicas_in_sync:
      raise ValueError(f"batch_size={batch_size} must be a multiple of the strategy's "
                       f"{strategy.num_replicas_in_sync} replicas.")
    rates = self._schedule_rates()
    self.scaler_ = self._fit_scaler(arrays)
    n_in, n_out = arrays["x"].shape[1], arrays["y"].shape[1]
    has_dy = arrays["dy"] is not None
    self.balance_ = None
    if has_dy and self.balance is not None:
      if directions is None:
        self.balance_ = self.scaler_.balance(self.balance)
      else:  # One derivative label per example and output.
        labels = arrays["dy"] / self.scaler_.y_scale
        mask = np.ones_like(labels) if arrays["dy_weight"] is None else arrays["dy_weight"] > 0
        rms = np.sqrt(np.sum(np.where(mask, labels, 0.0)**2, axis=0)
                      / np.maximum(np.sum(mask, axis=0), 1))
        self.balance_ = scaling.DerivativeBalance.from_rms(rms[:, None], num_inputs=1,
                                                           lam=self.balance)
    self.n_features_in_, self.n_outputs_ = n_in, n_out
    self.y_is_1d_ = np.ndim(y) == 1
    data = self._scaled(arrays)
    spec, initial = networks.network_spec(self.network, self.hidden_layers, self.activation,
                                          self.seed, n_in, n_out, sample=data.x[:8].numpy())
    self.network_spec_ = spec
    val = None if validation is None else self._scaled(validation)
    self._train(self._trainer(spec, strategy), initial, data, val, self._weights(n_out, n_in),
                rates, batch_size, self._resolve_jit(strategy, batch_size),
                fingerprint=data_lib.fingerprint(data, val))
    return self

  def _fit_dataset(self, dataset: tf.data.Dataset, y, dydx, sample_weight, dydx_weight,
                   directions, validation_data, validation_split) -> "SobolevRegressor":
    """``fit`` on a dataset of ``(x, y[, dydx])`` batches, read in its own order each epoch.

    One pass first computes the statistics (means, standard deviations, the RMS of
    each partial); every epoch then streams the batches through a compiled loop.
    """
    given = dict(y=y, dydx=dydx, sample_weight=sample_weight, dydx_weight=dydx_weight,
                 directions=directions, validation_split=validation_split,
                 batch_size=self.batch_size)
    extra = [k for k, v in given.items() if v is not None]
    if extra:
      raise ValueError(f"fit(dataset) takes its labels and batches from the dataset; "
                       f"{', '.join(extra)} must be None (validation_data may be given).")
    spec = dataset.element_spec
    if not isinstance(spec, tuple) or len(spec) not in (2, 3) or spec[0].shape.rank != 2:
      raise ValueError(f"The dataset must yield batches (x [B, n], y [B] or [B, out][, dydx]); "
                       f"its elements are {spec}.")
    if self._execution().jit_compile is True or self._execution().checkpoint_dir:
      raise ValueError("fit(dataset) runs without XLA and checkpoints: leave "
                       "execution.jit_compile 'auto' (or False) and checkpoint_dir None, or fit "
                       "arrays.")
    n, out = spec[0].shape[1], 1 if spec[1].shape.rank == 1 else spec[1].shape[-1]
    if len(spec) == 3 and tuple(spec[2].shape[1:]) not in ((n,), (out, n)):
      raise ValueError(f"The dataset's dydx batches have shape {spec[2].shape}; for x "
                       f"{spec[0].shape} and y {spec[1].shape} they must be [B, {n}]"
                       + (f" or [B, {out}, {n}]" if out else "") + ".")
    stats = data_lib.dataset_statistics(dataset)
    self.n_features_in_, self.n_outputs_ = stats["n_in"], stats["n_out"]
    self.y_is_1d_ = spec[1].shape.rank == 1
    self.scaler_ = self._scaler_from_statistics(stats)
    has_dy = len(spec) == 3
    self.balance_ = (self.scaler_.balance(self.balance) if has_dy and self.balance is not None
                     else None)
    validation = None
    if validation_data is not None:
      template = dict(x=np.zeros((1, stats["n_in"])), y=np.zeros((1, stats["n_out"])))
      validation = self._scaled(self._validation_arrays(validation_data, template))
    if self.early_stopping is not None and validation is None:
      raise ValueError("early_stopping watches a validation loss: give validation_data.")
    strategy = self._strategy()
    spec_key, initial = networks.network_spec(
        self.network, self.hidden_layers, self.activation, self.seed, stats["n_in"], stats["n_out"])
    self.network_spec_ = spec_key
    trainer = self._trainer(spec_key, strategy)
    weights = self._weights(stats["n_out"], stats["n_in"])
    rates = self._schedule_rates()
    sc = self.scaler_
    consts = [tf.constant(np.asarray(a, np.float32)) for a in
              (sc.x_offset, sc.x_scale, sc.y_offset, sc.y_scale,
               sc._derivative_factor(1))]  # pylint: disable=protected-access

    def scale(batch):
      x_offset, x_scale, y_offset, y_scale, dy_factor = consts
      x = (tf.cast(batch[0], tf.float32) - x_offset) / x_scale
      y = (tf.reshape(tf.cast(batch[1], tf.float32), [tf.shape(x)[0], -1]) - y_offset) / y_scale
      dy = None
      if has_dy:
        dy = tf.reshape(tf.cast(batch[2], tf.float32), tf.concat([tf.shape(y), [-1]], 0))
        dy = dy * dy_factor
      return loop.Data(x, y, dy, None, None)

    start_time = time.perf_counter()
    history = {"loss": [], "val_loss": []}
    best, best_loss, best_epoch, epoch = None, np.inf, None, 0
    with trainer.lock:
      trainer.reset(initial)
      progress = loggers.Progress(self.epochs, "SobolevRegressor", unit="epoch",
                                  enabled=self._show_progress())
      for epoch in range(1, self.epochs + 1):
        history["loss"].append(trainer.run_dataset_epoch(dataset, scale, weights,
                                                         float(rates[epoch - 1])))
        if validation is not None:
          history["val_loss"].append(trainer.validation_loss(validation, weights))
          if history["val_loss"][-1] < best_loss:
            best_loss, best_epoch = history["val_loss"][-1], epoch
            best = trainer.network.get_weights()
        progress.update(epoch, f"loss {history['loss'][-1]:.4g}")
        if self.early_stopping is not None and epoch - (best_epoch or 0) >= self.early_stopping:
          break
      progress.close()
      if self.early_stopping is not None and best is not None:
        trainer.network.set_weights(best)
      elif self.early_stopping is not None:
        _warn_never_improved()
      self.coefs_ = trainer.network.get_weights()
    self.best_epoch_ = best_epoch if self.early_stopping is not None else None
    sample = np.asarray(next(iter(dataset))[0], np.float64)
    self._finish(trainer, self.scaler_.transform(x=sample), epoch, history, start_time)
    return self

  def _scaler_from_statistics(self, stats: dict) -> scaling.SobolevScaler:
    if not self.standardize:
      scaler = scaling.SobolevScaler(x_offset=0.0, x_scale=1.0, y_offset=0.0, y_scale=1.0)
      x_offset, x_scale = np.zeros(stats["n_in"]), np.ones(stats["n_in"])
      y_offset, y_scale = np.zeros(stats["n_out"]), np.ones(stats["n_out"])
    else:
      constant = np.flatnonzero(stats["x_std"] == 0)
      if len(constant):
        raise ValueError(f"x has constant columns {constant.tolist()} (standard deviation 0): "
                         "drop them, or pass standardize=False.")
      scaler = scaling.SobolevScaler()
      x_offset, x_scale = stats["x_mean"], stats["x_std"]
      y_offset, y_scale = stats["y_mean"], np.where(stats["y_std"] > 0, stats["y_std"], 1.0)
    scaler.x_offset, scaler.x_scale, scaler.y_offset, scaler.y_scale = (
        x_offset, x_scale, y_offset, y_scale)
    if "dy_mean_square" in stats:
      factor = scaler._derivative_factor(1)  # pylint: disable=protected-access
      rms = np.sqrt(stats["dy_mean_square"]) * np.abs(factor)
      scaler.scaled_gradient_rms = rms
    return scaler

  def _show_progress(self) -> bool:
    return self.verbose is True or self.verbose == 1 or (
        self.verbose == "auto" and getattr(sys.stderr, "isatty", lambda: False)())

  def _validation_arrays(self, validation_data, train: dict) -> dict:
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
      raise ValueError("validation_data must be (x, y) or (x, y, dydx).")
    x, y, dydx = (tuple(validation_data) + (None,))[:3]
    arrays = data_lib.check_arrays(x, y, dydx, None, None, what="validation_data ")
    if train.get("directions") is not None and arrays["dy"] is not None:
      raise ValueError("With directions, validation_data is (x, y); or use validation_split.")
    n = train["x"].shape[1]
    if arrays["x"].shape[1] != n or arrays["y"].shape[1] != train["y"].shape[1]:
      raise ValueError(f"validation_data has x {arrays['x'].shape} and y {arrays['y'].shape}; "
                       f"the training data have {n} features and {train['y'].shape[1]} outputs.")
    return arrays

  def _weights(self, n_out: int, n_in: int) -> loop.Weights:
    b = self.balance_
    partial = (np.ones((n_out, n_in)) if b is None else
               np.broadcast_to(b.partial_weights, (n_out, n_in))).astype(np.float32)
    value = 1.0 if b is None else b.value_weight
    derivative = float(self.derivative_weight) * (1.0 if b is None else b.derivative_weight)
    return loop.Weights(*(tf.constant(v, tf.float32) for v in (value, derivative, partial,
                                                           float(self.l2))))

  def _train(self, trainer: loop.Trainer, initial, data: loop.Data, val: Optional[loop.Data],
             weights: loop.Weights, rates: np.ndarray, batch_size: int, jit: bool,
             fingerprint: str) -> None:
    """The epochs loop: chunks of epochs per compiled call, progress, checkpoints."""
    start_time = time.perf_counter()
    show = self._show_progress()
    history = {"loss": [], "val_loss": []}
    with trainer.lock:
      trainer.reset(initial)
      checkpointer = None
      if self._execution().checkpoint_dir:
        checkpointer, history = self._checkpointing(trainer, fingerprint, initial, history)
      epoch = int(trainer.epoch.numpy())
      progress = loggers.Progress(self.epochs, "SobolevRegressor", unit="epoch", initial=epoch,
                                  enabled=show)
      chunk, first_call = 1, True
      while epoch < self.epochs:
        count = min(chunk, self.epochs - epoch, loop.max_epochs_per_call(data.size))
        t0 = time.perf_counter()
        out = trainer.run_epochs(data, val, weights, rates, self.seed, epoch, count, batch_size,
                                 self.shuffle, self.early_stopping or 0, jit)
        ran = out["epochs"]
        history["loss"] += out["loss"].tolist()
        history["val_loss"] += out.get("val_loss", np.zeros(0)).tolist()
        epoch += ran
        seconds = time.perf_counter() - t0
        # About half a second a call (after the first, which traces): progress stays
        # live and Python is paid once per many epochs.
        if not first_call and ran:
          chunk = int(np.clip(0.5 * ran / max(seconds, 1e-6), 1, self.epochs))
        first_call = False
        postfix = f"loss {history['loss'][-1]:.4g}" if history["loss"] else ""
        if history["val_loss"]:
          postfix += f", val_loss {history['val_loss'][-1]:.4g}"
        progress.update(epoch, postfix)
        if checkpointer:
          checkpointer.maybe_save(epoch, force=epoch >= self.epochs or ran < count)
        if ran < count:  # Early stopping.
          break
      progress.close()
      self.best_epoch_ = None
      if self.early_stopping is not None:
        best_epoch = int(trainer.best_epoch.numpy())
        if best_epoch >= 0:
          self.best_epoch_ = best_epoch + 1
          trainer.restore_best()
        else:
          _warn_never_improved()
      self.coefs_ = trainer.network.get_weights()
    self._finish(trainer, data.x[:4096].numpy(), epoch, history, start_time)

  def _finish(self, trainer: loop.Trainer, x_sample: np.ndarray, epochs: int, history: dict,
              start_time: float) -> None:
    """The fitted attributes that follow training, and a warning for a dead network."""
    self.n_epochs_ = epochs
    self.history_ = {k: v for k, v in history.items() if v}
    self.fit_seconds_ = time.perf_counter() - start_time
    (values,) = trainer.predict(self.coefs_, x_sample.astype(np.float32), False)
    if not (np.all(np.isfinite(values)) and np.isfinite(history["loss"][-1])):
      warnings.warn(
          "Training diverged: the loss or the fitted network's output is NaN or Inf. Lower the "
          "learning rate, e.g. learning_rate=st.training.one_cycle(0.01).", stacklevel=3)
    elif len(values) > 1 and float(np.max(np.std(values, axis=0))) < 1e-4:
      warnings.warn(
          f"The fitted network's output is constant over the training inputs (its training "
          f"loss ended at {history['loss'][-1]:.3g}): training diverged into saturated units. "
          "Lower the learning rate, e.g. learning_rate=st.training.one_cycle(0.01).", stacklevel=3)

  def _checkpointing(self, trainer: loop.Trainer, fingerprint: str, initial, history: dict):
    execution = self._execution()
    directory = execution.checkpoint_dir
    manager = tf.train.CheckpointManager(trainer.checkpoint(), directory, max_to_keep=1)
    hint = f"Delete {directory} to start again, or use another checkpoint_dir."
    params = {k: v for k, v in self.get_params().items()
              if k not in ("execution", "verbose", "network")}
    # The network by its architecture and initial weights (a builder's repr names an address).
    record = dict(_json_params(params), data=fingerprint,
                  network=json.dumps(networks.architecture(self.network_spec_)),
                  initial_weights=data_lib.digest(initial),
                  jit_compile=repr(execution.jit_compile))
    history_path = os.path.join(directory, "history.json")
    resuming = manager.latest_checkpoint is not None
    training.check_same_config(os.path.join(directory, "fit_config.json"), record,
                               resuming=resuming, hint=hint)
    if resuming:
      training.restore_checkpoint(trainer.checkpoint(), manager.latest_checkpoint, hint)
      done = int(trainer.epoch.numpy())
      saved = files.read_json(history_path, hint)
      if len(saved.get("loss", [])) < done:
        raise ValueError(f"{history_path} holds {len(saved.get('loss', []))} epochs but the "
                         f"checkpoint is at epoch {done}. {hint}")
      history = {k: list(saved.get(k, []))[:done] for k in history}

    def save(epoch):
      files.write_text_atomic(history_path, json.dumps(history))
      manager.save(checkpoint_number=epoch)

    return training.PeriodicCheckpointer(save, execution.checkpoint_minutes), history

  # -- predictions ----------------------------------------------------------------------

  def _predict_scaled(self, x, with_derivatives: bool):
    self._check_fitted()
    x = data_lib.as_float_array(x, "x")
    if x.ndim != 2 or x.shape[1] != self.n_features_in_:
      raise ValueError(f"x has shape {x.shape}; this model was fitted on "
                       f"[examples, {self.n_features_in_}] inputs.")
    data_lib.check_finite(x, "x")
    strategy = tf.distribute.get_strategy()  # Prediction runs on one replica.
    trainer = self._trainer(self.network_spec_, strategy)
    return trainer.predict(self.coefs_, self.scaler_.transform(x=x).astype(np.float32),
                           with_derivatives)

  def predict(self, x) -> np.ndarray:
    """Values at ``x [B, n]`` in the data's units: ``[B]`` (if ``y`` was) or ``[B, out]``."""
    (values,) = self._predict_scaled(x, with_derivatives=False)
    values = self.scaler_.inverse_transform(y=values.astype(np.float64))
    return values[:, 0] if self.y_is_1d_ else values

  def predict_derivatives(self, x) -> np.ndarray:
    """Input derivatives at ``x``: ``[B, n]`` (one output given as ``[m]``) or ``[B, out, n]``."""
    return self.predict_with_derivatives(x)[1]

  def predict_with_derivatives(self, x):
    """``(predict(x), predict_derivatives(x))`` from one pass."""
    values, jacobians = self._predict_scaled(x, with_derivatives=True)
    values, jacobians = self.scaler_.inverse_transform(y=values.astype(np.float64),
                                                       dy=jacobians.astype(np.float64))
    if self.y_is_1d_:
      return values[:, 0], jacobians[:, 0]
    return values, jacobians

  # -- export, save, load ---------------------------------------------------------------

  def surrogate(self) -> tf.Module:
    """The fitted network in the data's units, ``[B, n] -> [B]`` (or ``[B, out]``): a
    ``tf.Module`` to differentiate or export."""
    return _Surrogate(self.scaler_.in_original_units(self.network_), self.y_is_1d_)

  def export(self, path: str) -> str:
    """A SavedModel serving values and derivatives (``export_with_derivatives``), loadable by
    plain TensorFlow: ``tf.saved_model.load(path).signatures["serving_default"](x=x)``."""
    self._check_fitted()
    return serving.export_with_derivatives(
        self.surrogate(), path, tf.TensorSpec([None, self.n_features_in_], tf.float32))

  def save(self, path: str) -> str:
    """Writes the fitted estimator to the directory ``path`` (``SobolevRegressor.load``).

    It holds ``estimator.json`` (parameters, scaler, weights of the loss, history)
    and ``network.keras``. Parameters that are not plain values (a ``network``
    builder or model, a ``strategy``, a schedule other than the library's) are
    not saved: the loaded estimator has their defaults, and its fitted network.
    """
    self._check_fitted()
    params, unsaved = _json_params(self.get_params(), with_unsaved=True)
    state = dict(
        format=_SAVE_FORMAT, params=params, unsaved_params=unsaved,
        scaler={k: np.asarray(getattr(self.scaler_, k)).tolist()
                for k in ("x_offset", "x_scale", "y_offset", "y_scale")},
        balance=None if self.balance_ is None else self.balance_.get_config(),
        n_features_in=self.n_features_in_, n_outputs=self.n_outputs_, y_is_1d=self.y_is_1d_,
        network_spec=list(self.network_spec_), history=self.history_,
        n_epochs=self.n_epochs_, best_epoch=self.best_epoch_)
    network = self.network_

    def write(directory):
      keras.saving.save_model(network, os.path.join(directory, "network.keras"))
      files.write_text_atomic(os.path.join(directory, "estimator.json"),
                              json.dumps(state, indent=1))

    # The names alone do not make a directory ours: an estimator.json must be this format's.
    files.check_file_destination(os.path.join(path.rstrip("/"), "estimator.json"),
                                 _SAVED_START, "a saved SobolevRegressor's estimator.json")
    return files.write_directory_atomic(path, write, _SAVED_ENTRIES, "a saved SobolevRegressor")

  @classmethod
  def load(cls, path: str) -> "SobolevRegressor":
    """The estimator ``save`` wrote to ``path``."""
    path = files.directory_to_read(path)
    state_path = os.path.join(path, "estimator.json")
    state = files.read_json(state_path, f"{path} is not a saved SobolevRegressor: write one "
                            "with SobolevRegressor.save(path).")
    if state.get("format") != _SAVE_FORMAT:
      raise ValueError(f"{state_path} has format {state.get('format')!r}, not {_SAVE_FORMAT!r}.")
    estimator = cls(**_params_from_json(state["params"]))
    network = keras_model.load_model(os.path.join(path, "network.keras"), compile=False)
    scaler = scaling.SobolevScaler()
    for k, v in state["scaler"].items():
      setattr(scaler, k, np.asarray(v, np.float64))
    estimator.scaler_ = scaler
    estimator.balance_ = scaling.DerivativeBalance.from_config(state["balance"])
    estimator.n_features_in_ = state["n_features_in"]
    estimator.n_outputs_ = state["n_outputs"]
    estimator.y_is_1d_ = state["y_is_1d"]
    spec = state["network_spec"]
    estimator.network_spec_ = ((spec[0], spec[1], spec[2], tuple(spec[3]), spec[4])
                               if spec[0] == "mlp" else tuple(spec))
    estimator.history_ = state["history"]
    estimator.n_epochs_ = state["n_epochs"]
    estimator.best_epoch_ = state["best_epoch"]
    estimator.coefs_ = network.get_weights()
    return estimator


_SAVE_FORMAT = "sobolev_tf.SobolevRegressor/1"
_SAVED_START = '{\n "format": "sobolev_tf.SobolevRegressor/'  # How save's estimator.json starts.
_SAVED_ENTRIES = ("estimator.json", "network.keras")


def _warn_never_improved() -> None:
  warnings.warn("early_stopping: the validation loss never improved on its first value (it is "
                "NaN or Inf, or grows from the start): the last epoch's weights are kept.",
                stacklevel=4)


class _Surrogate(tf.Module):
  """A network in original units; one output given as ``[m]`` is served as ``[B]``."""

  def __init__(self, model: tf.Module, squeeze: bool):
    super().__init__(name="sobolev_surrogate")
    self.model = model
    self.squeeze = squeeze

  def __call__(self, x):
    y = self.model(x)
    return y[:, 0] if self.squeeze else y


_SCHEDULES = {"PiecewiseLinear": training.PiecewiseLinear, "CosineDecay": training.CosineDecay}


def _json_params(params: dict, with_unsaved: bool = False):
  """The parameters as JSON values; schedules by name and fields. Others are unsaved."""
  out, unsaved = {}, []
  for k, v in params.items():
    if type(v).__name__ in _SCHEDULES and isinstance(v, tuple(_SCHEDULES.values())):
      out[k] = {"schedule": type(v).__name__, "fields": dataclasses.asdict(v)}
      continue
    try:
      json.dumps(v)
      out[k] = list(v) if isinstance(v, tuple) else v
    except (TypeError, ValueError):
      # A record compares runs: by type and name, as a repr would name a memory address.
      name = getattr(v, "__qualname__", type(v).__qualname__)
      out[k] = None if with_unsaved else f"{type(v).__module__}.{name}"
      unsaved.append(k)
  return (out, unsaved) if with_unsaved else out


def _params_from_json(params: dict) -> dict:
  out = {}
  for k, v in params.items():
    if isinstance(v, dict) and "schedule" in v:
      fields = v["fields"]
      if "points" in fields:
        fields = dict(fields, points=tuple(tuple(p) for p in fields["points"]))
      v = _SCHEDULES[v["schedule"]](**fields)
    elif k == "hidden_layers" and v is not None:
      v = tuple(v)
    if v is None and k in ("network", "execution", "learning_rate"):
      continue  # Not saved: the constructor's default.
    out[k] = v
  return out

"""The estimator's networks: the default MLP, its initial weights, and architecture keys."""

from __future__ import annotations

import json
import math
import warnings
from typing import Callable, Optional, Sequence, Tuple

import keras
import numpy as np
import tensorflow as tf

from sobolev_tf import derivatives

__all__ = ["ACTIVATIONS", "default_batch_size", "mlp_weights", "mlp", "network_spec",
           "architecture", "build", "dense_value_and_jacobian"]

ACTIVATIONS = ("softplus", "tanh", "relu", "sigmoid", "gelu", "swish", "elu", "linear")


def default_batch_size(num_examples: int) -> int:
  """Huge & Savine's batch: ``max(256, m // 16)`` examples (16 batches an epoch), at most ``m``."""
  return min(max(256, num_examples // 16), num_examples)


def mlp_weights(input_dim: int, output_dim: int, hidden_layers: Sequence[int] = (20, 20, 20, 20),
                seed: int = 0) -> list:
  """Initial ``[kernel, bias, ...]`` of ``mlp``: LeCun's truncated normal, zero biases.

  Kernels are normal with standard deviation ``sqrt(1 / fan_in) / 0.8796`` cut at
  two standard deviations (variance ``1 / fan_in`` after the cut): TensorFlow 1's
  ``variance_scaling_initializer``, which Huge & Savine's notebook uses, and
  Keras' ``LecunNormal``. Drawn with NumPy from ``seed``.
  """
  rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x50B0]))
  sizes = [int(input_dim)] + [int(h) for h in hidden_layers] + [int(output_dim)]
  weights = []
  for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
    std = math.sqrt(1.0 / fan_in) / 0.87962566103423978
    draws = rng.standard_normal((fan_in, fan_out))
    while np.any(np.abs(draws) > 2):  # Redraw outside two standard deviations.
      out = np.abs(draws) > 2
      draws[out] = rng.standard_normal(int(out.sum()))
    weights += [(draws * std).astype(np.float32), np.zeros(fan_out, np.float32)]
  return weights


def mlp(input_dim: int, output_dim: int, hidden_layers: Sequence[int] = (20, 20, 20, 20),
        activation: str = "softplus", seed: int = 0) -> keras.Sequential:
  """The default network: dense hidden layers, a linear output, ``mlp_weights(seed)``."""
  layers = [keras.Input((int(input_dim),))]
  for i, width in enumerate(list(hidden_layers) + [output_dim]):
    last = i == len(hidden_layers)
    layers.append(keras.layers.Dense(int(width), activation=None if last else activation,
                                     name="output" if last else f"hidden_{i}"))
  model = keras.Sequential(layers, name="sobolev_mlp")
  model.set_weights(mlp_weights(input_dim, output_dim, hidden_layers, seed))
  return model


def network_spec(network, hidden_layers: Sequence[int], activation: str, seed: int,
                 n_in: int, n_out: int, sample: Optional[np.ndarray] = None) -> tuple:
  """``(spec, initial weights)`` of a fit: ``spec`` rebuilds the architecture (``build``) and
  keys its cached trainer; the weights are the fit's starting point.

  ``network``: None (``mlp``), a Keras model (its weights) or a builder
  ``network(n_in, n_out, seed)``. A given network that mixes the examples of
  ``sample`` (a few scaled inputs) in training mode gets a warning.
  """
  if network is None:
    hidden = tuple(int(h) for h in hidden_layers)
    return (("mlp", n_in, n_out, hidden, activation),
            mlp_weights(n_in, n_out, hidden, seed))
  template = network if isinstance(network, keras.Model) else network(
      n_in, n_out, seed)
  if not isinstance(template, keras.Model):
    raise ValueError(f"network(n_in, n_out, seed) must return a Keras model, got "
                     f"{type(template).__name__}.")
  try:
    config = keras.saving.serialize_keras_object(template)
    json.dumps(config)
  except (NotImplementedError, TypeError, ValueError) as e:
    raise ValueError("network must be a Keras model that can be rebuilt from its config "
                     "(Sequential, functional, or a subclass with get_config/from_config): "
                     f"{e}") from e
  probe = template(np.zeros((2, n_in), np.float32))
  if tuple(probe.shape) != (2, n_out):
    raise ValueError(f"network maps [B, {n_in}] inputs to {tuple(probe.shape[1:])} outputs per "
                     f"example; the data need [B, {n_out}].")
  if sample is not None and derivatives.mixed_examples(
      lambda z: template(z, training=True), tf.constant(sample, tf.float32)):
    warnings.warn("network mixes the examples of a batch in training mode (BatchNorm, or "
                  "x - mean(x)): per-example input derivatives, taken from the batch sum, are "
                  "wrong for it. Use per-example normalisation (LayerNormalization) or none.",
                  stacklevel=3)
  return ("keras", json.dumps(config, sort_keys=True)), template.get_weights()


def architecture(spec: tuple) -> tuple:
  """``spec`` without layer and model names (Keras numbers them per instance) and
  initializer seeds: two copies of one architecture share a trainer."""
  if spec[0] != "keras":
    return spec

  def strip(value):
    if isinstance(value, dict):  # Initializer seeds change the weights, not the graph.
      return {k: strip(v) for k, v in value.items() if k not in ("name", "seed")}
    if isinstance(value, list):
      return [strip(v) for v in value]
    return value

  return ("keras", json.dumps(strip(json.loads(spec[1])), sort_keys=True))


def build(spec: tuple) -> keras.Model:
  if spec[0] == "mlp":
    _, n_in, n_out, hidden, activation = spec
    return mlp(n_in, n_out, hidden, activation)
  return keras.saving.deserialize_keras_object(json.loads(spec[1]))


# The slope f'(z) of each activation, from its input z and output a = f(z).
_SLOPES = {
    "softplus": lambda z, a: tf.sigmoid(z),
    "tanh": lambda z, a: 1.0 - tf.square(a),
    "sigmoid": lambda z, a: a * (1.0 - a),
    "relu": lambda z, a: tf.cast(z > 0, z.dtype),
    "linear": lambda z, a: tf.ones_like(z),
}


def dense_value_and_jacobian(
    network: keras.Model) -> Optional[Callable[[tf.Tensor], Tuple[tf.Tensor, tf.Tensor]]]:
  """``x -> (values [B, 1], input gradients [B, 1, n])`` of a stack of Dense layers with
  one output, by explicit back-propagation; None for any other network.

  Huge & Savine's "twin network": with ``z_l = h_{l-1} W_l + b_l`` and
  ``h_l = f_l(z_l)``, the gradient of the output is ``g_{l-1} = (g_l * f_l'(z_l))
  W_l^T`` from ``g_L = 1``. Written out, the gradient's own graph (the second
  derivative that Sobolev training back-propagates) has fewer and larger kernels
  than nested ``tf.GradientTape``s give: the default MLP's step compiles faster and
  runs faster under XLA. Other networks use ``derivatives.derivative_tensors``.
  """
  if not isinstance(network, keras.Sequential):
    return None
  layers = list(network.layers)
  names = []
  for layer in layers:
    if type(layer) is not keras.layers.Dense:  # pylint: disable=unidiomatic-typecheck
      return None
    name = keras.activations.serialize(layer.activation)
    name = name if isinstance(name, str) else name.get("config", {}).get("name", name)
    if name not in _SLOPES:
      return None
    names.append(name)
  if not layers or layers[-1].units != 1:
    return None

  def value_and_jacobian(x):
    h, slopes = x, []
    for layer, name in zip(layers, names):
      z = tf.matmul(h, layer.kernel)
      if layer.use_bias:
        z = z + layer.bias
      h = layer.activation(z)
      slopes.append(_SLOPES[name](z, h))
    g = slopes[-1]  # [B, 1]
    for l in range(len(layers) - 1, -1, -1):
      g = tf.matmul(g, layers[l].kernel, transpose_b=True)
      if l:
        g = g * slopes[l - 1]
    return h, g[:, None, :]

  return value_and_jacobian

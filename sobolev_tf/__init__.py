"""sobolev-tf: Sobolev Training for Neural Networks (Czarnecki et al., 2017) in TF2.

Public API, re-exported explicitly (Sonnet style).
"""

# First: TensorFlow without its C++ start-up lines (tf_startup explains).
from sobolev_tf import tf_startup as _tf_startup
_tf_startup.import_tensorflow()

from sobolev_tf.checks import check_finite
from sobolev_tf.derivatives import batch_jacobian
from sobolev_tf.derivatives import derivative_tensors
from sobolev_tf.derivatives import directional_derivative
from sobolev_tf.derivatives import forward_mode_for_jit
from sobolev_tf.derivatives import hessian
from sobolev_tf.derivatives import jvp
from sobolev_tf.derivatives import mixed_examples
from sobolev_tf.derivatives import projected_derivative
from sobolev_tf.derivatives import random_unit_vectors
from sobolev_tf.derivatives import value_and_gradient
from sobolev_tf.estimator import SobolevRegressor
from sobolev_tf.derivatives import vjp
from sobolev_tf.keras_model import load_model
from sobolev_tf.keras_model import SobolevModel
from sobolev_tf.losses import categorical_kl_from_log_probs
from sobolev_tf.losses import DERIVATIVE_LOSSES
from sobolev_tf.losses import finite_difference_derivatives
from sobolev_tf.losses import l1
from sobolev_tf.losses import l2_norm
from sobolev_tf.losses import sobolev_loss
from sobolev_tf.losses import sobolev_terms
from sobolev_tf.losses import SobolevTargets
from sobolev_tf.losses import squared_l2
from sobolev_tf.scaling import DerivativeBalance
from sobolev_tf.scaling import SobolevScaler
from sobolev_tf.serving import export_with_derivatives
from sobolev_tf.training import fit_full_batch
from sobolev_tf.training import multi_step

__version__ = "0.2.0"

# Names that moved in 0.2.0, with where they are now: an error that says so.
_MOVED = {
    "regression_mlp": "sobolev_tf.regression.regression_mlp",
    "AtariTeacher": "sobolev_tf.atari.networks.AtariTeacher",
    "AtariStudent": "sobolev_tf.atari.networks.AtariStudent",
    "StridedConv2D": "sobolev_tf.atari.networks.StridedConv2D",
    "squared_error": "sobolev_tf.squared_l2 (the same function)",
}


def __getattr__(name):
  if name in _MOVED:
    raise AttributeError(f"sobolev_tf.{name} moved in 0.2.0: use {_MOVED[name]}.")
  raise AttributeError(f"module 'sobolev_tf' has no attribute {name!r}")

__all__ = [
    "DERIVATIVE_LOSSES", "DerivativeBalance", "SobolevModel", "SobolevRegressor",
    "SobolevScaler", "SobolevTargets", "batch_jacobian", "categorical_kl_from_log_probs",
    "check_finite", "derivative_tensors", "directional_derivative", "export_with_derivatives",
    "finite_difference_derivatives", "fit_full_batch", "forward_mode_for_jit", "hessian", "jvp",
    "l1", "l2_norm", "load_model", "mixed_examples", "multi_step", "projected_derivative",
    "random_unit_vectors",
    "sobolev_loss", "sobolev_terms", "squared_l2",
    "value_and_gradient", "vjp",
]

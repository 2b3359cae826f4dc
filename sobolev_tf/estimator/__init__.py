"""``SobolevRegressor``: fit a surrogate on values and input derivatives in one call.

    import sobolev_tf as st
    model = st.SobolevRegressor().fit(x, y, dydx)          # x [m, n], y [m], dydx [m, n]
    price, delta = model.predict(x_new), model.predict_derivatives(x_new)
    model.export("surrogate")                              # SavedModel: values and derivatives

A scikit-learn estimator (constructor hyper-parameters, ``fit`` returns self,
``get_params``/``set_params``, ``score`` as R^2) for the users of differential
machine learning (Huge & Savine, 2020) and gradient-enhanced surrogates (JENN).
Its defaults are Huge & Savine's training setup, which their notebook and paper
show to work on Monte-Carlo payoffs and pathwise derivatives:

* inputs and values standardised, derivatives rescaled by the chain rule
  (``SobolevScaler``);
* the loss ``alpha MSE(y) + beta mean_j lambda_j^2 MSE(dy_j)`` with
  ``lambda_j = 1 / rms`` of the scaled partial j, ``alpha = 1 / (1 + lam n)``,
  ``beta = 1 - alpha`` (``DerivativeBalance``; eq. 1 of Czarnecki et al. 2017 with
  these weights);
* 4 hidden softplus layers of 20 units (a smooth activation: the loss differentiates
  the network's input gradient again);
* Adam for 100 epochs under their one-cycle schedule (``training.one_cycle``),
  batches of ``max(256, m // 16)`` examples.

Training runs as compiled loops in the graph: the data stay resident, each epoch's
batches are gathered by index from a permutation drawn from ``(seed, epoch)``, and
one call runs many epochs (``_Trainer``). Networks of the same architecture share
one traced loop across fits (seeds, grid cells, cross-validation folds), so
repeated fits pay tracing once. Data larger than memory can be given as a
``tf.data.Dataset`` of ``(x, y[, dydx])`` batches instead.
"""

from sobolev_tf.estimator.loop import clear_cache
from sobolev_tf.estimator.networks import default_batch_size
from sobolev_tf.estimator.networks import mlp
from sobolev_tf.estimator.networks import mlp_weights
from sobolev_tf.estimator.regressor import Execution
from sobolev_tf.estimator.regressor import SobolevRegressor

__all__ = ["Execution", "SobolevRegressor", "clear_cache", "default_batch_size", "mlp", "mlp_weights"]

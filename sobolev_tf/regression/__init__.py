"""Section 4.1: regression on the seven optimisation benchmarks."""

from sobolev_tf.regression.functions import BenchmarkFunction
from sobolev_tf.regression.functions import FUNCTIONS
from sobolev_tf.regression.functions import get_function
from sobolev_tf.regression.functions import sample_uniform
from sobolev_tf.regression.networks import regression_mlp

__all__ = ["BenchmarkFunction", "FUNCTIONS", "get_function", "regression_mlp", "sample_uniform"]

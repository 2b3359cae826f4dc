"""Sobolev-vs-regular demo on Styblinski-Tang (section 4.1, Figure 3), CPU scale, 100 points.

Not the paper's setting (configs/regression.py reproduces that): learning rate 1e-3 instead of
the paper's 3e-5 so that both methods converge in 5,000 full-batch steps.
Override any field: ``--config.num_train=100``.
"""

import ml_collections


def get_config(variant: str = "default") -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.num_train = 100         # Paper: 20, 100 and 10,000 points.
  config.num_test = 10_000       # Paper: 10,000 uniform test points.
  config.hidden_sizes = (256, 256)  # Paper: two hidden layers of 256 ReLU units.
  config.learning_rate = 1e-3    # Paper: 3e-5 (needs far more steps).
  config.num_steps = 5_000
  config.steps_per_call = 500
  config.seeds = (0, 1, 2)
  if variant == "quick":
    config.num_test = 1_000
    config.hidden_sizes = (32, 32)
    config.num_steps = 200
    config.steps_per_call = 100
    config.seeds = (0,)
  elif variant != "default":
    raise ValueError(f"Unknown demo config variant {variant!r}: default or quick.")
  return config

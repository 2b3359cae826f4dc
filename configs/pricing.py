"""Pricing surrogates: Huge & Savine's differential machine learning results, with seeds.

    python scripts/pricing.py                                   # about 3 minutes on 2 cores
    python scripts/pricing.py --config=configs/pricing.py:curve      # learning curve, n = 7
    python scripts/pricing.py --config=configs/pricing.py:dimension  # n = 50, 100
    python scripts/pricing.py --config=configs/pricing.py:large      # to 8M paths (big machines)

Variants (each writes its part of ``results/pricing/`` and resumes from its workdir):

* ``default``: the cells of Huge & Savine's published table (their notebook's
  outputs: Black-Scholes and Bachelier n = 1 at 1,024 and 8,192 paths, Bachelier
  n = 7 and 20 at 4,096, 8,192 and 16,384), standard against differential
  training, 5 seeds each; plots in their style; the exported n = 7, m = 8,192
  surrogate.
* ``curve``: Bachelier n = 7 from 1,024 to 2^20 paths, standard and differential,
  5 seeds, with the Monte-Carlo noise of the labels.
* ``dimension``: Bachelier n = 50 and 100 at equal numbers of paths, standard,
  differential (full gradients) and directional (one directional derivative per
  path) training, 5 seeds.
* ``dimension_peak_0_01``: the dimension study with their schedule at a tenth of its peak
  rate (0.01), in ``results/pricing/dimension_peak_0_01/``: at 50 and 100 inputs and 65,536
  paths the peak of 0.1 kills some differential runs (their output turns constant).
* ``seeds20``: the published table again with 20 seeds, in ``results/pricing/seeds20/``:
  where a published figure lies outside the range of 5 seeds, is it one draw among many?
* ``large``: the curve to 2^23 (8M) paths, their paper's largest set.
* ``quick``: a few cells in seconds (the tests).

The estimator is ``SobolevRegressor`` with its defaults, which are Huge & Savine's
training setup: 4 x 20 softplus, standardisation, their loss weights, Adam for
100 epochs of their one-cycle schedule, batches of max(256, m // 16).
"""

import ml_collections

SEEDS = (0, 1, 2, 3, 4)
# (model, n, sizes): the cells of their published table.
TABLE = (("black_scholes", 1, (1024, 8192)), ("bachelier", 1, (1024, 8192)),
         ("bachelier", 7, (4096, 8192, 16384)), ("bachelier", 20, (4096, 8192, 16384)))


def get_config(variant: str = "default") -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.parts = ("table",)               # table, curve, dimension
  config.table = TABLE
  config.curve = ml_collections.ConfigDict(dict(
      n=7, sizes=tuple(2**k for k in range(10, 21)), methods=("standard", "differential")))
  config.dimension = ml_collections.ConfigDict(dict(
      dims=(50, 100), sizes=(4096, 16384, 65536),
      methods=("standard", "differential", "directional")))
  config.seeds = SEEDS
  config.num_test = 4096                  # Huge & Savine: 4,096 basket scenarios (Black-
                                          # Scholes: always their grid of 100 spots).
  # SobolevRegressor's arguments (its defaults are Huge & Savine's setup), and optionally
  # one_cycle_peak: their schedule's peak rate (0.1).
  config.estimator = ml_collections.ConfigDict(dict(epochs=100))
  config.plot_cases = (("black_scholes", 1, 1024), ("bachelier", 7, 4096))
  config.export = ml_collections.ConfigDict(dict(model="bachelier", n=7, m=8192, seed=0))
  config.checkpoint_minutes = 2.0
  config.workdir = "workdirs/pricing"
  config.results_dir = "results/pricing"

  if variant == "curve":
    config.parts = ("curve",)
  elif variant == "dimension":
    config.parts = ("dimension",)
  elif variant == "dimension_peak_0_01":
    config.parts = ("dimension",)
    config.estimator.one_cycle_peak = 0.01
    config.plot_cases = ()
    config.export = None
    config.workdir = "workdirs/pricing_dimension_peak_0_01"
    config.results_dir = "results/pricing/dimension_peak_0_01"
  elif variant == "seeds20":
    config.seeds = tuple(range(20))
    config.plot_cases = ()
    config.export = None                  # The default's surrogate is the one shipped.
    config.workdir = "workdirs/pricing_seeds20"
    config.results_dir = "results/pricing/seeds20"
  elif variant == "large":
    config.parts = ("curve",)
    config.curve.sizes = tuple(2**k for k in range(10, 24))
    config.workdir = "workdirs/pricing_large"
    config.results_dir = "results/pricing/large"
  elif variant == "quick":
    config.table = (("black_scholes", 1, (256,)), ("bachelier", 3, (256,)))
    config.curve.n, config.curve.sizes = 3, (256, 512)
    config.dimension.dims, config.dimension.sizes = (5,), (256,)
    config.parts = ("table", "curve", "dimension")
    config.seeds = (0, 1)
    config.num_test = 256
    config.estimator.epochs = 4
    config.plot_cases = (("bachelier", 3, 256),)
    config.export = ml_collections.ConfigDict(dict(model="bachelier", n=3, m=256, seed=0))
    config.workdir = "workdirs/pricing_quick"
    config.results_dir = "results/pricing/quick"
  elif variant != "default":
    raise ValueError(f"Unknown pricing config variant {variant!r}: use default, curve, "
                     "dimension, dimension_peak_0_01, seeds20, large or quick.")
  return config

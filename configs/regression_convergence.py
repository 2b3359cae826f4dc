"""Figure 2 trained to convergence: which choices decide Sobolev training's gain.

    python scripts/regression_convergence.py            # about 5.5 h on 2 CPU cores
    python scripts/regression_convergence.py --config=configs/regression_convergence.py:quick

Writes ``results/regression/convergence.{md,csv,png}`` (``--output_dir``); every
setting trains regular and Sobolev (first order) networks on the seven functions
with 5 seeds in ``<workdir>/<setting>`` (resumable), one setting after the other.

Design. Every setting anneals Adam's rate to 0 over its budget (cosine from 1e-3;
the fixed-budget study, ``configs/regression_sensitivity.py``, kept a constant rate),
on the paper's 2x256 network and data, full batch at 20 and 100 points:

* activations: ReLU (the paper's), softplus and tanh, each at 20,000 and 40,000
  steps: a budget that doubles and changes the test error by little is the
  evidence of convergence, with the learning curves (evaluations at 1k-20k);
* factors, each changed alone around softplus at 20,000 steps, paired by seed:
  the schedule (a constant 3e-4, the earlier default; Huge & Savine's one-cycle),
  the derivative weight (0.1, 10), the scale (raw, not standardised) and Huge &
  Savine's balance;
* 10,000 points (minibatches of 100): ReLU, softplus and tanh at 20,000 and 40,000
  steps, ReLU at 80,000 (not converged at 40,000).
"""

import importlib.util
import os

import ml_collections

FUNCTIONS = ("ackley", "beale", "booth", "bukin", "mccormick", "rosenbrock", "styblinski_tang")


def _regression_config(variant: str) -> ml_collections.ConfigDict:
  """``configs/regression.py``, loaded by path (config files are loaded as files, not modules)."""
  spec = importlib.util.spec_from_file_location(
      "regression_config", os.path.join(os.path.dirname(os.path.abspath(__file__)), "regression.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(variant)


def get_config(variant: str = "default") -> ml_collections.ConfigDict:
  if variant not in ("default", "quick"):
    raise ValueError(f"Unknown convergence config variant {variant!r}: use default or quick.")
  base = _regression_config("fixed_budget")
  base.functions = FUNCTIONS
  base.sizes = (20, 100)
  base.seeds = (0, 1, 2, 3, 4)
  base.grid_resolution = 0
  base.lr_schedule = "cosine"
  base.learning_rate = 1e-3
  base.steps_per_call = 1000
  base.eval_steps = (1000, 2000, 5000, 10_000, 20_000)
  config = ml_collections.ConfigDict()
  config.base = base
  k20, k40 = dict(num_steps=20_000), dict(num_steps=40_000)
  ten_thousand = dict(sizes=(10_000,))
  # Overrides of ``base`` per setting (run in the order of ``config.order``).
  config.settings = ml_collections.ConfigDict(dict(
      relu_20k=dict(k20, activation="relu"),
      softplus_20k=dict(k20, activation="softplus"),
      tanh_20k=dict(k20, activation="tanh"),
      relu_40k=dict(k40, activation="relu"),
      softplus_40k=dict(k40, activation="softplus"),
      tanh_40k=dict(k40, activation="tanh"),
      relu_10000pts_20k=dict(k20, **ten_thousand, activation="relu"),
      softplus_10000pts_20k=dict(k20, **ten_thousand, activation="softplus"),
      softplus_constant_20k=dict(k20, activation="softplus", lr_schedule="constant",
                                 learning_rate=3e-4),
      softplus_one_cycle_20k=dict(k20, activation="softplus", lr_schedule="one_cycle",
                                  learning_rate=3e-3),
      softplus_weight_0_1_20k=dict(k20, activation="softplus", derivative_weight=0.1),
      softplus_weight_10_20k=dict(k20, activation="softplus", derivative_weight=10.0),
      softplus_raw_20k=dict(k20, activation="softplus", standardize=False),
      softplus_balance_20k=dict(k20, activation="softplus", balance=1.0),
      relu_10000pts_40k=dict(k40, **ten_thousand, activation="relu"),
      softplus_10000pts_40k=dict(k40, **ten_thousand, activation="softplus"),
      tanh_10000pts_20k=dict(k20, **ten_thousand, activation="tanh"),
      tanh_10000pts_40k=dict(k40, **ten_thousand, activation="tanh"),
      relu_10000pts_80k=dict(num_steps=80_000, **ten_thousand, activation="relu",
                             eval_steps=(1000, 2000, 5000, 10_000, 20_000, 40_000)),
  ))
  # The activations and the budget pair of the likely best first; the factors next.
  config.order = ("relu_20k", "softplus_20k", "softplus_40k", "tanh_20k", "relu_40k",
                  "softplus_10000pts_20k", "relu_10000pts_20k", "softplus_constant_20k",
                  "softplus_one_cycle_20k", "softplus_weight_0_1_20k", "softplus_weight_10_20k",
                  "softplus_raw_20k", "softplus_balance_20k", "tanh_40k",
                  "softplus_10000pts_40k", "relu_10000pts_40k", "relu_10000pts_80k",
                  "tanh_10000pts_20k", "tanh_10000pts_40k")
  # Budget pairs: the second doubles the first; a small change is convergence.
  config.budget_pairs = (("relu_20k", "relu_40k"), ("softplus_20k", "softplus_40k"),
                         ("tanh_20k", "tanh_40k"),
                         ("relu_10000pts_20k", "relu_10000pts_40k"),
                         ("softplus_10000pts_20k", "softplus_10000pts_40k"),
                         ("relu_10000pts_40k", "relu_10000pts_80k"),
                         ("tanh_10000pts_20k", "tanh_10000pts_40k"))
  # Factors: each setting against the one it changes, paired by seed and cell.
  config.factors = ml_collections.ConfigDict(dict(
      softplus_20k="relu_20k", tanh_20k="relu_20k",
      softplus_constant_20k="softplus_20k", softplus_one_cycle_20k="softplus_20k",
      softplus_weight_0_1_20k="softplus_20k", softplus_weight_10_20k="softplus_20k",
      softplus_raw_20k="softplus_20k", softplus_balance_20k="softplus_20k",
      softplus_40k="relu_40k", tanh_40k="relu_40k",
      softplus_10000pts_20k="relu_10000pts_20k", softplus_10000pts_40k="relu_10000pts_40k",
      tanh_10000pts_20k="relu_10000pts_20k", tanh_10000pts_40k="relu_10000pts_40k"))
  config.workdir = "workdirs/regression_convergence"
  config.results_dir = "results/regression"
  if variant == "quick":
    base.functions = ("booth",)
    base.seeds = (0, 1)
    base.num_test = 500
    base.hidden_sizes = (32, 32)
    base.steps_per_call = 100
    base.eval_steps = (100,)
    base.jit_compile = False
    config.settings = ml_collections.ConfigDict(dict(
        relu_200=dict(num_steps=200, activation="relu", sizes=(20,)),
        softplus_200=dict(num_steps=200, activation="softplus", sizes=(20,)),
        softplus_400=dict(num_steps=400, activation="softplus", sizes=(20,)),
        softplus_weight_10_200=dict(num_steps=200, activation="softplus", sizes=(20,),
                                    derivative_weight=10.0)))
    config.order = ("relu_200", "softplus_200", "softplus_400", "softplus_weight_10_200")
    config.budget_pairs = (("softplus_200", "softplus_400"),)
    config.factors = ml_collections.ConfigDict(dict(
        softplus_200="relu_200", softplus_weight_10_200="softplus_200"))
    config.workdir = "workdirs/regression_convergence_quick"
    config.results_dir = "results/regression/convergence_quick"
  return config

"""Figure 2 sensitivity study: which choices decide the size of Sobolev training's gain.

    python scripts/regression_sensitivity.py            # about 100 min on 2 CPU cores
    python scripts/regression_sensitivity.py --config=configs/regression_sensitivity.py:quick

Writes ``results/regression/sensitivity.{md,csv,png}`` (``--output_dir``). Every
setting trains regular and Sobolev (first order) networks on Styblinski-Tang,
Rosenbrock, Booth and Ackley at 20 and 100 points with 3 seeds: 48 stacked
models, in ``<workdir>/<setting>`` (resumable).

Design: one factor at a time around the fixed-budget CPU-scale setting,
``configs/regression.py:fixed_budget`` (standardised data, a constant Adam 3e-4,
ReLU 2x256, derivative weight 1), called ``default`` below, a fractional design instead of the 2 x 3 x 3 x 2 x 2 product, sized by
measured costs on 2 cores (48 models: about 40 s per 1,000 steps at width 256,
about 12 min at width 1024):

* ``default`` to 50,000 steps, evaluated at 1k, 2k, 5k, 10k, 20k and 50k steps:
  the training-length axis (each run records when its test error converged);
* derivative weight 0.1 and 10, softplus and tanh, Huge & Savine balancing: 10,000
  steps each (that setting's budget), against ``default`` at 10,000;
* width 1024: 2,000 steps, against ``default`` at 2,000;
* ``raw``: raw scale (inputs, outputs and derivatives not standardised), otherwise the default,
  10,000 steps;
* ``paper_text``: the setting the paper's text describes (raw scale, Adam 3e-5,
  ReLU 2x256, first order) to 50,000 steps; ``results/regression/paper/`` has it
  to 200,000 steps with 2 seeds.
"""

import importlib.util
import os

import ml_collections

FUNCTIONS = ("styblinski_tang", "rosenbrock", "booth", "ackley")


def _regression_config(variant: str) -> ml_collections.ConfigDict:
  """``configs/regression.py``, loaded by path (config files are loaded as files, not modules)."""
  spec = importlib.util.spec_from_file_location(
      "regression_config", os.path.join(os.path.dirname(os.path.abspath(__file__)), "regression.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(variant)


def get_config(variant: str = "default") -> ml_collections.ConfigDict:
  if variant not in ("default", "quick"):
    raise ValueError(f"Unknown sensitivity config variant {variant!r}: use default or quick.")
  base = _regression_config("fixed_budget")
  base.functions = FUNCTIONS
  base.sizes = (20, 100)
  base.seeds = (0, 1, 2)
  base.grid_resolution = 0
  base.steps_per_call = 1000
  base.eval_steps = (1000, 2000, 5000, 10_000, 20_000)
  config = ml_collections.ConfigDict()
  config.base = base
  # Overrides of ``base`` per setting; ``num_steps`` is each one's budget.
  config.settings = ml_collections.ConfigDict(dict(
      default=dict(num_steps=50_000),
      weight_0_1=dict(num_steps=10_000, derivative_weight=0.1),
      weight_10=dict(num_steps=10_000, derivative_weight=10.0),
      softplus=dict(num_steps=10_000, activation="softplus"),
      tanh=dict(num_steps=10_000, activation="tanh"),
      balance=dict(num_steps=10_000, balance=1.0),
      width_1024=dict(num_steps=2000, hidden_sizes=(1024, 1024)),
      paper_text=dict(num_steps=50_000, standardize=False, learning_rate=3e-5),
      raw=dict(num_steps=10_000, standardize=False),
  ))
  config.reference = "default"     # Compared with every setting at that setting's budget.
  # Reported at each of their evaluations (the training-length axis).
  config.length_settings = ("default", "paper_text")
  config.paper_setting = "paper_text"
  config.workdir = "workdirs/regression_sensitivity"
  config.results_dir = "results/regression"
  if variant == "quick":
    base.functions = ("booth",)
    base.sizes = (20,)
    base.seeds = (0, 1)
    base.num_test = 500
    base.hidden_sizes = (32, 32)
    base.steps_per_call = 100
    base.eval_steps = (100, 200)
    base.jit_compile = False
    config.settings = ml_collections.ConfigDict(dict(
        default=dict(num_steps=400), tanh=dict(num_steps=200, activation="tanh"),
        paper_text=dict(num_steps=200, standardize=False, learning_rate=3e-5)))
    config.workdir = "workdirs/regression_sensitivity_quick"
    config.results_dir = "results/regression/sensitivity_quick"
  return config

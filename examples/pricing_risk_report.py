r"""A short risk report from the exported basket surrogate, with plain TensorFlow.

    python examples/pricing_risk_report.py > results/pricing/risk_report.md

Loads ``results/pricing/surrogate`` (a SavedModel written by ``scripts/pricing.py``:
Bachelier basket, 7 assets, differential training on 8,192 paths) with
``tf.saved_model.load`` alone (no ``sobolev_tf``), and prices a ladder of
scenarios (all spots moved together by -20% .. +20%) with their deltas, beside
the analytic Bachelier price and deltas of the market in ``surrogate_market.json``.
"""

import argparse
import json
import math
import os

import numpy as np
from scipy import stats
import tensorflow as tf

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT = os.path.join(HERE, "..", "results", "pricing")


def analytic(spots: np.ndarray, market: dict):
  """Bachelier price and deltas of the basket call (zero rates)."""
  weights = np.asarray(market["weights"])
  s = market["basket_vol"] * math.sqrt(market["expiry"])
  d = (spots @ weights - market["strike"]) / s
  price = s * (d * stats.norm.cdf(d) + stats.norm.pdf(d))
  return price, stats.norm.cdf(d)[:, None] * weights[None, :]


def report(directory: str) -> str:
  with open(os.path.join(directory, "surrogate_market.json")) as f:
    market = json.load(f)
  served = tf.saved_model.load(os.path.join(directory, "surrogate"))
  bumps = np.array([-0.2, -0.1, -0.05, 0.0, 0.05, 0.1, 0.2])
  spots = np.ones((len(bumps), market["n"])) * (1.0 + bumps[:, None])
  out = served.signatures["serving_default"](x=tf.constant(spots, tf.float32))
  price, deltas = out["value"].numpy(), out["derivative"].numpy()
  true_price, true_deltas = analytic(spots, market)
  lines = [
      "# Risk report from the exported surrogate", "",
      "Command: `python examples/pricing_risk_report.py > results/pricing/risk_report.md`  ",
      f"Surrogate: `results/pricing/surrogate` (Bachelier basket, {market['n']} assets, "
      f"differential training on {market['m']:,} paths, seed {market['seed']}; test RMSE x 100 "
      f"{market['value_rmse']:.3f} on values, {market['delta_rmse']:.3f} on deltas), loaded "
      "with plain TensorFlow. Analytic: the Bachelier formula of the same market.", "",
      "Prices and deltas x 100 for all spots moved together; delta_j is the change of the price "
      "per unit move of asset j.", "",
      "| move | price | analytic | " + " | ".join(f"delta_{j}" for j in range(market["n"]))
      + " | max abs delta error |",
      "|---:|---:|---:|" + "---:|" * market["n"] + "---:|"]
  for k, bump in enumerate(bumps):
    lines.append(f"| {bump:+.0%} | {100 * price[k]:.3f} | {100 * true_price[k]:.3f} | "
                 + " | ".join(f"{100 * deltas[k, j]:.2f} ({100 * true_deltas[k, j]:.2f})"
                              for j in range(market["n"]))
                 + f" | {100 * np.abs(deltas[k] - true_deltas[k]).max():.3f} |")
  lines += ["", "Deltas: surrogate (analytic)."]
  return "\n".join(lines) + "\n"


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--results", default=DEFAULT, help="Directory with surrogate/ and "
                      "surrogate_market.json (default: results/pricing).")
  args = parser.parse_args()
  for name in ("surrogate", "surrogate_market.json"):
    if not os.path.exists(os.path.join(args.results, name)):
      parser.error(f"{os.path.join(args.results, name)} does not exist: run "
                   "python scripts/pricing.py first.")
  print(report(args.results), end="")


if __name__ == "__main__":
  main()

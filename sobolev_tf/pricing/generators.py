"""Training and test data of differential machine learning (Huge & Savine, 2020).

Each training example is one Monte-Carlo path from a random market state at
``T1`` to an option's expiry ``T2``: its payoff is the value label and its
pathwise derivative with respect to the state at ``T1`` the derivative label.
Both are unbiased, noisy estimates of the price and the delta at that state, so a
network fitted by least squares to many of them learns the pricing function.
Every example averages an antithetic pair (the increment ``+dW`` and ``-dW``).

Written from the description in Huge & Savine's paper (arXiv 2005.02347) and
their notebook's text; the analytic references are the Black-Scholes and
Bachelier formulas with zero rates.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Tuple

import numpy as np
from scipy import stats

__all__ = ["BlackScholes", "BachelierBasket", "black_scholes_price", "black_scholes_delta",
           "bachelier_price", "bachelier_delta", "random_correlation"]

Arrays = Tuple[np.ndarray, np.ndarray, np.ndarray]


def black_scholes_price(spot, strike: float, vol: float, tau: float) -> np.ndarray:
  """Call price ``S N(d1) - K N(d2)``, zero rates, time to expiry ``tau``."""
  spot = np.asarray(spot, np.float64)
  d1 = (np.log(spot / strike) + 0.5 * vol**2 * tau) / (vol * math.sqrt(tau))
  return spot * stats.norm.cdf(d1) - strike * stats.norm.cdf(d1 - vol * math.sqrt(tau))


def black_scholes_delta(spot, strike: float, vol: float, tau: float) -> np.ndarray:
  """``dC/dS = N(d1)``."""
  spot = np.asarray(spot, np.float64)
  d1 = (np.log(spot / strike) + 0.5 * vol**2 * tau) / (vol * math.sqrt(tau))
  return stats.norm.cdf(d1)


def bachelier_price(forward, strike: float, vol: float, tau: float) -> np.ndarray:
  """Normal-model call price ``s (d Phi(d) + phi(d))``, ``s = vol sqrt(tau)``, ``d = (F - K) / s``."""
  s = vol * math.sqrt(tau)
  d = (np.asarray(forward, np.float64) - strike) / s
  return s * (d * stats.norm.cdf(d) + stats.norm.pdf(d))


def bachelier_delta(forward, strike: float, vol: float, tau: float) -> np.ndarray:
  """``dC/dF = Phi(d)``."""
  d = (np.asarray(forward, np.float64) - strike) / (vol * math.sqrt(tau))
  return stats.norm.cdf(d)


_MARKET_STREAM = 0x6D61726B  # "mark"


def _rng(seed) -> np.random.Generator:
  return np.random.default_rng(seed)


@dataclasses.dataclass(frozen=True)
class BlackScholes:
  """A European call in Black-Scholes, priced at ``T1`` for expiry ``T2``.

  Training states ``S1`` are lognormal from ``spot`` with volatility
  ``vol * vol_mult`` (wider than the model's, to cover the wings); the test set
  is ``num`` spots evenly spaced on ``[lower, upper]``.
  """
  spot: float = 1.0
  vol: float = 0.2
  t1: float = 1.0
  t2: float = 2.0
  strike: float = 1.10
  vol_mult: float = 1.5

  @property
  def n(self) -> int:
    return 1

  def training_set(self, m: int, seed) -> Arrays:
    """``x [m, 1]`` (S1), ``y [m]`` (mean payoff of the pair), ``dydx [m, 1]`` (pathwise delta)."""
    z = _rng(seed).standard_normal((m, 2))  # Row by row: smaller sets are prefixes.
    vol0 = self.vol * self.vol_mult
    s1 = self.spot * np.exp(-0.5 * vol0**2 * self.t1 + vol0 * math.sqrt(self.t1) * z[:, 0])
    y, dydx = self.simulate(s1[:, None], z[:, 1])
    return s1[:, None], y, dydx

  def simulate(self, x, z) -> Tuple[np.ndarray, np.ndarray]:
    """Labels of states ``x [m, 1]`` at T1 from normals ``z [m]``: the pair ``+z, -z``'s mean
    payoff ``[m]`` and mean pathwise derivative ``[m, 1]``."""
    s1, tau = np.asarray(x, np.float64)[:, 0], self.t2 - self.t1
    payoffs, deltas = [], []
    for sign in (1.0, -1.0):
      growth = np.exp(-0.5 * self.vol**2 * tau + sign * self.vol * math.sqrt(tau) * z)
      s2 = s1 * growth
      payoffs.append(np.maximum(s2 - self.strike, 0.0))
      deltas.append(np.where(s2 > self.strike, growth, 0.0))  # d max(S1 g - K, 0) / dS1.
    return 0.5 * (payoffs[0] + payoffs[1]), (0.5 * (deltas[0] + deltas[1]))[:, None]

  def price(self, x) -> np.ndarray:
    return black_scholes_price(np.asarray(x)[:, 0], self.strike, self.vol, self.t2 - self.t1)

  def delta(self, x) -> np.ndarray:
    """``[B, 1]``."""
    return black_scholes_delta(np.asarray(x)[:, 0], self.strike, self.vol,
                               self.t2 - self.t1)[:, None]

  def test_set(self, num: int = 100, lower: float = 0.35, upper: float = 1.65,
               seed=None) -> Arrays:
    """``num`` spots evenly on ``[lower, upper]`` with their prices and deltas (``seed`` unused)."""
    del seed
    x = np.linspace(lower, upper, num)[:, None]
    return x, self.price(x), self.delta(x)

  def basket(self, x) -> np.ndarray:
    """The plotting axis: the spot itself."""
    return np.asarray(x)[:, 0]


def random_correlation(n: int, rng: np.random.Generator) -> np.ndarray:
  """``R^T R`` for a ``[2n, n]`` matrix ``R`` of ``U(-1, 1)`` entries, rescaled to unit diagonal."""
  r = rng.uniform(-1.0, 1.0, (2 * n, n))
  cov = r.T @ r
  inv = 1.0 / np.sqrt(np.diag(cov))
  corr = cov * inv[:, None] * inv[None, :]
  np.fill_diagonal(corr, 1.0)
  return corr


@dataclasses.dataclass(frozen=True, eq=False)
class BachelierBasket:
  """A call on a basket of ``n`` correlated assets in the Bachelier (normal) model.

  The market (correlation, basket weights ``a``, volatilities ``v``) is drawn from
  ``market_seed``: ``a ~ U(1, 10)`` normalised to sum 1, ``v ~ U(5, 50)`` rescaled
  so that the basket's volatility ``sqrt((a v)^T C (a v))`` is ``basket_vol``. The
  basket is then a Bachelier underlying with that volatility, which gives the
  analytic price and deltas.
  """
  n: int
  market_seed: int = 0
  t1: float = 1.0
  t2: float = 2.0
  strike: float = 1.10
  vol_mult: float = 1.5
  basket_vol: float = 0.2

  def __post_init__(self):
    if not isinstance(self.n, int) or self.n < 1:
      raise ValueError(f"n (the number of assets) must be a positive integer, got {self.n!r}.")
    # Its own stream, apart from any [seed, k] stream of the paths of the same seed.
    rng = _rng(np.random.SeedSequence([int(self.market_seed), _MARKET_STREAM, self.n]))
    corr = random_correlation(self.n, rng)
    a = rng.uniform(1.0, 10.0, self.n)
    a /= a.sum()
    vols = rng.uniform(5.0, 50.0, self.n)
    vols *= self.basket_vol / math.sqrt((a * vols) @ corr @ (a * vols))
    cov = vols[:, None] * corr * vols[None, :]
    for name, value in (("correlation", corr), ("weights", a), ("vols", vols), ("covariance", cov),
                        ("cholesky", np.linalg.cholesky(cov))):
      object.__setattr__(self, name, value)

  def training_set(self, m: int, seed) -> Arrays:
    """``x [m, n]`` (spots at T1), ``y [m]`` (mean payoff of the pair), ``dydx [m, n]``.

    ``S1 = 1 + vol_mult sqrt(T1) L z0`` and ``S2 = S1 +- sqrt(T2 - T1) L z1`` with
    ``L L^T = diag(v) C diag(v)``; the payoff is ``max(a.S2 - K, 0)`` and its
    derivative ``1{a.S2 > K} a``.
    """
    z = _rng(seed).standard_normal((m, 2, self.n))  # Row by row: smaller sets are prefixes.
    s1 = 1.0 + self.vol_mult * math.sqrt(self.t1) * z[:, 0] @ self.cholesky.T
    y, dydx = self.simulate(s1, z[:, 1])
    return s1, y, dydx

  def simulate(self, x, z) -> Tuple[np.ndarray, np.ndarray]:
    """Labels of states ``x [m, n]`` at T1 from normals ``z [m, n]``: the pair ``+z, -z``'s
    mean payoff ``[m]`` and mean pathwise derivative ``[m, n]``."""
    step = math.sqrt(self.t2 - self.t1) * np.asarray(z) @ self.cholesky.T
    payoffs, deltas = [], []
    for sign in (1.0, -1.0):
      basket = (np.asarray(x, np.float64) + sign * step) @ self.weights
      payoffs.append(np.maximum(basket - self.strike, 0.0))
      deltas.append((basket > self.strike)[:, None] * self.weights[None, :])
    return 0.5 * (payoffs[0] + payoffs[1]), 0.5 * (deltas[0] + deltas[1])

  def basket(self, x) -> np.ndarray:
    return np.asarray(x, np.float64) @ self.weights

  def price(self, x) -> np.ndarray:
    return bachelier_price(self.basket(x), self.strike, self.basket_vol, self.t2 - self.t1)

  def delta(self, x) -> np.ndarray:
    """``Phi(d) a``, ``[B, n]``."""
    return bachelier_delta(self.basket(x), self.strike, self.basket_vol,
                           self.t2 - self.t1)[:, None] * self.weights[None, :]

  def test_set(self, num: int = 4096, lower: float = 0.5, upper: float = 1.5, seed=0) -> Arrays:
    """``num`` spots uniform per asset on ``[1 - 0.5 adj, 1 + 0.5 adj]`` (for the default
    bounds), ``adj = 1 + 0.5 sqrt((n - 1) (upper - lower) / 12)``, which widens the box
    with the dimension so that baskets span a similar range; prices and deltas."""
    adj = 1.0 + 0.5 * math.sqrt((self.n - 1) * (upper - lower) / 12.0)
    x = _rng(seed).uniform(1.0 - (1.0 - lower) * adj, 1.0 + (upper - 1.0) * adj, (num, self.n))
    return x, self.price(x), self.delta(x)

"""The seven optimisation benchmarks of section 4.1 (SM section 2), with analytic gradients.

Each function maps points ``[N, 2]`` to values ``[N]`` and has a hand-written
gradient ``[N, 2]``; both are NumPy (float64) so that datasets are exact and
independent of TensorFlow. Domains are the SM's.

Bukin N.6, ``100 sqrt(|y - 0.01 x^2|) + 0.01 |x + 10|``, is not differentiable on
the parabola ``y = 0.01 x^2`` (infinite slope of the square root) and on the line
``x = -10``. There the gradient is defined as the one-sided limit's finite
part: the square-root term contributes 0 on the parabola (its subgradient set
is unbounded; 0 is its symmetric centre) and ``sign(0) = 0`` for the ``|x + 10|``
term. Uniform sampling hits these sets with probability 0, but the value is
never NaN or Inf.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Dict, Tuple

import numpy as np

__all__ = ["BenchmarkFunction", "FUNCTIONS", "get_function", "sample_uniform"]

Array = np.ndarray


@dataclasses.dataclass(frozen=True)
class BenchmarkFunction:
  """A 2-D benchmark: value, analytic gradient and the SM's sampling domain."""
  name: str
  value: Callable[[Array], Array]
  gradient: Callable[[Array], Array]
  domain: Tuple[Tuple[float, float], Tuple[float, float]]

  def __call__(self, points: Array) -> Array:
    return self.value(_check_points(points, self.name))

  def value_and_gradient(self, points: Array) -> Tuple[Array, Array]:
    points = _check_points(points, self.name)
    return self.value(points), self.gradient(points)


def _check_points(points, name: str) -> Array:
  points = np.asarray(points, dtype=np.float64)
  if points.ndim != 2 or points.shape[1] != 2:
    raise ValueError(f"{name}: points must have shape [N, 2], got {points.shape}.")
  return points


def _split(p):
  return p[:, 0], p[:, 1]


def _ackley(p):
  x, y = _split(p)
  r = np.sqrt(0.5 * (x**2 + y**2))
  return (-20 * np.exp(-0.2 * r)
          - np.exp(0.5 * (np.cos(2 * np.pi * x) + np.cos(2 * np.pi * y))) + np.e + 20)


def _ackley_grad(p):
  x, y = _split(p)
  r = np.sqrt(0.5 * (x**2 + y**2))
  # d/dx of -20 exp(-0.2 r) = 4 exp(-0.2 r) dr/dx, dr/dx = 0.5 x / r (0 at the origin).
  safe_r = np.where(r > 0, r, 1.0)
  radial = np.where(r > 0, 4 * np.exp(-0.2 * r) * 0.5 / safe_r, 0.0)
  e = np.exp(0.5 * (np.cos(2 * np.pi * x) + np.cos(2 * np.pi * y)))
  gx = radial * x + e * np.pi * np.sin(2 * np.pi * x)
  gy = radial * y + e * np.pi * np.sin(2 * np.pi * y)
  return np.stack([gx, gy], axis=1)


def _beale(p):
  x, y = _split(p)
  return (1.5 - x + x * y)**2 + (2.25 - x + x * y**2)**2 + (2.625 - x + x * y**3)**2


def _beale_grad(p):
  x, y = _split(p)
  a, b, c = 1.5 - x + x * y, 2.25 - x + x * y**2, 2.625 - x + x * y**3
  gx = 2 * a * (y - 1) + 2 * b * (y**2 - 1) + 2 * c * (y**3 - 1)
  gy = 2 * a * x + 2 * b * 2 * x * y + 2 * c * 3 * x * y**2
  return np.stack([gx, gy], axis=1)


def _booth(p):
  x, y = _split(p)
  return (x + 2 * y - 7)**2 + (2 * x + y - 5)**2


def _booth_grad(p):
  x, y = _split(p)
  a, b = x + 2 * y - 7, 2 * x + y - 5
  return np.stack([2 * a + 4 * b, 4 * a + 2 * b], axis=1)


def _bukin(p):
  x, y = _split(p)
  return 100 * np.sqrt(np.abs(y - 0.01 * x**2)) + 0.01 * np.abs(x + 10)


def _bukin_grad(p):
  x, y = _split(p)
  d = y - 0.01 * x**2
  ad = np.abs(d)
  # d/dd 100 sqrt(|d|) = 50 sign(d) / sqrt(|d|); defined as 0 on the parabola d = 0.
  safe = np.where(ad > 0, ad, 1.0)
  k = np.where(ad > 0, 50 * np.sign(d) / np.sqrt(safe), 0.0)
  gx = k * (-0.02 * x) + 0.01 * np.sign(x + 10)
  gy = k
  return np.stack([gx, gy], axis=1)


def _mccormick(p):
  x, y = _split(p)
  return np.sin(x + y) + (x - y)**2 - 1.5 * x + 2.5 * y + 1


def _mccormick_grad(p):
  x, y = _split(p)
  c = np.cos(x + y)
  return np.stack([c + 2 * (x - y) - 1.5, c - 2 * (x - y) + 2.5], axis=1)


def _rosenbrock(p):
  x, y = _split(p)
  return 100 * (y - x**2)**2 + (x - 1)**2


def _rosenbrock_grad(p):
  x, y = _split(p)
  return np.stack([-400 * x * (y - x**2) + 2 * (x - 1), 200 * (y - x**2)], axis=1)


def _styblinski_tang(p):
  return 0.5 * np.sum(p**4 - 16 * p**2 + 5 * p, axis=1)


def _styblinski_tang_grad(p):
  return 0.5 * (4 * p**3 - 32 * p + 5)


FUNCTIONS: Dict[str, BenchmarkFunction] = {
    f.name: f for f in [
        BenchmarkFunction("ackley", _ackley, _ackley_grad, ((-5, 5), (-5, 5))),
        BenchmarkFunction("beale", _beale, _beale_grad, ((-4.5, 4.5), (-4.5, 4.5))),
        BenchmarkFunction("booth", _booth, _booth_grad, ((-10, 10), (-10, 10))),
        BenchmarkFunction("bukin", _bukin, _bukin_grad, ((-15, -5), (-3, 3))),
        BenchmarkFunction("mccormick", _mccormick, _mccormick_grad, ((-1.5, 4), (-3, 4))),
        BenchmarkFunction("rosenbrock", _rosenbrock, _rosenbrock_grad, ((-2, 2), (-2, 2))),
        BenchmarkFunction("styblinski_tang", _styblinski_tang, _styblinski_tang_grad,
                          ((-5, 5), (-5, 5))),
    ]
}


def get_function(name: str) -> BenchmarkFunction:
  """The benchmark called ``name`` (one of ``FUNCTIONS``), or a ValueError listing them."""
  try:
    return FUNCTIONS[name]
  except KeyError:
    raise ValueError(
        f"Unknown function {name!r}; known functions: {', '.join(sorted(FUNCTIONS))}.") from None


def sample_uniform(fn: BenchmarkFunction, num_points: int, seed: int) -> Array:
  """``num_points`` points uniform on the function's domain, ``[N, 2]`` float64."""
  if num_points < 1:
    raise ValueError(f"num_points must be positive, got {num_points}.")
  rng = np.random.default_rng(seed)
  (x0, x1), (y0, y1) = fn.domain
  return np.stack([rng.uniform(x0, x1, num_points), rng.uniform(y0, y1, num_points)], axis=1)

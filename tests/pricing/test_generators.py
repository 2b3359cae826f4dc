"""The pricing generators against their closed forms."""

import numpy as np
import tensorflow as tf

from sobolev_tf.pricing import generators


def _within_4_standard_errors(test, samples, expected):
  mean = samples.mean(axis=0)
  error = samples.std(axis=0) / np.sqrt(len(samples))
  test.assertTrue(np.all(np.abs(mean - expected) < 4 * error + 1e-12),
                  f"Monte-Carlo mean {mean} vs {expected} (standard error {error})")


class GeneratorTest(tf.test.TestCase):

  def test_black_scholes_labels_are_unbiased(self):
    bs = generators.BlackScholes()
    z = np.random.default_rng(0).standard_normal(200_000)
    for spot in (0.7, 1.0, 1.3):
      x = np.full((len(z), 1), spot)
      y, dydx = bs.simulate(x, z)
      _within_4_standard_errors(self, y, bs.price(x[:1])[0])
      _within_4_standard_errors(self, dydx[:, 0], bs.delta(x[:1])[0, 0])
    # The analytic reference against its own finite differences.
    spots = np.array([[0.8], [1.1], [1.4]])
    h = 1e-5
    fd = (bs.price(spots + h) - bs.price(spots - h)) / (2 * h)
    self.assertAllClose(bs.delta(spots)[:, 0], fd, rtol=1e-6)

  def test_bachelier_labels_are_unbiased(self):
    basket = generators.BachelierBasket(7, market_seed=3)
    z = np.random.default_rng(1).standard_normal((200_000, 7))
    state = np.random.default_rng(2).uniform(0.8, 1.3, (1, 7))
    x = np.repeat(state, len(z), axis=0)
    y, dydx = basket.simulate(x, z)
    _within_4_standard_errors(self, y, basket.price(state)[0])
    _within_4_standard_errors(self, dydx, basket.delta(state)[0])
    h = 1e-5
    for j in range(7):
      e = np.zeros((1, 7))
      e[0, j] = h
      fd = (basket.price(state + e) - basket.price(state - e)) / (2 * h)
      self.assertAllClose(basket.delta(state)[0, j], fd[0], rtol=1e-5)

  def test_the_market_has_its_own_stream(self):
    # The paths of seed s and purpose k use the stream [s, k]: for n = k the market must not
    # (for n = 1 the market is the same whatever its draws).
    for n in (2, 3):
      basket = generators.BachelierBasket(n, market_seed=5)
      same = np.random.default_rng(np.random.SeedSequence([5, n])).uniform(-1, 1, (2 * n, n))
      cov = same.T @ same
      self.assertNotAllClose(basket.cholesky, np.linalg.cholesky(
          cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov)))) * basket.vols[:, None])

  def test_antithetic_pairs_and_the_market(self):
    for n in (1, 7, 20):
      basket = generators.BachelierBasket(n, market_seed=n)
      corr = basket.correlation
      self.assertAllClose(np.diag(corr), np.ones(n))
      self.assertAllClose(corr, corr.T)
      self.assertGreater(np.linalg.eigvalsh(corr).min(), 0.0)
      av = basket.weights * basket.vols
      self.assertAllClose(np.sqrt(av @ corr @ av), 0.2, rtol=1e-12)
      self.assertAllClose(basket.weights.sum(), 1.0)
      z = np.random.default_rng(0).standard_normal((50, n))
      x = 1.0 + 0.1 * np.random.default_rng(1).standard_normal((50, n))
      for a, b in zip(basket.simulate(x, z), basket.simulate(x, -z)):
        self.assertAllClose(a, b)  # The pair (+z, -z) in either order.
      x, y, dydx = basket.training_set(100, seed=4)
      self.assertEqual((x.shape, y.shape, dydx.shape), ((100, n), (100,), (100, n)))
      for a, b in zip(basket.training_set(40, seed=4), (x, y, dydx)):
        self.assertAllClose(a, b[:40])  # Smaller training sets are prefixes.
    bs = generators.BlackScholes()
    z = np.random.default_rng(0).standard_normal(30)
    x = np.full((30, 1), 1.05)
    for a, b in zip(bs.simulate(x, z), bs.simulate(x, -z)):
      self.assertAllClose(a, b)

  def test_test_sets(self):
    x, price, delta = generators.BlackScholes().test_set()
    self.assertAllClose(x[[0, -1], 0], [0.35, 1.65])
    self.assertEqual(x.shape, (100, 1))
    basket = generators.BachelierBasket(7)
    x, price, delta = basket.test_set(4096, seed=0)
    adj = 1 + 0.5 * np.sqrt(6 / 12)  # The box widens with the dimension: 1 +- 0.5 adj.
    self.assertAllClose(x.min(axis=0), np.full(7, 1 - 0.5 * adj), atol=2e-3)
    self.assertAllClose(x.max(axis=0), np.full(7, 1 + 0.5 * adj), atol=2e-3)
    self.assertAllClose(price, basket.price(x))
    self.assertEqual(delta.shape, (4096, 7))
    with self.assertRaisesRegex(ValueError, "n \\(the number of assets\\)"):
      generators.BachelierBasket(0)


if __name__ == "__main__":
  tf.test.main()

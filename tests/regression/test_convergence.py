"""The convergence study: its quick config end to end and the statistics of its report."""

import os

import numpy as np
import tensorflow as tf

from configs import regression_convergence
from sobolev_tf.regression import convergence
from sobolev_tf.regression import sensitivity


def _row(setting, function, n, method, seed, mse):
  return dict(setting=setting, function=function, num_train=n, method=method, seed=seed,
              test_mse=mse)


class ConvergenceTest(tf.test.TestCase):

  def test_budget_changes_and_factor_effects(self):
    rows = []
    for seed in range(5):
      for fn, n in (("booth", 20), ("beale", 100)):
        rows += [_row("a", fn, n, "regular", seed, 10.0), _row("a", fn, n, "sobolev", seed, 1.0),
                 _row("b", fn, n, "regular", seed, 10.0),
                 _row("b", fn, n, "sobolev", seed, 0.01 * (1 + seed))]
    changes = convergence.budget_changes(rows, "a", "b")
    sobolev = [c for c in changes if c["method"] == "sobolev"]
    self.assertAllClose([c["change"] for c in sobolev], [np.log10(0.03)] * 2)
    self.assertAllClose([c["change"] for c in changes if c["method"] == "regular"], [0.0, 0.0])
    effect = convergence.factor_effect(rows, "b", "a")
    self.assertEqual(effect["pairs"], 10)
    self.assertEqual((effect["improved"], effect["cells"]), (2, 2))
    self.assertAllClose(effect["median"], -np.log10(0.03))
    self.assertLess(effect["p_value"], 0.01)
    self.assertAllClose(effect["regular"], 0.0)
    self.assertAllClose(effect["sobolev"], np.log10(0.03))

  def test_derivative_rows_summarise_the_gradient_error(self):
    rows = [dict(_row("a", "booth", 20, m, seed, 1.0), test_grad_mse=g, steps=100,
                 converged_step=1, last_change="flat")
            for seed in range(3) for m, g in (("regular", 100.0), ("sobolev", 1.0))]
    rows.append(dict(_row("a", "booth", 20, "regular", 3, 1.0), steps=100))  # No derivative error.
    derivative = convergence.derivative_rows(rows)
    self.assertLen(derivative, 6)
    self.assertAllClose([r["test_mse"] for r in derivative], [100.0, 1.0] * 3)
    (summary,) = sensitivity.summarize(derivative)
    self.assertAllClose(summary["gain"], 2.0)  # log10(100 / 1): the derivative error's gain.
    self.assertIsNone(summary["converged_regular"])  # The value error's steps are not kept.

  def test_plain_answer_names_the_100x_cells_and_the_best_settings(self):
    table = [dict(setting=n, function=f, num_train=k, gain=g) for n, f, k, g in (
        ("a", "booth", 20, 2.5), ("a", "beale", 20, 0.5), ("b", "booth", 20, 1.2),
        ("b", "beale", 20, 1.0), ("c", "booth", 10000, -0.3))]
    config = regression_convergence.get_config("quick")
    config.order = ("a", "b", "c")
    lines = convergence._plain_answer(table, config)  # pylint: disable=protected-access
    self.assertEqual(lines, [
        "- Cells at 100x or more (a median gain of at least 2 decades): `a` booth n=20 (2.50).",
        "- Settings whose median gain over their cells reaches 10x: `a` (1.50), `b` (1.10).",
        "- At 20 points: the largest median gain is `a` (1.50 decades), the smallest `b` (1.10).",
        "- At 10,000 points: the largest median gain is `c` (-0.30 decades), the smallest `c` "
        "(-0.30)."])

  def test_best_step_rows_take_each_runs_lowest_evaluation(self):
    rows = [dict(_row("a", "booth", 20, "regular", 0, 4.0), steps=100,
                 curve=[(50, 10.0, 1.0), (100, 4.0, 1.0)]),
            dict(_row("a", "booth", 20, "sobolev", 0, 8.0), steps=100,
                 curve=[(50, 0.04, 1.0), (100, 8.0, 1.0)])]  # Best at step 50, then overfits.
    best = convergence.best_step_rows(rows)
    self.assertEqual([r["test_mse"] for r in best], [4.0, 0.04])
    (summary,) = sensitivity.summarize(best)
    self.assertAllClose(summary["gain"], 2.0)
    self.assertEqual(rows[1]["test_mse"], 8.0)  # The rows themselves are not changed.

  def test_quick_config_writes_the_report(self):
    config = regression_convergence.get_config("quick")
    output = self.create_tempdir().full_path
    text = convergence.train_and_evaluate(config, self.create_tempdir().full_path, output,
                                          "python scripts/regression_convergence.py")
    self.assertRegex(text, r"## Short answer\n\n- Cells at 100x or more [^\n]*\n- Settings whose "
                           r"median gain over their cells reaches 10x: [^\n]*\n- At 20 points: "
                           r"the largest median gain is `[a-z0-9_]+` \(-?\d\.\d\d decades\)")
    for section in ("## Gain per setting", "## Convergence: the same setting at twice the budget",
                    "## Which choice decides the gain", "## Gain per cell",
                    "## Derivative gain per cell", "## All cells"):
      self.assertIn(section, text)
    self.assertRegex(text, r"- `relu_200`: median gain -?\d\.\d\d decades over 1 cells; .*"
                           r"derivatives: median gain -?\d\.\d\d, >= 10x in [01]; at each "
                           r"run's best evaluation: median gain -?\d\.\d\d, >= 10x in [01]\.")
    self.assertIn("| softplus_200 -> softplus_400 | sobolev | 1 |", text)
    for name in ("convergence.md", "convergence.csv", "convergence_curves.csv",
                 "convergence.png", "convergence_budgets.png"):
      self.assertTrue(os.path.exists(os.path.join(output, name)), name)
    part = convergence.train_and_evaluate(config, self.create_tempdir().full_path, output,
                                          "python scripts/regression_convergence.py",
                                          settings=["softplus_200", "relu_200"])
    self.assertIn("Not run yet (left out below): softplus_400, softplus_weight_10_200.", part)
    self.assertNotIn("softplus_weight_10_200 |", part.split("## Gain per cell")[0])
    with self.assertRaisesRegex(ValueError, "settings must name distinct settings"):
      convergence.train_and_evaluate(config, output, output, "", settings=["softplus_2000"])
    config.budget_pairs = (("softplus_400", "softplus_200"),)
    with self.assertRaisesRegex(ValueError, "the second must train longer"):
      convergence.check_config(config)


if __name__ == "__main__":
  tf.test.main()

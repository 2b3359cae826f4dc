"""The sensitivity study: settings, convergence steps, budgets and the report, on tiny data."""

import os

import tensorflow as tf

from configs import regression_sensitivity as sensitivity_configs
from sobolev_tf.regression import sensitivity


class SensitivityTest(tf.test.TestCase):

  def test_converged_step(self):
    curve = [(100, 1000.0, 0), (200, 12.0, 0), (300, 10.5, 0), (400, 10.0, 0)]
    self.assertEqual(sensitivity.converged_step(curve, 10.0), (200, "flat"))
    # Within 0.1 decade of the final value only at the last evaluation: not converged.
    improving = [(100, 1000.0, 0), (200, 100.0, 0), (300, 10.0, 0)]
    self.assertEqual(sensitivity.converged_step(improving, 10.0), (None, "improving"))
    worsening = [(100, 1000.0, 0), (200, 1.0, 0), (300, 10.0, 0)]
    self.assertEqual(sensitivity.converged_step(worsening, 10.0), (None, "worsening"))
    diverged = [(100, 1000.0, 0), (200, float("nan"), 0)]
    self.assertEqual(sensitivity.converged_step(diverged, float("nan")), (None, "diverged"))
    self.assertEqual(sensitivity.converged_step([(100, 5.0, 0)], 5.0), (100, "flat"))

  def test_summary_by_hand(self):
    def run(method, seed, mse, steps=10, change="flat", converged=10):
      return dict(setting="s", function="booth", num_train=20, steps=steps, method=method,
                  seed=seed, test_mse=mse, last_change=change, converged_step=converged)
    rows = [run("regular", 0, 1e3), run("regular", 1, 1e2), run("regular", 2, 1e4),
            run("sobolev", 0, 1e1, change="improving", converged=None),
            run("sobolev", 1, 1e1, change="worsening", converged=None),
            run("sobolev", 2, 1e3, converged=5), run("sobolev", 3, 1e0)]  # Seed 3: no pair.
    (t,) = sensitivity.summarize(rows)
    # Paired differences 2, 1, 1 (seed 3 has no regular run): median 1, not the
    # difference of the medians (3 - 1).
    self.assertEqual((t["pairs"], t["gain"], t["gain_min"], t["gain_max"]), (3, 1.0, 1.0, 2.0))
    self.assertEqual((t["regular"], t["sobolev"]), (3.0, 1.0))
    self.assertEqual((t["converged_regular"], t["not_converged_regular"]), (10, 0))
    self.assertEqual((t["converged_sobolev"], t["not_converged_sobolev"]), (5, 2))
    self.assertEqual((t["improving"], t["worsening"]), (1, 1))
    (lonely,) = sensitivity.summarize([run("sobolev", 0, 1.0)])
    self.assertIsNone(lonely["gain"])

  def test_settings_are_overrides_of_the_base(self):
    config = sensitivity_configs.get_config("default")
    self.assertEqual(sensitivity.setting_config(config, "tanh").activation, "tanh")
    paper = sensitivity.setting_config(config, "paper_text")
    self.assertEqual((paper.standardize, paper.learning_rate, paper.hidden_sizes),
                     (False, 3e-5, (256, 256)))
    self.assertEqual(sensitivity.setting_config(config, "default").methods,
                     ("regular", "sobolev"))
    # Every budget compared with the reference is one of its evaluations.
    reference = sensitivity.setting_config(config, config.reference)
    for name in config.settings:
      steps = sensitivity.setting_config(config, name).num_steps
      self.assertIn(steps, tuple(reference.eval_steps) + (reference.num_steps,), msg=name)
    with self.assertRaisesRegex(ValueError, "Unknown setting 'gelu'"):
      sensitivity.setting_config(config, "gelu")
    config.settings.tanh.num_steps = 3000  # Not an evaluation of the reference.
    with self.assertRaisesRegex(ValueError, "'tanh' trains 3000 steps, at which the reference"):
      sensitivity.run_study(config, self.create_tempdir().full_path)
    config = sensitivity_configs.get_config("default")
    config.length_settings = ("default", "paper")  # A misspelt setting, before any training.
    with self.assertRaisesRegex(ValueError, "length_settings names 'paper', which is not a"):
      sensitivity.run_study(config, self.create_tempdir().full_path)
    config = sensitivity_configs.get_config("default")
    config.paper_setting = "papertext"
    with self.assertRaisesRegex(ValueError, "config.paper_setting='papertext' is not a setting"):
      sensitivity.run_study(config, self.create_tempdir().full_path)

  def test_quick_study_writes_the_report(self):
    config = sensitivity_configs.get_config("quick")
    workdir, output = self.create_tempdir().full_path, self.create_tempdir().full_path
    text = sensitivity.train_and_evaluate(config, workdir, output, "test command")
    for name in ("sensitivity.md", "sensitivity.csv", "sensitivity_curves.csv", "sensitivity.png"):
      self.assertTrue(os.path.exists(os.path.join(output, name)), msg=name)
    self.assertIn("| default @ 200 | 200 | booth | 20 | 2 |", text)
    # The pivot of gains per setting, and the reference along its evaluations.
    self.assertIn("| setting | steps | booth n=20 | median | >= 10x |", text)
    self.assertIn("Training length: `paper_text` at each of its evaluations.", text)
    trajectory = text.split("Training length: `default` at each of its evaluations.")[1]
    self.assertRegex(trajectory.split("## All cells")[0],
                     r"\| default @ 100 \| 100 \| -?\d\.\d\d \|[^\n]*\n"
                     r"\| default @ 200 \| 200 \|[^\n]*\n\| default \| 400 \|")
    self.assertIn("The setting of the paper's text (`paper_text`): gains booth n=20", text)
    self.assertIn("## Short answer\n\n" + sensitivity.SCOPE + "\n", text)
    with open(os.path.join(output, "sensitivity.csv")) as f:
      lines = f.read().splitlines()
    self.assertEqual(lines[0], ",".join(sensitivity.CSV_COLUMNS))
    self.assertLen(lines, 1 + 3 * 4)  # Three settings of two methods x two seeds.
    with open(os.path.join(output, "sensitivity_curves.csv")) as f:
      curves = f.read().splitlines()
    # Evaluations at 100, 200 (and 400 for default's 400 steps) per run.
    self.assertLen(curves, 1 + 4 * 3 + 2 * 4 * 2)
    self.assertEqual(curves[0], "setting,function,num_train,method,seed,step,test_mse,test_grad_mse")
    self.assertEqual(sorted(os.listdir(workdir)), sorted(config.settings))
    # A second call resumes every setting: the same numbers.
    again = sensitivity.train_and_evaluate(config, workdir, output, "test command")
    self.assertEqual(again, text)


if __name__ == "__main__":
  tf.test.main()

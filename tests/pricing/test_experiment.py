"""The pricing experiment: the quick config end to end, and a killed run resumed."""

import os
import subprocess
import sys

import tensorflow as tf

from configs import pricing as pricing_configs
from sobolev_tf.pricing import experiment
from sobolev_tf.pricing import report

REPO = os.path.join(os.path.dirname(__file__), "..", "..")

_RUN = r"""
import sys
sys.path.insert(0, ".")
from tests import kill
from configs import pricing
from sobolev_tf.pricing import experiment
if sys.argv[1] == "kill":
  kill.sigkill_at_checkpoint(lambda epoch, calls: calls >= 5)
config = pricing.get_config("quick")
config.parts = ("table",)
config.checkpoint_minutes = 0.0
config.estimator.epochs = 6
experiment.train_and_evaluate(config, sys.argv[2], sys.argv[3], "test")
"""


def _errors(path):
  return [(r["model"], r["n"], r["m"], r["method"], r["seed"], r["value_rmse"],
           r["delta0_rmse"], r["delta_rmse"], r["epochs"]) for r in experiment.read_cells(path)]


class PricingExperimentTest(tf.test.TestCase):

  def test_quick_config_end_to_end(self):
    config = pricing_configs.get_config("quick")
    workdir, output = self.create_tempdir().full_path, self.create_tempdir().full_path
    written = experiment.train_and_evaluate(config, workdir, output, "python scripts/pricing.py")
    for name in ("table.md", "table.csv", "curve.md", "curve.png", "dimension.md",
                 "dimension.png", "predictions_bachelier3_m256.png", "surrogate_market.json"):
      self.assertIn(name, written)
      self.assertTrue(os.path.exists(os.path.join(output, name)), name)
    rows = experiment.read_cells(os.path.join(output, "table.csv"))
    self.assertLen(rows, 2 * 2 * 2)  # Two cases x two methods x two seeds.
    served = tf.saved_model.load(os.path.join(output, "surrogate"))
    out = served.signatures["serving_default"](x=tf.ones([4, 3]))
    self.assertEqual(out["derivative"].shape, [4, 3])
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in
               os.walk(os.path.join(output, "surrogate")) for f in fs)
    self.assertLess(size, 1 << 20)
    # The risk-report example reads the export with plain TensorFlow.
    example = subprocess.run(
        [sys.executable, "-X", "importtime", os.path.join(REPO, "examples",
                                                          "pricing_risk_report.py"),
         f"--results={output}"], capture_output=True, text=True, cwd=output)
    self.assertEqual(example.returncode, 0, example.stderr[-2000:])
    self.assertIn("| +0% |", example.stdout)
    # -X importtime lists every module imported (the editable install's finder is not one).
    self.assertNotRegex(example.stderr, r"(?m)\|\s+sobolev_tf(\.\S+)?\s*$")
    # A second run finds every cell done and rewrites the same report.
    again = experiment.train_and_evaluate(config, workdir, output, "python scripts/pricing.py")
    self.assertEqual(written, again)
    self.assertEqual(_errors(os.path.join(output, "table.csv")),
                     [e for e in _errors(os.path.join(workdir, "cells.csv"))
                      if (e[0], e[1], e[2]) in {("black_scholes", 1, 256), ("bachelier", 3, 256)}])

  def test_killed_run_resumes_to_the_same_cells(self):
    killed_dir, straight_dir = self.create_tempdir().full_path, self.create_tempdir().full_path
    run = lambda *args: subprocess.run([sys.executable, "-c", _RUN, *args], cwd=REPO,
                                       capture_output=True, text=True)
    first = run("kill", os.path.join(killed_dir, "work"), os.path.join(killed_dir, "out"))
    self.assertEqual(first.returncode, -9, first.stderr[-2000:])
    resumed = run("resume", os.path.join(killed_dir, "work"), os.path.join(killed_dir, "out"))
    self.assertEqual(resumed.returncode, 0, resumed.stderr[-2000:])
    self.assertIn("cells done earlier", resumed.stderr)
    straight = run("straight", os.path.join(straight_dir, "work"),
                   os.path.join(straight_dir, "out"))
    self.assertEqual(straight.returncode, 0, straight.stderr[-2000:])
    self.assertEqual(sorted(_errors(os.path.join(killed_dir, "out", "table.csv"))),
                     sorted(_errors(os.path.join(straight_dir, "out", "table.csv"))))

  def test_bad_configs_and_cells(self):
    config = pricing_configs.get_config("quick")
    config.parts = ()
    with self.assertRaisesRegex(ValueError, "config.parts is empty"):
      experiment.train_and_evaluate(config, self.create_tempdir().full_path,
                                    self.create_tempdir().full_path, "")
    with self.assertRaisesRegex(ValueError, "Unknown method 'magic'"):
      experiment.Cell("bachelier", 7, 1024, "magic", 0)
    with self.assertRaisesRegex(ValueError, "Black-Scholes has one asset"):
      experiment.Cell("black_scholes", 2, 1024, "standard", 0)
    config = pricing_configs.get_config("quick")
    config.estimator.epochs = 0
    with self.assertRaisesRegex(ValueError, "epochs must be a positive integer"):
      experiment.train_and_evaluate(config, self.create_tempdir().full_path,
                                    self.create_tempdir().full_path, "")

  def test_matching_size_interpolates_log_log(self):
    self.assertAlmostEqual(report.matching_size({1024: 1.0, 4096: 0.25}, 0.5), 2048.0)
    self.assertIsNone(report.matching_size({1024: 1.0, 4096: 0.8}, 0.5))
    self.assertEqual(report.matching_size({1024: 0.4, 4096: 0.2}, 0.5), 1024.0)


if __name__ == "__main__":
  tf.test.main()

"""The Table 1 report over seeds: table, Welch tests, cosines from TensorBoard logs, plot."""

import json
import math
import os

import numpy as np
import tensorflow as tf

from sobolev_tf.synthetic_gradients import report

STEPS = 1000


def _fake_run(workdir, method, top1, seed, finished=True, cosines=None, config=None):
  """A run directory as the trainer leaves it; ``cosines``: ``{step: [split values]}``."""
  run = os.path.join(workdir, method)
  os.makedirs(run)
  with open(os.path.join(run, "curve.csv"), "w") as f:
    f.write("step,test_top1,test_top5,wall_seconds\n")
    f.write(f"500,{top1 / 2},{top1},30\n{STEPS},{top1},{min(1.0, top1 + 0.2)},60\n")
  if finished:
    with open(os.path.join(run, "result.json"), "w") as f:
      json.dump(dict(finished=True, steps=STEPS, test_top1=top1, test_top5=min(1.0, top1 + 0.2),
                     config=dict(config or {}, seed=seed, method=method, num_steps=STEPS)), f)
  if cosines:
    writer = tf.summary.create_file_writer(os.path.join(run, "tb"))
    with writer.as_default():
      for step, values in cosines.items():
        for k, value in enumerate(values):
          tf.summary.scalar(f"train/cosine_{k}", value, step=step)
        tf.summary.scalar("train/loss", 1.0, step=step)
    writer.close()


def _welch_by_hand(a, b):
  """t and Welch-Satterthwaite degrees of freedom, written out."""
  va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
  return (np.mean(b) - np.mean(a)) / math.sqrt(va + vb), (va + vb)**2 / (
      va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))


class PairStatementTest(tf.test.TestCase):

  def test_welch_statistic_matches_the_closed_form(self):
    a, b = [0.60, 0.62, 0.65], [0.66, 0.70, 0.71]
    t, df = _welch_by_hand(a, b)
    line = report.pair_statement("vfbn", "critic", {"vfbn": a, "critic": b})
    self.assertIn(f"Welch t = {t:.2f}, df = {df:.1f}", line["text"])
    self.assertEqual(line["kind"], "supported")

  def test_verdicts(self):
    top1 = {"noprop": [0.40, 0.41, 0.39], "direct": [0.60, 0.61, 0.59],
            "vfbn": [0.50, 0.51, 0.49], "critic": [0.50, 0.55, 0.45],
            "sobolev": [0.52, 0.44, 0.56]}
    kinds = {(a, b): report.pair_statement(a, b, top1)["kind"]
             for a, b in [("noprop", "direct"), ("direct", "vfbn"), ("vfbn", "critic"),
                          ("critic", "sobolev"), ("sobolev", "backprop")]}
    self.assertEqual(kinds, {("noprop", "direct"): "supported", ("direct", "vfbn"): "reversed",
                             ("vfbn", "critic"): "unresolved",
                             ("critic", "sobolev"): "unresolved",
                             ("sobolev", "backprop"): "missing"})
    self.assertIn("consistent but not resolved",
                  report.pair_statement("critic", "sobolev", top1)["text"])
    self.assertIn("not resolved", report.pair_statement("vfbn", "critic", top1)["text"])

  def test_one_seed_is_not_tested(self):
    line = report.pair_statement("noprop", "direct", {"noprop": [0.4], "direct": [0.5]})
    self.assertEqual(line["kind"], "untested")
    self.assertIn("holds on one seed, +10.0 points", line["text"])


class ReportTest(tf.test.TestCase):

  def _seeds(self, root, values, cosines=None):
    workdirs = []
    for seed, top1s in enumerate(values):
      workdir = os.path.join(root, f"seed{seed}")
      for method, top1 in top1s.items():
        _fake_run(workdir, method, top1, seed, cosines=(cosines or {}).get((seed, method)))
      workdirs.append(workdir)
    return workdirs

  def test_table_tests_and_cosines(self):
    root = self.create_tempdir().full_path
    values = [dict(noprop=0.40, direct=0.50, vfbn=0.60, critic=0.61, sobolev=0.62, backprop=0.8),
              dict(noprop=0.42, direct=0.52, vfbn=0.62, critic=0.60, sobolev=0.63, backprop=0.81),
              dict(noprop=0.41, direct=0.51, vfbn=0.61, critic=0.62, sobolev=0.61, backprop=0.79)]
    # Steps up to half the run are left out of the mean; the second half averages 0.5 / 0.7.
    cosines = {(1, "sobolev"): {100: [0.0, 0.0], 600: [0.4, 0.6], 1000: [0.6, 0.8]},
               (2, "sobolev"): {700: [0.3, 0.5], 900: [0.7, 0.9]}}
    workdirs = self._seeds(root, values, cosines)
    _fake_run(os.path.join(root, "seed3"), "vfbn", 0.9, 3, finished=False)
    output = os.path.join(self.create_tempdir().full_path, "cifar10")
    text = report.write_report(workdirs + [os.path.join(root, "seed3")], "cifar10_cpu", output,
                               "python scripts/sg_report.py")
    self.assertIn("| Noprop | 54.5% +- 1.15 | 41.0 +- 1.0 | 40.0 (seed 0), 42.0 (seed 1), "
                  "41.0 (seed 2) |", text)
    self.assertIn("| Sobolev | 93.5% +- 0.01 | 62.0 +- 1.0 |", text)
    self.assertIn("| 3 | 0.50 +- 0.00 / 0.70 +- 0.00 (2 seeds) |", text)
    self.assertIn("Still running (not counted): VFBN (", text)
    self.assertIn("- Noprop < Direct SG: supported, Direct SG higher; +10.0 points", text)
    self.assertIn("- VFBN < Critic: not resolved", text)
    self.assertIn("In short, these runs support Noprop < Direct SG, Direct SG < VFBN, "
                  "Sobolev <= Backprop; they cannot resolve VFBN < Critic, Critic <= Sobolev", text)
    with open(output + ".md") as f:
      self.assertEqual(f.read(), text)
    rows = np.genfromtxt(output + ".csv", delimiter=",", names=True, dtype=None, encoding=None)
    self.assertLen(rows, 18)
    sobolev = rows[rows["method"] == "sobolev"]
    np.testing.assert_allclose(sobolev["cosine_1"][sobolev["seed"] == 1], [0.5], rtol=1e-6)
    np.testing.assert_array_equal(sobolev["cosine_samples"], [0, 2, 2])
    self.assertTrue(os.path.exists(output + ".png"))

  def test_step_logged_twice_counts_once(self):
    tb = os.path.join(self.create_tempdir().full_path, "tb")
    for value in (0.1, 0.9):  # Two event files, as a resumed run leaves.
      writer = tf.summary.create_file_writer(tb, filename_suffix=f".{value}")
      with writer.as_default():
        tf.summary.scalar("train/cosine_0", value, step=800)
      writer.close()
    cosines = report.read_cosines(tb, after_step=500)
    self.assertEqual(cosines["samples"], 1)
    self.assertIn(cosines["cosines"][1], (np.float32(0.1), np.float32(0.9)))
    self.assertIsNone(report.read_cosines(tb, after_step=800))

  def test_seed_counted_twice_is_refused(self):
    root = self.create_tempdir().full_path
    for name in ("a", "b"):
      _fake_run(os.path.join(root, name), "noprop", 0.4, seed=1)
    with self.assertRaisesRegex(ValueError, "both hold seed 1"):
      report.write_report([os.path.join(root, "a"), os.path.join(root, "b")], "cifar10_cpu",
                          os.path.join(root, "out"), "cmd")

  def test_seeds_of_different_configs_are_refused(self):
    root = self.create_tempdir().full_path
    _fake_run(os.path.join(root, "a"), "vfbn", 0.6, seed=0, config=dict(learning_rate=0.1))
    _fake_run(os.path.join(root, "b"), "vfbn", 0.6, seed=1, config=dict(learning_rate=0.2))
    with self.assertRaisesRegex(ValueError, "vfbn: .* ran different configs: learning_rate"):
      report.write_report([os.path.join(root, "a"), os.path.join(root, "b")], "cifar10_cpu",
                          os.path.join(root, "out"), "cmd")

  def test_result_without_a_seed_is_named(self):
    root = self.create_tempdir().full_path
    run = os.path.join(root, "a", "noprop")
    os.makedirs(run)
    with open(os.path.join(run, "result.json"), "w") as f:
      json.dump(dict(finished=True, steps=10, test_top1=0.4, test_top5=0.8), f)
    with self.assertRaisesRegex(ValueError, "result.json names no seed"):
      report.write_report([os.path.join(root, "a")], "cifar10_cpu", os.path.join(root, "out"),
                          "cmd")


if __name__ == "__main__":
  tf.test.main()

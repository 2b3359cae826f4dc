"""The Table 1 report over seeds: table, Welch tests, cosines from TensorBoard logs, plot."""

import json
import math
import os

import numpy as np
import tensorflow as tf

from sobolev_tf.synthetic_gradients import report

STEPS = 1000


def _fake_run(workdir, method, top1, seed, finished=True, cosines=None, config=None,
              source=None):
  """A run directory as the trainer leaves it; ``cosines``: ``{step: [split values]}``.

  ``config=False``: a result that records its seed and ``source`` but no config.
  """
  run = os.path.join(workdir, method)
  os.makedirs(run)
  with open(os.path.join(run, "curve.csv"), "w") as f:
    f.write("step,images,wall_seconds,train_loss,test_top1,test_top5\n")
    f.write(f"500,32000,30,1.5,{top1 / 2},{top1}\n"
            f"{STEPS},64000,60,1.2,{top1},{min(1.0, top1 + 0.2)}\n")
  if finished:
    result = dict(finished=True, steps=STEPS, test_top1=top1, test_top5=min(1.0, top1 + 0.2))
    if config is False:
      result.update(seed=seed, source=source)
    else:
      result["config"] = dict(config or {}, seed=seed, method=method, num_steps=STEPS)
    with open(os.path.join(run, "result.json"), "w") as f:
      json.dump(result, f)
  if cosines:
    _write_events(os.path.join(run, "tb"), cosines)


def _write_events(tb, cosines, tag="train/cosine_{}", name=None):
  """One event file of ``{step: [value per split]}``; renamed to ``name`` if given."""
  os.makedirs(tb, exist_ok=True)
  before = set(os.listdir(tb))
  writer = tf.summary.create_file_writer(tb)
  with writer.as_default():
    for step, values in cosines.items():
      for k, value in enumerate(values):
        tf.summary.scalar(tag.format(k), value, step=step)
      tf.summary.scalar("train/loss", 1.0, step=step)
  writer.close()
  if name:
    (new,) = set(os.listdir(tb)) - before
    os.rename(os.path.join(tb, new), os.path.join(tb, name))


def _welch_by_hand(a, b):
  """t and Welch-Satterthwaite degrees of freedom, written out."""
  va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
  return (np.mean(b) - np.mean(a)) / math.sqrt(va + vb), (va + vb)**2 / (
      va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))


def _by_pair(top1):
  return {(t["a"], t["b"]): t for t in report.ordering_statements(top1)}


class OrderingTest(tf.test.TestCase):

  def test_welch_matches_the_closed_form(self):
    from scipy import stats  # pylint: disable=g-import-not-at-top
    a, b = [0.60, 0.62, 0.65], [0.66, 0.70, 0.71]
    t, df = _welch_by_hand(a, b)
    test = _by_pair({"vfbn": a, "critic": b})[("vfbn", "critic")]
    self.assertAllClose([test["t"], test["df"], test["p"]], [t, df, 2 * stats.t.sf(t, df)])
    half = stats.t.ppf(0.975, df) * (np.mean(b) - np.mean(a)) / t
    self.assertAllClose([test["low"], test["high"]],
                        [np.mean(b) - np.mean(a) - half, np.mean(b) - np.mean(a) + half])
    self.assertIn(f"Welch t = {t:.2f}, df = {df:.1f}, p = {test['p']:.2g}", test["text"])
    self.assertEqual(test["kind"], "supported")

  def test_holm(self):
    self.assertAllClose(report.holm([0.01, 0.04, 0.03, 0.5]), [0.04, 0.09, 0.09, 0.5])
    self.assertAllClose(report.holm([0.3, 0.2]), [0.4, 0.4])  # Monotone in the p order.

  def test_verdicts(self):
    top1 = {"noprop": [0.40, 0.41, 0.39], "direct": [0.60, 0.61, 0.59],
            "vfbn": [0.50, 0.51, 0.49], "critic": [0.50, 0.55, 0.45],
            "sobolev": [0.52, 0.44, 0.56]}
    tests = _by_pair(top1)
    self.assertEqual({k: t["kind"] for k, t in tests.items()},
                     {("noprop", "direct"): "supported", ("direct", "vfbn"): "reversed",
                      ("vfbn", "critic"): "unresolved", ("critic", "sobolev"): "unresolved",
                      ("sobolev", "backprop"): "missing"})
    self.assertIn("Critic <= Sobolev: consistent but not resolved",
                  tests[("critic", "sobolev")]["text"])
    self.assertIn("VFBN < Critic: not resolved", tests[("vfbn", "critic")]["text"])
    # A <= pair whose later method is lower is not "consistent".
    lower = _by_pair({"critic": [0.50, 0.55, 0.45], "sobolev": [0.49, 0.54, 0.44]})
    self.assertIn("Critic <= Sobolev: not resolved", lower[("critic", "sobolev")]["text"])
    reversed_ = _by_pair({"critic": [0.60, 0.61, 0.62], "sobolev": [0.50, 0.51, 0.52]})
    self.assertEqual(reversed_[("critic", "sobolev")]["kind"], "reversed")

  def test_holm_is_applied_over_the_tested_pairs(self):
    # Four tested pairs, each significant alone; Holm keeps only the clearest.
    top1 = {"noprop": [0.40, 0.41, 0.42], "direct": [0.50, 0.51, 0.52],
            "vfbn": [0.54, 0.56, 0.58], "critic": [0.59, 0.61, 0.63],
            "sobolev": [0.64, 0.66, 0.68]}
    tests = report.ordering_statements(top1)
    self.assertEqual([t["kind"] for t in tests], ["supported"] * 4 + ["missing"])
    self.assertAllClose([t["p_holm"] for t in tests[:4]], report.holm([t["p"] for t in tests[:4]]))
    self.assertEqual([t["holm_significant"] for t in tests], [True, False, False, False, False])
    summary = report._summary(tests)  # pylint: disable=protected-access
    self.assertIn("After Holm's correction for the 4 tests, Noprop < Direct SG remains "
                  "significant.", summary)

  def test_no_test_without_two_seeds_or_spread(self):
    one = _by_pair({"noprop": [0.4], "direct": [0.5, 0.52, 0.51]})[("noprop", "direct")]
    self.assertEqual(one["kind"], "untested")
    self.assertIn("+11.0 points (40.0% vs 51.0%); no test: fewer than 2 seeds of Noprop.",
                  one["text"])
    flat = _by_pair({"noprop": [0.4, 0.4], "direct": [0.5, 0.5]})[("noprop", "direct")]
    self.assertIn("no test: no spread over the seeds.", flat["text"])


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
    workdirs = [os.path.join(root, f"seed{seed}") for seed in range(3)]
    for method, top1 in values[0].items():  # Seed 0 as a transcribed record: no config.
      _fake_run(workdirs[0], method, top1, 0, config=False, source="transcribed, rounded.")
    # Steps up to half the run are left out of the mean; the second half averages
    # 0.5 / 0.7 (seed 1) and 0.3 / 0.5 (seed 2).
    cosines = {1: {100: [0.0, 0.0], 600: [0.4, 0.6], 1000: [0.6, 0.8]},
               2: {700: [0.2, 0.4], 900: [0.4, 0.6]}}
    for seed in (1, 2):
      for method, top1 in values[seed].items():
        _fake_run(workdirs[seed], method, top1, seed,
                  cosines=cosines[seed] if method == "sobolev" else None)
    # Another summary named like a cosine is not one of the trainer's.
    _write_events(os.path.join(workdirs[1], "sobolev", "tb"), {800: [99.0]},
                  tag="eval/cosine_{}")
    _fake_run(os.path.join(root, "seed3"), "vfbn", 0.9, 3, finished=False)
    os.makedirs(os.path.join(root, "seed3", "critic", "tb"))  # Started, nothing evaluated.
    output = os.path.join(self.create_tempdir().full_path, "cifar10")
    text = report.write_report(workdirs + [os.path.join(root, "seed3")], "cifar10_cpu", output,
                               "python scripts/sg_report.py")
    self.assertIn("| Noprop | 54.5% +- 1.15 | 41.0 +- 1.0 | 40.0 (seed 0), 42.0 (seed 1), "
                  "41.0 (seed 2) |", text)
    self.assertIn("| Sobolev | 93.5% +- 0.01 | 62.0 +- 1.0 |", text)
    self.assertIn("| 3 | 0.40 +- 0.14 / 0.60 +- 0.14 (2 seeds) |", text)
    self.assertIn("Seed 0: transcribed, rounded.", text)
    self.assertIn(f"Not checked against the other seeds' config (none recorded): {workdirs[0]}: "
                  "all methods.", text)
    self.assertIn("Started, not finished (not counted): VFBN (", text)
    self.assertIn("Critic (" + os.path.join(root, "seed3") + ")", text)
    self.assertIn("- Noprop < Direct SG: supported, Direct SG higher; +10.0 points", text)
    self.assertIn("- VFBN < Critic: not resolved", text)
    self.assertIn("In short, these runs support Noprop < Direct SG, Direct SG < VFBN, "
                  "Sobolev <= Backprop; they cannot resolve VFBN < Critic, Critic <= Sobolev. "
                  "After Holm's correction for the 5 tests, Noprop < Direct SG, Direct SG < VFBN, "
                  "Sobolev <= Backprop remain significant.", text)
    with open(output + ".md") as f:
      self.assertEqual(f.read(), text)
    rows = np.genfromtxt(output + ".csv", delimiter=",", names=True, dtype=None, encoding=None)
    self.assertLen(rows, 18)
    sobolev = rows[rows["method"] == "sobolev"]
    np.testing.assert_allclose(sobolev["cosine_1"][1:], [0.5, 0.3], rtol=1e-6)
    np.testing.assert_array_equal(sobolev["cosine_samples"], [0, 2, 2])
    self.assertTrue(os.path.exists(output + ".png"))

  def test_a_resumed_segment_replaces_the_killed_one_from_its_first_step(self):
    tb = os.path.join(self.create_tempdir().full_path, "tb")
    # The killed segment logged 900 after its last checkpoint; the resumed one
    # starts at 800. Files are taken in creation order (999 s before 1000 s).
    _write_events(tb, {600: [0.1], 800: [0.2], 900: [0.3]}, name="events.out.tfevents.999.host")
    _write_events(tb, {800: [0.9], 1000: [0.7]}, name="events.out.tfevents.1000.host")
    cosines = report.read_cosines(tb, after_step=500)
    self.assertEqual(cosines["samples"], 3)
    self.assertAllClose(cosines["cosines"][1], (0.1 + 0.9 + 0.7) / 3)
    self.assertAllClose(report.read_cosines(tb, after_step=800)["cosines"][1], 0.7)
    self.assertIsNone(report.read_cosines(tb, after_step=1000))

  def test_configs_are_compared_past_a_run_without_one(self):
    root = self.create_tempdir().full_path
    _fake_run(os.path.join(root, "a"), "vfbn", 0.6, seed=0, config=False)
    _fake_run(os.path.join(root, "b"), "vfbn", 0.6, seed=1, config=dict(learning_rate=0.1))
    _fake_run(os.path.join(root, "c"), "vfbn", 0.6, seed=2, config=dict(learning_rate=0.2))
    with self.assertRaisesRegex(ValueError, "vfbn: .*b and .*c ran different configs"):
      report.write_report([os.path.join(root, d) for d in "abc"], "cifar10_cpu",
                          os.path.join(root, "out"), "cmd")

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

"""The Table 1 report from run directories: table, ordering statements, plot."""

import json
import os

import tensorflow as tf

from sobolev_tf.synthetic_gradients import report


def _fake_run(workdir, method, top1, finished=True):
  run = os.path.join(workdir, method)
  os.makedirs(run)
  with open(os.path.join(run, "curve.csv"), "w") as f:
    f.write("step,test_top1,test_top5,wall_seconds\n")
    f.write(f"500,{top1 / 2},{top1},30\n1000,{top1},{min(1.0, top1 + 0.2)},60\n")
  if finished:
    with open(os.path.join(run, "result.json"), "w") as f:
      json.dump({"finished": True, "test_top1": top1}, f)


class ReportTest(tf.test.TestCase):

  def test_table_and_ordering(self):
    workdir = self.create_tempdir().full_path
    for method, top1 in [("noprop", 0.4), ("direct", 0.5), ("vfbn", 0.45), ("backprop", 0.8)]:
      _fake_run(workdir, method, top1)
    _fake_run(workdir, "sobolev", 0.6, finished=False)
    output = os.path.join(self.create_tempdir().full_path, "cifar10")
    text = report.write_report(workdir, "cifar10_cpu", output, "python scripts/sg_report.py")
    self.assertIn("| Noprop | 54.5% +- 1.15 | 40.0% |", text)
    self.assertIn("| Critic | 93.2% +- 0.02 | - | - | - | - | not run yet |", text)
    self.assertIn("running (last evaluation so far)", text)
    self.assertIn("- Noprop < Direct SG: holds (40.0% vs 50.0%)", text)
    self.assertIn("- Direct SG < VFBN: does NOT hold (50.0% vs 45.0%)", text)
    self.assertIn("Not yet comparable (runs missing or unfinished): Critic, Sobolev.", text)
    with open(output + ".md") as f:
      self.assertEqual(f.read(), text)
    self.assertTrue(os.path.exists(output + ".png"))


if __name__ == "__main__":
  tf.test.main()

"""Atomic writes: every writer's output lands under the name asked for, nothing left behind."""

import os

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np
import tensorflow as tf

from sobolev_tf import files


class FilesTest(tf.test.TestCase):

  def test_npz_figures_and_text_with_and_without_extensions(self):
    root = self.create_tempdir().full_path
    for name in ("a.npz", "b", "c.data"):
      path = os.path.join(root, name)
      files.save_npz_atomic(path, x=np.arange(3))
      self.assertAllEqual(np.load(path)["x"], [0, 1, 2])
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    for name in ("f.png", "g"):
      files.save_figure_atomic(fig, os.path.join(root, name))
      with open(os.path.join(root, name), "rb") as f:
        self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
    files.save_figure_atomic(fig, os.path.join(root, "h.pdf"))
    with open(os.path.join(root, "h.pdf"), "rb") as f:
      self.assertEqual(f.read(4), b"%PDF")
    plt.close(fig)
    files.write_text_atomic(os.path.join(root, "sub", "t.md"), "hello")
    with open(os.path.join(root, "sub", "t.md")) as f:
      self.assertEqual(f.read(), "hello")
    self.assertEmpty([n for n in os.listdir(root) if ".tmp" in n])

  def test_csv_round_trip_missing_cells_and_errors(self):
    path = os.path.join(self.create_tempdir().full_path, "rows.csv")
    rows = [dict(step=1, split="test", kl=0.1 + 0.2), dict(step=2, split="a,b", kl=1e-17, extra=3)]
    files.write_csv(path, rows)
    with open(path) as f:
      self.assertEqual(f.readline(), "step,split,kl,extra\n")
    back = files.read_csv(path, types=dict(step=int, kl=float, extra=int))
    self.assertEqual(back, [dict(step=1, split="test", kl=0.1 + 0.2),
                            dict(step=2, split="a,b", kl=1e-17, extra=3)])  # Exact floats.
    with self.assertRaisesRegex(ValueError, "rows.csv: expected columns step,kl"):
      files.read_csv(path, columns=("step", "kl"))
    with self.assertRaisesRegex(ValueError, "Malformed CSV file .*rows.csv"):
      files.read_csv(path, types=dict(split=float))
    with self.assertRaises(ValueError):
      files.write_csv(path, [dict(a=1)], columns=("b",))  # A key outside the columns.

  def test_a_failed_write_keeps_the_old_file(self):
    path = os.path.join(self.create_tempdir().full_path, "keep.md")
    files.write_text_atomic(path, "old")

    def failing(tmp):
      with open(tmp, "w") as f:
        f.write("half")
      raise RuntimeError("killed")

    with self.assertRaisesRegex(RuntimeError, "killed"):
      files.write_atomic(path, failing)
    with open(path) as f:
      self.assertEqual(f.read(), "old")


if __name__ == "__main__":
  tf.test.main()

"""Atomic writes: every writer's output lands under the name asked for, nothing left behind."""

import os
import signal

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

  def test_a_directory_write_killed_while_writing_is_cleaned_up_by_the_next(self):
    path = os.path.join(self.create_tempdir().full_path, "served")

    def save(tmp, text="model"):
      with open(os.path.join(tmp, "saved_model.pb"), "w") as f:
        f.write(text)

    files.write_saved_model_atomic(path, save)

    def killed(tmp):  # Leaves what tf.saved_model.save leaves: a temporary of its own.
      with open(os.path.join(tmp, "saved_model.pb.tmp1f2e3d"), "w") as f:
        f.write("half")
      os.kill(os.getpid(), signal.SIGKILL)

    pid = os.fork()
    if pid == 0:
      try:
        files.write_saved_model_atomic(path, killed)
      finally:
        os._exit(1)
    self.assertEqual(os.waitpid(pid, 0)[1], signal.SIGKILL)
    self.assertIn("saved_model.pb.tmp1f2e3d", os.listdir(path + ".tmp"))
    files.write_saved_model_atomic(path, lambda tmp: save(tmp, "newer"))
    self.assertEqual(sorted(os.listdir(os.path.dirname(path))), ["served"])
    self.assertEqual(os.listdir(path), ["saved_model.pb"])
    with open(os.path.join(path, "saved_model.pb")) as f:
      self.assertEqual(f.read(), "newer")

  def test_entries_are_patterns(self):
    path = os.path.join(self.create_tempdir().full_path, "weights")
    os.makedirs(path)
    for name in ("weights.index", "weights.data-00000-of-00002", "weights.data-00001-of-00002"):
      open(os.path.join(path, name), "w").close()
    files.check_directory_destination(path, ("weights.index", "weights.data-*"), "weights")
    open(os.path.join(path, "notes.txt"), "w").close()
    with self.assertRaisesRegex(ValueError, r"weights holds files that are not part of weights "
                                r"\(notes.txt\)"):
      files.check_directory_destination(path, ("weights.index", "weights.data-*"), "weights")


if __name__ == "__main__":
  tf.test.main()

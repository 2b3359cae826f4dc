"""examples/sobolev_training.ipynb runs top to bottom (shrunk), and matches its generator."""

import base64
import importlib.util
import os
import re

import nbformat
import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(ROOT, "examples", "sobolev_training.ipynb")


def load_generator():
  spec = importlib.util.spec_from_file_location(
      "make_notebook", os.path.join(ROOT, "examples", "make_notebook.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


class NotebookTest(tf.test.TestCase):

  def test_committed_notebook_is_the_generators_with_its_plots(self):
    committed = nbformat.read(NOTEBOOK, as_version=4)
    built = load_generator().build()
    self.assertEqual([(c.cell_type, c.source) for c in committed.cells],
                     [(c.cell_type, c.source) for c in built.cells])
    images = [base64.b64decode(o["data"]["image/png"]) for c in committed.cells
              if c.cell_type == "code" for o in c.get("outputs", ())
              if "image/png" in o.get("data", {})]
    self.assertLen(images, 4)  # Fits, gradient fields, error against size, the surrogates.
    self.assertTrue(all(i.startswith(b"\x89PNG") for i in images))
    errors = [o for c in committed.cells for o in c.get("outputs", ())
              if o.get("output_type") == "error"]
    self.assertEmpty(errors)
    text = "".join(o.get("text", "") for c in committed.cells if c.cell_type == "code"
                   for o in c.outputs)
    self.assertIn("'quick': False", text)  # The committed outputs are the full-size run.
    self.assertNotIn("cuInit", text)
    # What the notebook shows: the gradient term helps the smooth network at every size.
    sizes = re.findall(r"^ *(\d+) points: test MSE regular \S+  Sobolev \S+  ratio ([\d.]+)$",
                       text, re.M)
    self.assertLen(sizes, 5)
    self.assertTrue(all(float(ratio) < 1 for _, ratio in sizes), sizes)

  def test_runs_top_to_bottom_quickly(self):
    generator = load_generator()
    nb = nbformat.read(NOTEBOOK, as_version=4)
    previous = os.environ.get("SOBOLEV_NOTEBOOK_QUICK")
    os.environ["SOBOLEV_NOTEBOOK_QUICK"] = "1"  # The kernel inherits it.
    try:
      generator.execute(nb, timeout=600)
    finally:
      if previous is None:
        del os.environ["SOBOLEV_NOTEBOOK_QUICK"]
      else:
        os.environ["SOBOLEV_NOTEBOOK_QUICK"] = previous
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                   for o in c.outputs)
    self.assertIn("'quick': True", text)
    self.assertIn("ratio", text)
    self.assertIn("student (values + Jacobians)", text)
    self.assertIn("differential: 512 paths, test RMSE x 100 of the price", text)
    self.assertIn("relu: ", text)
    self.assertNotIn("cuInit", text)


if __name__ == "__main__":
  tf.test.main()

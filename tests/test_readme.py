"""The README's library example runs as written."""

import os
import re

import tensorflow as tf


class ReadmeTest(tf.test.TestCase):

  def test_library_example_runs(self):
    readme = os.path.join(os.path.dirname(__file__), "..", "README.md")
    with open(readme) as f:
      code = re.search(r"```python\n(import numpy as np.*?)```", f.read(), re.S).group(1)
    namespace = {}
    exec(compile(code.replace("range(100)", "range(30)"), "README.md", "exec"), namespace)  # pylint: disable=exec-used
    self.assertEqual(set(namespace["terms"]), {"value", "derivative_1", "total"})
    self.assertTrue(bool(tf.math.is_finite(namespace["loss"])))

  def test_estimator_example_runs(self):
    readme = os.path.join(os.path.dirname(__file__), "..", "README.md")
    with open(readme) as f:
      text = f.read()
    section = text[text.index("### One call: `SobolevRegressor`"):text.index("### Keras\n")]
    (code,) = re.findall(r"```python\n(.*?)```", section, re.S)
    code = code.replace("/tmp/", self.create_tempdir().full_path + "/")
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)  # pylint: disable=exec-used
    self.assertEqual(namespace["deltas"].shape, (1024, 7))
    self.assertLess(namespace["rmse"], 0.2)  # The comment says about 0.1.

  def test_keras_examples_run(self):
    readme = os.path.join(os.path.dirname(__file__), "..", "README.md")
    with open(readme) as f:
      text = f.read()
    section = text[text.index("### Keras\n"):text.index("## Results\n")]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    self.assertLen(blocks, 4)  # fit, distillation, scaling, serving.
    tmp = self.create_tempdir().full_path
    namespace = {}
    for code in blocks:
      code = code.replace("/tmp/", tmp + "/")
      exec(compile(code, "README.md", "exec"), namespace)  # pylint: disable=exec-used
    self.assertEqual(set(namespace["history"].history),
                     {"loss", "value_loss", "derivative_1_loss", "mae"})
    self.assertEqual(namespace["out"]["derivative"].shape, (5, 1, 2))
    self.assertEqual(namespace["dy_pred"].shape, (256, 1, 2))


if __name__ == "__main__":
  tf.test.main()

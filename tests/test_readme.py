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


if __name__ == "__main__":
  tf.test.main()

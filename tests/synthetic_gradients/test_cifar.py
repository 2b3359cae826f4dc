"""CIFAR-10 pipeline (the real offline copy) and the split SM 4.2 network."""

import os

import numpy as np
import tensorflow as tf

from sobolev_tf.synthetic_gradients import cifar

DATA_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "tensorflow_datasets")


class CifarTest(tf.test.TestCase):

  def test_pipeline_on_the_real_data(self):
    if not os.path.isdir(os.path.join(DATA_DIR, "cifar10")):
      self.skipTest(f"no CIFAR-10 at {DATA_DIR}")
    images, labels = next(iter(cifar.load_cifar10("test", 16, DATA_DIR)))
    self.assertEqual(images.shape, [16, 32, 32, 3])
    self.assertEqual(labels.dtype, tf.int32)
    self.assertBetween(float(tf.reduce_mean(images)), -1.0, 1.0)
    aug, _ = next(iter(cifar.load_cifar10("train", 8, DATA_DIR, augment=True, seed=3)))
    aug2, _ = next(iter(cifar.load_cifar10("train", 8, DATA_DIR, augment=True, seed=3)))
    self.assertAllEqual(aug, aug2)  # Deterministic for a seed.

  def test_images_decoded_by_the_pipeline_equal_tfds_decoding(self):
    if not os.path.isdir(os.path.join(DATA_DIR, "cifar10")):
      self.skipTest(f"no CIFAR-10 at {DATA_DIR}")
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    images, _ = next(iter(cifar.load_cifar10("test", 8, DATA_DIR)))
    decoded = tfds.load("cifar10", split="test[:8]", data_dir=DATA_DIR, download=False,
                        batch_size=8)
    expected = (tf.cast(next(iter(decoded))["image"], tf.float32) / 255.0 - cifar.MEAN) / cifar.STD
    self.assertAllEqual(images, expected)

  def test_missing_data_dir_is_named(self):
    with self.assertRaisesRegex(ValueError, "No cifar10 in data_dir=./nonexistent."):
      cifar.load_cifar10("train", 8, "/nonexistent")

  def test_split_network_shapes(self):
    parts = cifar.split_network(widths=(4, 4, 8, 8), strides=(1, 2, 1, 2), splits=(1, 3))
    self.assertLen(parts, 3)
    x = tf.zeros([2, 32, 32, 3])
    h0 = parts[0](x)
    h1 = parts[1](h0)
    self.assertEqual(h0.shape, [2, 32, 32, 4])
    self.assertEqual(h1.shape, [2, 16, 16, 8])
    self.assertEqual(parts[2](h1).shape, [2, 10])
    paper = cifar.split_network()
    self.assertLen(paper, 4)
    self.assertLen(sum((p.blocks for p in paper), []), 11)
    with self.assertRaisesRegex(ValueError, "splits"):
      cifar.split_network(splits=(5, 2))


if __name__ == "__main__":
  tf.test.main()

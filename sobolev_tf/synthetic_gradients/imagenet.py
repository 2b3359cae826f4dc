"""ImageNet (SM section 4.3): ResNet-50 split for synthetic gradients, TFDS pipeline.

``imagenet2012`` needs a manual download, so nothing here runs on it in this
repository; the tests run the whole path on tiny TFDS files (``tests/fake_tfds.py``).

Splits: the SM attaches the single SG module "after second ResNet block"; a
ResNet-50 has four block groups (stages of 3, 4, 6, 3 bottleneck blocks) and the
split is read as after the second group (28x28x512 for 224x224 inputs). The
three-module variant cuts after each of the first three groups.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import sonnet as snt
import tensorflow as tf

from sobolev_tf.synthetic_gradients import data

__all__ = ["ONE_MODULE_SPLITS", "THREE_MODULE_SPLITS", "split_resnet50", "load_imagenet"]

ONE_MODULE_SPLITS = (2,)
THREE_MODULE_SPLITS = (1, 2, 3)
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


class _ResNetPart(snt.Module):
  """Block groups ``[start, stop)`` of a ``snt.nets.ResNet50``, with its stem or head."""

  def __init__(self, resnet: snt.nets.ResNet50, start: int, stop: int, name=None):
    super().__init__(name=name)
    self.start, self.stop = start, stop  # No reference to resnet: it would own all variables.
    # pylint: disable=protected-access
    self.stem = (resnet._initial_conv, resnet._initial_batchnorm) if start == 0 else None
    self.groups = resnet._block_groups[start:stop]
    self.head = resnet._logits if stop == 4 else None
    # pylint: enable=protected-access

  def __call__(self, x: tf.Tensor, is_training: bool = True) -> tf.Tensor:
    if self.stem is not None:  # As snt.nets.ResNet (v1).
      conv, bn = self.stem
      x = tf.nn.relu(bn(conv(x), is_training=is_training))
      x = tf.nn.max_pool2d(x, ksize=3, strides=2, padding="SAME")
    for group in self.groups:
      x = group(x, is_training)
    if self.head is not None:
      x = self.head(tf.reduce_mean(x, axis=[1, 2]))
    return x


def split_resnet50(splits: Sequence[int] = ONE_MODULE_SPLITS,
                   num_classes: int = 1000) -> List[snt.Module]:
  """A ``snt.nets.ResNet50`` as ``len(splits) + 1`` parts cut after ``splits`` block groups."""
  if list(splits) != sorted(set(splits)) or not all(0 < s < 4 for s in splits):
    raise ValueError(f"splits must be increasing block-group counts in (0, 4), got {splits}.")
  resnet = snt.nets.ResNet50(num_classes)
  bounds = [0] + list(splits) + [4]
  return [_ResNetPart(resnet, a, b, name=f"part{k}")
          for k, (a, b) in enumerate(zip(bounds[:-1], bounds[1:]))]


def _inception_crop(image: tf.Tensor, size: int, seed: tf.Tensor) -> tf.Tensor:
  """Inception-style augmentation: random crop of 8-100% area, aspect 3/4-4/3, flip."""
  begin, crop_size, _ = tf.image.stateless_sample_distorted_bounding_box(
      tf.shape(image), tf.zeros([1, 0, 4]), seed=seed, min_object_covered=0.1,
      aspect_ratio_range=(3 / 4, 4 / 3), area_range=(0.08, 1.0), max_attempts=10,
      use_image_if_no_bounding_boxes=True)
  image = tf.slice(image, begin, crop_size)
  image = tf.image.resize(image, [size, size])
  return tf.image.stateless_random_flip_left_right(image, seed=seed + 1)


def _center_crop(image: tf.Tensor, size: int) -> tf.Tensor:
  """Evaluation: central 87.5% crop, resized."""
  return tf.image.resize(tf.image.central_crop(image, 0.875), [size, size])


def load_imagenet(split: str, batch_size: int, data_dir: Optional[str] = None,
                  augment: bool = False, seed: int = 0, repeat: bool = False,
                  image_size: int = 224, shard: Tuple[int, int] = (1, 0)) -> tf.data.Dataset:
  """Batches of (normalised float images, int32 labels) from TFDS ``imagenet2012``, offline."""
  ds = data.load_split("imagenet2012", split, data_dir,
                       "imagenet2012 needs a manual download, prepared with tfds.")
  if augment:
    preprocess = lambda image, s: _inception_crop(image, image_size, s)
  else:
    preprocess = lambda image, _: _center_crop(image, image_size)
  return data.image_batches(ds, batch_size, MEAN, STD, preprocess,
                            shuffle_seed=seed if augment else None, repeat=repeat,
                            shard=shard)

"""CIFAR-10 data and the SM section 4.2 network, split for synthetic gradients.

Network (SM 4.2): the SM lists 11 conv layers with BatchNorm
and ReLU, widths 64, 64, 128 (stride 2), 128, 128, 256 (stride 2), 256, 256, 512
(stride 2), 512, 512, then a linear layer to 10 classes; L2 1e-4. The SM's list
is followed here. ``split_network`` cuts it into parts at the
given layer indices (3 SG modules in the paper: after layers 3, 6 and 9 here,
i.e. after each resolution stage; the paper does not say where).
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import sonnet as snt
import tensorflow as tf

from sobolev_tf.synthetic_gradients import data

__all__ = ["PAPER_WIDTHS", "PAPER_STRIDES", "PAPER_SPLITS", "split_network", "load_cifar10",
           "ConvBlock"]

PAPER_WIDTHS = (64, 64, 128, 128, 128, 256, 256, 256, 512, 512, 512)
PAPER_STRIDES = (1, 1, 2, 1, 1, 2, 1, 1, 2, 1, 1)
PAPER_SPLITS = (3, 6, 9)  # Part boundaries after these many conv layers.


class ConvBlock(snt.Module):
  """3x3 conv, BatchNorm, ReLU (without BatchNorm: conv with bias, ReLU).

  BatchNorm statistics are those of each replica's batch (the paper's workers each
  normalised their own batch of 32).
  """

  def __init__(self, channels: int, stride: int, batch_norm: bool = True,
               name: Optional[str] = None):
    super().__init__(name=name)
    self.conv = snt.Conv2D(channels, 3, stride=stride, with_bias=not batch_norm)
    self.bn = (snt.BatchNorm(create_scale=True, create_offset=True, decay_rate=0.99)
               if batch_norm else None)

  def __call__(self, x: tf.Tensor, is_training: bool = True) -> tf.Tensor:
    x = self.conv(x)
    if self.bn is not None:
      x = self.bn(x, is_training=is_training)
    return tf.nn.relu(x)


class _Part(snt.Module):

  def __init__(self, blocks: Sequence[snt.Module], head: Optional[snt.Module] = None, name=None):
    super().__init__(name=name)
    self.blocks = list(blocks)
    self.head = head

  def __call__(self, x: tf.Tensor, is_training: bool = True) -> tf.Tensor:
    for b in self.blocks:
      x = b(x, is_training=is_training)
    if self.head is not None:
      x = self.head(tf.reduce_mean(x, axis=[1, 2]))
    return x


def split_network(widths: Sequence[int] = PAPER_WIDTHS, strides: Sequence[int] = PAPER_STRIDES,
                  splits: Sequence[int] = PAPER_SPLITS, num_classes: int = 10,
                  batch_norm: bool = True) -> List[snt.Module]:
  """The conv net as ``len(splits) + 1`` parts; the last ends in the linear classifier.

  The SM lists the conv stack and "Linear layer with 10 outputs"; global average
  pooling before it is this implementation's choice (the SM does not say how
  the 4x4x512 map is flattened).
  """
  if len(widths) != len(strides):
    raise ValueError(f"widths ({len(widths)}) and strides ({len(strides)}) must match.")
  if list(splits) != sorted(splits) or not all(0 < s < len(widths) for s in splits):
    raise ValueError(f"splits must be increasing layer counts in (0, {len(widths)}), got {splits}.")
  blocks = [ConvBlock(w, s, batch_norm, name=f"conv{i}")
            for i, (w, s) in enumerate(zip(widths, strides))]
  bounds = [0] + list(splits) + [len(blocks)]
  parts = []
  for k, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
    head = snt.Linear(num_classes, name="logits") if b == len(blocks) else None
    parts.append(_Part(blocks[a:b], head, name=f"part{k}"))
  return parts


def _augment(image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
  """Standard CIFAR augmentation: 4-pixel zero padding, random 32x32 crop, flip."""
  padded = tf.pad(image, [[4, 4], [4, 4], [0, 0]])
  crop = tf.image.stateless_random_crop(padded, [32, 32, 3], seed=seed)
  return tf.image.stateless_random_flip_left_right(crop, seed=seed + 1)


MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)


def load_cifar10(split: str, batch_size: int, data_dir: Optional[str] = None,
                 augment: bool = False, seed: int = 0, repeat: bool = False,
                 shard: Tuple[int, int] = (1, 0)) -> tf.data.Dataset:
  """Batches of (normalised float images [B, 32, 32, 3], int32 labels) from TFDS, offline.

  ``data_dir`` defaults to ``$TFDS_DATA_DIR``; a missing dataset is a ValueError
  naming the directory (nothing is ever downloaded).
  """
  ds = data.load_split("cifar10", split, data_dir,
                       "Pass --data_dir or set TFDS_DATA_DIR, e.g. ../shared/tensorflow_datasets.")
  return data.image_batches(ds, batch_size, MEAN, STD, _augment if augment else None,
                            shuffle_seed=seed if augment else None, repeat=repeat,
                            image_shape=(32, 32, 3), shard=shard)

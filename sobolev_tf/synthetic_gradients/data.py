"""Offline TFDS image-classification pipelines shared by CIFAR-10 and ImageNet.

Nothing is ever downloaded: a missing dataset is a ValueError naming the
directory. Augmentation is stateless, seeded by ``(seed, example index)``, so a
pipeline is deterministic for a seed.
"""

from __future__ import annotations

import os
from typing import Callable, Optional, Sequence

import tensorflow as tf

__all__ = ["load_split", "image_batches"]

Preprocess = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]  # (image in [0, 1], seed) -> image


def load_split(name: str, split: str, data_dir: Optional[str], hint: str = "") -> tf.data.Dataset:
  """``tfds.load(name, split)`` from ``data_dir`` (default ``$TFDS_DATA_DIR``), offline."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  data_dir = data_dir or os.environ.get("TFDS_DATA_DIR")
  missing = f"No {name} in data_dir={data_dir!r} (expected <data_dir>/{name}/). {hint}".strip()
  if data_dir is not None and not os.path.isdir(data_dir):
    raise ValueError(missing)
  try:
    return tfds.load(name, split=split, data_dir=data_dir, download=False)
  except (AssertionError, tfds.core.registered.DatasetNotFoundError) as e:
    raise ValueError(f"{missing} ({e})") from e


def image_batches(ds: tf.data.Dataset, batch_size: int, mean: Sequence[float],
                  std: Sequence[float], preprocess: Optional[Preprocess] = None,
                  shuffle_seed: Optional[int] = None, repeat: bool = False) -> tf.data.Dataset:
  """Batches of (normalised float images, int32 labels).

  With ``shuffle_seed`` the data are shuffled, ``preprocess`` (augmentation) gets
  a per-example seed and incomplete batches are dropped (training); without it the
  order is kept and every example is used (evaluation).
  """
  if repeat:
    ds = ds.repeat()
  training = shuffle_seed is not None
  if training:
    ds = ds.shuffle(10_000, seed=shuffle_seed)
  mean, std = tf.constant(mean), tf.constant(std)
  seed = tf.constant(shuffle_seed or 0, tf.int64)

  def prepare(index, example):
    image = tf.cast(example["image"], tf.float32) / 255.0
    if preprocess is not None:
      image = preprocess(image, tf.stack([seed, index]))
    return (image - mean) / std, tf.cast(example["label"], tf.int32)

  ds = ds.enumerate().map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
  return ds.batch(batch_size, drop_remainder=training).prefetch(tf.data.AUTOTUNE)

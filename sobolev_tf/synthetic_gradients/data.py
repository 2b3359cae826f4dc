"""Offline TFDS image-classification pipelines shared by CIFAR-10 and ImageNet.

Nothing is ever downloaded: a missing dataset is a ValueError naming the
directory. Augmentation is stateless, seeded by ``(seed, example index)``, so a
pipeline is deterministic for a seed. Images stay encoded until after the
shuffle and nothing is cached, so a checkpointed iterator saves a shuffle buffer
of PNG or JPEG bytes (about 1 KB per CIFAR-10 image, 110 KB per ImageNet one),
not pixels or a cached epoch.
"""

from __future__ import annotations

import os
from typing import Callable, Optional, Sequence, Tuple

import tensorflow as tf

__all__ = ["load_split", "image_batches"]

Preprocess = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]  # (image in [0, 1], seed) -> image


def load_split(name: str, split: str, data_dir: Optional[str], hint: str = "") -> tf.data.Dataset:
  """``tfds.load(name, split)`` from ``data_dir`` (default ``$TFDS_DATA_DIR``), offline.

  The ``image`` feature is left encoded (a string); ``image_batches`` decodes it.
  """
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  data_dir = data_dir or os.environ.get("TFDS_DATA_DIR")
  missing = f"No {name} in data_dir={data_dir!r} (expected <data_dir>/{name}/). {hint}".strip()
  if data_dir is not None and not os.path.isdir(data_dir):
    raise ValueError(missing)
  try:
    # No auto-cache: a checkpointed iterator would save the cached epoch with it.
    return tfds.load(name, split=split, data_dir=data_dir, download=False,
                     decoders={"image": tfds.decode.SkipDecoding()},
                     read_config=tfds.ReadConfig(try_autocache=False))
  except (AssertionError, tfds.core.registered.DatasetNotFoundError) as e:
    raise ValueError(f"{missing} ({e})") from e


def image_batches(ds: tf.data.Dataset, batch_size: int, mean: Sequence[float],
                  std: Sequence[float], preprocess: Optional[Preprocess] = None,
                  shuffle_seed: Optional[int] = None, repeat: bool = False,
                  image_shape: Optional[Sequence[int]] = None,
                  shard: Tuple[int, int] = (1, 0)) -> tf.data.Dataset:
  """Batches of (normalised float images, int32 labels) from encoded ``load_split`` examples.

  With ``shuffle_seed`` the data are shuffled, ``preprocess`` (augmentation) gets
  a per-example seed and incomplete batches are dropped (training); without it the
  order is kept and every example is used (evaluation). ``image_shape`` is checked
  after decoding. ``shard=(n, i)`` keeps every n-th example of the shuffled stream,
  from the i-th (one input pipeline of n); the augmentation seeds stay those of
  the whole stream.
  """
  num_shards, shard_index = shard
  if not 0 <= shard_index < num_shards:
    raise ValueError(f"shard={shard!r} must be (n, i) with 0 <= i < n.")
  if repeat:
    ds = ds.repeat()
  training = shuffle_seed is not None
  if training:
    ds = ds.shuffle(10_000, seed=shuffle_seed)
  mean, std = tf.constant(mean), tf.constant(std)
  seed = tf.constant(shuffle_seed or 0, tf.int64)

  def prepare(index, example):
    image = tf.io.decode_image(example["image"], channels=3, expand_animations=False)
    if image_shape is not None:
      image = tf.ensure_shape(image, image_shape)
    image = tf.cast(image, tf.float32) / 255.0
    if preprocess is not None:
      image = preprocess(image, tf.stack([seed, index]))
    return (image - mean) / std, tf.cast(example["label"], tf.int32)

  ds = ds.enumerate()
  if num_shards > 1:
    ds = ds.shard(num_shards, shard_index)
  ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
  return ds.batch(batch_size, drop_remainder=training).prefetch(tf.data.AUTOTUNE)

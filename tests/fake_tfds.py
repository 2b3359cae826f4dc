"""Tiny TFDS datasets written to disk: real TFRecord files that ``tfds.load`` reads offline.

``tfds.testing.mock_data`` feeds examples from a Python generator, whose state a
``tf.train.Checkpoint`` cannot save; the trainer checkpoints its input iterator,
so its tests read files like these instead.
"""

import os
from typing import Dict

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

# (split: number of examples) per dataset; ImageNet images get varying sizes.
SPLITS = {"cifar10": {"train": 64, "test": 32},
          "imagenet2012": {"train": 16, "validation": 8}}


def _example(features, split: str, index: int, rng: np.random.Generator) -> Dict:
  example = {}
  for key, feature in features.items():
    if isinstance(feature, tfds.features.Image):
      shape = [d if d is not None else int(rng.integers(36, 48)) for d in feature.shape]
      example[key] = rng.integers(0, 256, shape, dtype=np.uint8)
    elif isinstance(feature, tfds.features.ClassLabel):
      example[key] = int(rng.integers(feature.num_classes))
    else:  # Text ids and file names.
      example[key] = f"{split}_{index}"
  return example


def write(data_dir: str, name: str, seed: int = 0) -> str:
  """Writes ``data_dir/name/<version>`` with ``SPLITS[name]`` random examples; returns data_dir."""
  builder = tfds.builder(name, data_dir=data_dir)
  path = os.path.join(data_dir, name, str(builder.version))
  os.makedirs(path, exist_ok=True)
  rng = np.random.default_rng(seed)
  infos = []
  for split, count in SPLITS[name].items():
    template = tfds.core.ShardedFileTemplate(
        data_dir=path, template="{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}",
        dataset_name=name, split=split, filetype_suffix="tfrecord")
    with tf.io.TFRecordWriter(os.path.join(path, f"{name}-{split}.tfrecord-00000-of-00001")) as w:
      for i in range(count):
        w.write(builder.info.features.serialize_example(
            _example(builder.info.features, split, i, rng)))
    infos.append(tfds.core.SplitInfo(name=split, shard_lengths=[count], num_bytes=0,
                                     filename_template=template))
  builder.info.set_splits(tfds.core.SplitDict(infos))
  builder.info.write_to_directory(path)
  return data_dir

"""Data-parallel strategies for the synthetic-gradient trainer (section 4.3).

The paper (SM section 4) trained the main network with synchronous multi-GPU
updates and the SG modules Hogwild. Here both are synchronous: every replica
computes its share of the global batch, gradients are all-reduced (mean), and
every replica applies the same update to its replica-local copy of the
variables (Sonnet's ``Replicator`` programming model). Hogwild module updates
are the asynchronous relaxation of exactly this update.

* ``"mirrored"``: ``snt.distribute.Replicator`` (a ``MirroredStrategy``) over the
  local devices: one CPU here, all GPUs of a machine for users.
* ``"multi_worker"``: the same over several machines, a ``MultiWorkerMirroredStrategy``
  configured from ``TF_CONFIG``.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Optional, Sequence, Tuple

import sonnet as snt
import tensorflow as tf

__all__ = ["MultiWorkerReplicator", "make_strategy", "is_chief", "input_pipeline", "tf_config",
           "STRATEGIES"]

STRATEGIES = ("mirrored", "multi_worker")


class MultiWorkerReplicator(tf.distribute.MultiWorkerMirroredStrategy):
  """``MultiWorkerMirroredStrategy`` with replica-local variables, as ``snt.distribute.Replicator``.

  Variables created in ``scope()`` are replica local (ON_READ, first replica's
  value on read, initial values broadcast from the chief), so they can be
  updated in replica context by ``sobolev_tf.optimizers`` with all-reduced
  gradients.
  """

  @contextlib.contextmanager
  def scope(self):
    with contextlib.ExitStack() as stack:
      stack.enter_context(super().scope())
      stack.enter_context(tf.variable_creator_scope(replica_local_creator))
      yield


def replica_local_creator(next_creator, **kwargs) -> tf.Variable:
  """Variables default to replica local (as Sonnet's Replicator, whose creator is private)."""
  if kwargs["synchronization"] == tf.VariableSynchronization.AUTO:
    kwargs["synchronization"] = tf.VariableSynchronization.ON_READ
    if kwargs["aggregation"] == tf.VariableAggregation.NONE:
      kwargs["aggregation"] = tf.VariableAggregation.ONLY_FIRST_REPLICA
    if kwargs["trainable"] is None:
      kwargs["trainable"] = True
  return next_creator(**kwargs)


def make_strategy(kind: str = "mirrored",
                  devices: Optional[Sequence[str]] = None) -> tf.distribute.Strategy:
  """The strategy named ``kind`` (one of ``STRATEGIES``)."""
  if kind == "mirrored":
    return snt.distribute.Replicator(devices)
  if kind == "multi_worker":
    if "TF_CONFIG" not in os.environ:
      raise ValueError("strategy='multi_worker' needs TF_CONFIG (cluster and task) in the "
                       "environment; use strategy='mirrored' on one machine.")
    tf_config()  # Malformed: named here, not by TensorFlow's parser.
    return MultiWorkerReplicator()
  raise ValueError(f"Unknown strategy {kind!r}; known: {', '.join(STRATEGIES)}.")


def tf_config() -> dict:
  """The ``TF_CONFIG`` environment variable as a dict (empty if unset); a ValueError names it
  if it is not a JSON object."""
  text = os.environ.get("TF_CONFIG", "{}")
  try:
    value = json.loads(text)
  except ValueError as e:
    raise ValueError(f"TF_CONFIG is not valid JSON ({e}): {text[:200]!r}. Set it to "
                     '{"cluster": {...}, "task": {"type": ..., "index": ...}}.') from e
  if not isinstance(value, dict):
    raise ValueError(f"TF_CONFIG must be a JSON object with cluster and task, got {text[:200]!r}.")
  return value


def is_chief() -> bool:
  """True on the chief: without TF_CONFIG, its ``chief`` task, or worker 0 of a cluster
  without one. The chief writes checkpoints, curves and results."""
  config = tf_config()
  task = config.get("task")
  if not task:
    return True
  if task.get("type") == "chief":
    return True
  return (task.get("type") == "worker" and int(task.get("index", 0)) == 0
          and "chief" not in config.get("cluster", {}))


def input_pipeline(strategy: tf.distribute.Strategy) -> Tuple[int, int]:
  """(number of machines, this machine's index) of ``strategy``, chief first.

  Each machine reads its own shard of the training stream (``data.image_batches``);
  the numbering is MultiWorkerMirroredStrategy's (the chief, then the workers,
  from ``TF_CONFIG``). One machine for any other strategy, ``TF_CONFIG`` or not.
  """
  if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
    return 1, 0
  machines = strategy.num_replicas_in_sync // len(strategy.extended.worker_devices)
  config = tf_config()
  task = config.get("task")
  if not task:
    return 1, 0
  cluster = config.get("cluster", {})
  chiefs = len(cluster.get("chief", []))
  num = chiefs + len(cluster.get("worker", []))
  index = 0 if task.get("type") == "chief" else chiefs + int(task.get("index", 0))
  if num != machines:
    raise ValueError(f"TF_CONFIG lists {num} machines but the strategy has {machines} (replicas "
                     "must be spread evenly over the machines).")
  return num, index

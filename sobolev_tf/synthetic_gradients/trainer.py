"""Trainer of the synthetic-gradient experiments (section 4.3, Table 1) on ``tf.distribute``.

One trainer for CIFAR-10 (SM 4.2) and ImageNet (SM 4.3) and all six methods
(``synthetic_gradients.methods.METHODS``). Training state (network, SG modules, both
optimisers with their step counters, the training-data iterator) lives in a
``tf.train.Checkpoint`` under ``workdir/checkpoints``; a killed run resumes at its
last checkpoint and continues bit for bit as if it had not stopped (the
iterator's shuffle buffer, about 13 MB on CIFAR-10, is part of the checkpoint).
The chief writes ``workdir/curve.csv`` (one row per evaluation), TensorBoard
scalars under ``workdir/tb`` and ``workdir/result.json`` at the end, through one
``loggers.MetricsLogger``; a resumed run's curve keeps only the rows up to its
checkpoint.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import zlib
from typing import Callable, Dict, Optional, Tuple

import numpy as np
import tensorflow as tf

from sobolev_tf.synthetic_gradients import cifar
from sobolev_tf.synthetic_gradients import distribute
from sobolev_tf.synthetic_gradients import imagenet
from sobolev_tf import checks
from sobolev_tf import files
from sobolev_tf import loggers
from sobolev_tf import optimizers
from sobolev_tf.synthetic_gradients import methods as sg
from sobolev_tf import training
from sobolev_tf.training import PeriodicCheckpointer
from sobolev_tf.training import restore_checkpoint

__all__ = ["DATASETS", "build_model", "make_datasets", "make_evaluator", "train_and_evaluate"]

DATASETS = ("cifar10", "imagenet2012")
CURVE_COLUMNS = ("step", "images", "wall_seconds", "train_loss", "test_top1", "test_top5")
# Config keys a resumed run may change: its budget, evaluation and logging rhythm.
RESUMABLE_KEYS = ("num_steps", "steps_per_call", "eval_every", "eval_batch_size",
                  "checkpoint_minutes", "log_seconds")


def _check_dataset(name: str) -> str:
  if name not in DATASETS:
    raise ValueError(f"Unknown dataset {name!r}; known: {', '.join(DATASETS)}.")
  return name


def build_model(config) -> Tuple[list, list]:
  """The split main network and one SG module per split (none for backprop/noprop)."""
  dataset = _check_dataset(config.dataset)
  if dataset == "cifar10":
    parts = cifar.split_network(config.widths, config.strides, config.splits,
                                config.num_classes, batch_norm=config.batch_norm)
  else:
    parts = imagenet.split_resnet50(config.splits, config.num_classes)
  modules = []
  if config.method in sg.LOSS_PREDICTOR_METHODS:
    modules = [sg.LossPredictor(config.num_classes, config.module_channels,
                                config.module_strides, config.module_global_pool,
                                name=f"loss_predictor{k}") for k in range(len(parts) - 1)]
  elif config.method == "direct":
    modules = [sg.DirectSG(config.num_classes, config.direct_channels, name=f"direct_sg{k}")
               for k in range(len(parts) - 1)]
  return parts, modules


def make_datasets(config, data_dir: Optional[str], seed: int, shard: Tuple[int, int] = (1, 0)):
  """(repeated augmented train batches, test batches).

  Test batches have the global batch size. ``shard=(n, i)``: the train batches
  are machine ``i``'s share of the global batch, ``batch_size / n`` examples
  (``distribute.input_pipeline``).
  """
  dataset = _check_dataset(config.dataset)
  if config.batch_size % shard[0]:
    raise ValueError(f"batch_size={config.batch_size} is not divisible by the {shard[0]} machines.")
  if dataset == "cifar10":
    load = cifar.load_cifar10
    kwargs = {}
  else:
    load = imagenet.load_imagenet
    kwargs = dict(image_size=config.image_size)
  train = load("train", config.batch_size // shard[0], data_dir, augment=True, seed=seed,
               repeat=True, shard=shard, **kwargs)
  test = load(config.test_split, config.eval_batch_size, data_dir, **kwargs)
  if config.max_test_examples:
    test = test.unbatch().take(config.max_test_examples).batch(config.eval_batch_size)
  return train, test


def _top_k_correct(parts, images, labels) -> tf.Tensor:
  h = images
  for part in parts:
    h = part(h, is_training=False)
  top1 = tf.reduce_sum(tf.cast(tf.math.in_top_k(labels, h, 1), tf.float32))
  top5 = tf.reduce_sum(tf.cast(tf.math.in_top_k(labels, h, min(5, h.shape[-1])), tf.float32))
  return tf.stack([top1, top5, tf.cast(tf.shape(labels)[0], tf.float32)])


def make_evaluator(strategy, parts) -> Callable[[tf.data.Dataset], Dict[str, float]]:
  """``evaluate(test_dataset)``: test top-1 and top-5 (BatchNorm in inference mode).

  The compiled counting step is built once and reused by every evaluation.
  """

  @tf.function
  def count(batch):
    per_replica = strategy.run(lambda x, y: _top_k_correct(parts, x, y), args=batch)
    return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

  def evaluate(test_dataset: tf.data.Dataset) -> Dict[str, float]:
    totals = np.zeros(3)
    for batch in strategy.experimental_distribute_dataset(test_dataset):
      totals += count(batch).numpy()
    return {"test_top1": totals[0] / totals[2], "test_top5": totals[1] / totals[2]}

  return evaluate


CURVE_TYPES = dict(step=int, images=int, wall_seconds=float, train_loss=float, test_top1=float,
                    test_top5=float)


def _checkpoint_dir(workdir: str, chief: bool) -> str:
  """The chief writes ``workdir/checkpoints``; other workers a scratch copy (MWMS saves on
  all), kept until the run has finished: it holds their data iterator's state."""
  if chief:
    return os.path.join(workdir, "checkpoints")
  task = distribute.tf_config()["task"]
  return os.path.join(workdir, f"worker_scratch_{task['type']}_{task['index']}")


# Keys whose value may differ between machines: their saves and logs are agreed or local.
_LOCAL_KEYS = ("checkpoint_minutes", "log_seconds")


def _check_same_config_everywhere(strategy, config, replicas: int):
  """On several machines: refuses a run whose machines were given different configs.

  Runs before the model is built, whose variables the chief broadcasts: a config
  that differs on one machine (another learning rate or width) would otherwise
  train with mismatched updates, or fail in that broadcast. Returns the SUM
  collective over replicas (None on one machine).
  """
  if distribute.input_pipeline(strategy)[0] < 2:
    return None
  total = tf.function(lambda value: strategy.reduce(
      tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.identity(value)), axis=None))
  shared = {k: v for k, v in config.to_dict().items() if k not in _LOCAL_KEYS}
  fingerprint = zlib.crc32(json.dumps(shared, sort_keys=True, default=str).encode()) % (1 << 20)
  prints = total(tf.constant([fingerprint, fingerprint**2], tf.int64)).numpy()
  if prints[1] * replicas != prints[0]**2:  # Zero variance: one value on every replica.
    raise ValueError("The machines were given different configs: run the same command "
                     "(the same --config and overrides) on every machine.")
  return total


def train_and_evaluate(config, workdir: str, data_dir: Optional[str] = None,
                       log: Optional[Callable[[str], None]] = None,
                       max_seconds: Optional[float] = None) -> Dict:
  """Trains ``config.method`` for ``config.num_steps`` main-network updates, resumably.

  Returns the final metrics (also in ``workdir/result.json``). ``max_seconds``
  stops early after a checkpoint (the run resumes from there).
  """
  if config.method not in sg.METHODS:
    raise ValueError(f"Unknown method {config.method!r}; known: {', '.join(sg.METHODS)}.")
  checks.check_config(config, positive=("num_steps", "steps_per_call", "eval_every", "batch_size",
                                        "eval_batch_size", "learning_rate",
                                        "module_learning_rate", "num_classes"),
                      non_negative=("checkpoint_minutes", "log_seconds", "max_test_examples",
                                    "weight_decay", "momentum", "label_gradient_weight"))
  checks.check_writable_directory(workdir, "checkpoints and curve")
  strategy = distribute.make_strategy(config.strategy)
  # Only a multi-worker run has other workers (TF_CONFIG alone does not make one).
  chief = (not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
           or distribute.is_chief())
  replicas = strategy.num_replicas_in_sync
  total = _check_same_config_everywhere(strategy, config, replicas)
  if config.batch_size % replicas:
    raise ValueError(f"batch_size={config.batch_size} is not divisible by the "
                     f"{replicas} replicas.")
  with strategy.scope():
    tf.random.set_seed(config.seed)  # Initialisation; MWMS broadcasts the chief's values.
    parts, modules = build_model(config)
    schedule = optimizers.piecewise_constant(config.learning_rate, config.lr_boundaries,
                                             config.lr_decay_factor)
    main_opt = optimizers.MomentumSGD(schedule, config.momentum,
                                      weight_decay=config.weight_decay, name="main_optimizer")
    module_opt = optimizers.Adam(config.module_learning_rate, name="module_optimizer")
    step_fn = sg.SyntheticGradientStep(parts, modules, config.method, main_opt, module_opt,
                                       bootstrap=config.bootstrap,
                                       label_gradient_weight=config.label_gradient_weight)
    # Create every variable here, in the scope and outside replica context.
    x = tf.zeros([1, config.image_size, config.image_size, 3])
    y = tf.zeros([1], tf.int32)
    h = x
    for k, part in enumerate(parts):
      h = part(h, is_training=False)
      if k < len(modules):
        modules[k](h, y)
    main_opt.build(step_fn.main_variables())
    module_opt.build(step_fn.module_variables())
  shard = distribute.input_pipeline(strategy)
  train_ds, test_ds = make_datasets(config, data_dir, seed=config.seed * 1_000_003, shard=shard)
  # A plain iterator, split over the local replicas in the step: a distributed
  # iterator cannot be checkpointed, and a resumed run must see the same batches.
  iterator = iter(train_ds)
  ckpt = tf.train.Checkpoint(parts=parts, modules=modules, main_optimizer=main_opt,
                             module_optimizer=module_opt, train_iterator=iterator)
  manager = tf.train.CheckpointManager(ckpt, _checkpoint_dir(workdir, chief), max_to_keep=2)
  # The device layout decides the per-replica batch and BatchNorm statistics.
  record_path = os.path.join(workdir, "run_config.json")
  recorded = training.check_same_config(record_path,
                             dict(config.to_dict(), replicas=replicas, machines=shard[0]),
                             resuming=manager.latest_checkpoint is not None,
                             ignore=RESUMABLE_KEYS, hint="Use another --workdir.", record=chief)
  if manager.latest_checkpoint:
    restore_checkpoint(ckpt, manager.latest_checkpoint,
                       "Checkpoints without the data iterator (sobolev-tf < 0.3) cannot resume "
                       "exactly. Move it away to start again, or point --workdir elsewhere.")
  start_step = int(main_opt.step.numpy())
  local_replicas = len(strategy.extended.worker_devices)
  per_replica_batch = config.batch_size // replicas
  agree = None
  if shard[0] > 1:
    # Machines save and stop at the same steps, and must resume from the same one.
    agree = lambda due: bool(total(tf.constant(int(due), tf.int64)).numpy() > 0)
    steps = total(tf.constant([start_step, start_step**2], tf.int64)).numpy()
    if steps[1] * replicas != steps[0]**2:  # Zero variance: every replica at one step.
      raise ValueError(f"The machines restored different steps (mean {steps[0] / replicas}, "
                       f"here {start_step}): delete the workdir's checkpoints and "
                       "worker_scratch_* to start again.")

  # After the machines agreed on the step, so that all of them raise together.
  if start_step > config.num_steps:
    raise ValueError(f"{manager.latest_checkpoint} is at step {start_step}, beyond num_steps "
                     f"({config.num_steps}); use a fresh --workdir for a shorter run.")

  def replica_share(batch):
    if batch[0].shape[0] != local_replicas * per_replica_batch:
      raise ValueError(f"A batch of {batch[0].shape[0]} for {local_replicas} local replicas "
                       f"of {per_replica_batch}.")

    def share(context):
      begin = context.replica_id_in_sync_group % local_replicas * per_replica_batch
      return tuple(t[begin:begin + per_replica_batch] for t in batch)
    return strategy.experimental_distribute_values_from_function(share)

  def one_step(iterator):
    per_replica = strategy.run(step_fn, args=replica_share(next(iterator)))
    return {k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
            for k, v in per_replica.items()}

  @tf.function
  def train_steps(iterator, n):
    """``n`` steps in one call (Python overhead off the critical path); last metrics."""
    metrics = one_step(iterator)
    for _ in tf.range(n - 1):
      metrics = one_step(iterator)
    return metrics

  # The rows before the restored step were logged under the eval_every of their time.
  segments = training.logging_segments(record_path, recorded, config.to_dict(), start_step,
                                       ("eval_every",), record=chief)
  metrics_log = loggers.MetricsLogger(
      workdir, "curve.csv", CURVE_COLUMNS, types=CURVE_TYPES, start_step=start_step,
      enabled=chief, expected_steps=training.logged_steps(
          segments, start_step, lambda s, first, last: training.multiples(s["eval_every"],
                                                                          first, last)))
  progress = loggers.Progress(config.num_steps, f"[{config.method}]", initial=start_step,
                              log_seconds=config.log_seconds, enabled=chief)
  log = log or progress.write
  if start_step:
    log(f"[{config.method}] resumed from {manager.latest_checkpoint}")
  curve_rows = metrics_log.rows
  # Wall time accumulates over resumed segments (a killed segment's time after
  # its last evaluation is not counted).
  previous_seconds = curve_rows[-1]["wall_seconds"] if curve_rows else 0.0
  step = start_step
  start_time = time.time()
  checkpointer = PeriodicCheckpointer(
      lambda step: manager.save(checkpoint_number=step), config.checkpoint_minutes, agree)
  metrics: Dict[str, float] = {}
  result: Dict = {}

  evaluate = make_evaluator(strategy, parts)

  def record_evaluation():
    scores = evaluate(test_ds)
    metrics_log.record(dict(step=step, images=step * config.batch_size,
                            wall_seconds=round(previous_seconds + time.time() - start_time, 1),
                            train_loss=metrics.get("loss", float("nan")), **scores))
    log(f"[{config.method}] step {step:,}: test top-1 {scores['test_top1']:.4f} "
        f"top-5 {scores['test_top5']:.4f}")
    return scores

  while step < config.num_steps:
    out_of_time = max_seconds is not None and time.time() - start_time > max_seconds
    if agree(out_of_time) if agree else out_of_time:
      break
    n = min(config.steps_per_call, config.num_steps - step,
            config.eval_every - step % config.eval_every)
    t0 = time.time()
    metrics = {k: float(v) for k, v in train_steps(iterator, tf.constant(n)).items()}
    step += n
    rate = n * config.batch_size / max(time.time() - t0, 1e-9)
    cosines = " ".join(f"{metrics[k]:.2f}" for k in sorted(metrics) if k.startswith("cosine"))
    progress.update(step, f"loss {metrics['loss']:.4f} {rate:,.0f} images/s"
                    + (f" cosines {cosines}" if cosines else ""))
    metrics_log.scalars(step, dict(metrics, images_per_second=rate,
                                   learning_rate=float(main_opt.current_learning_rate())),
                        prefix="train/")
    if step % config.eval_every == 0 or step == config.num_steps:
      result = record_evaluation()
    checkpointer.maybe_save(step, force=step == config.num_steps)
  if step < config.num_steps:  # Stopped by max_seconds.
    manager.save(checkpoint_number=step)
  elif not result:  # Resumed after the last step (killed before result.json).
    logged = bool(curve_rows and curve_rows[-1]["step"] == step)
    if agree is not None:  # Only the chief reads the curve; every worker must evaluate or none.
      logged = agree(logged)
    if logged:  # Its evaluation is in the curve.
      result = ({k: curve_rows[-1][k] for k in ("test_top1", "test_top5")}
                if curve_rows else {})  # Other workers report no scores.
    else:
      result = record_evaluation()
  progress.close()
  metrics_log.close()
  final = dict(method=config.method, dataset=config.dataset, steps=step,
               wall_seconds=curve_rows[-1]["wall_seconds"] if chief and curve_rows else
               (0.0 if chief else None),
               finished=step >= config.num_steps, replicas=replicas,
               **{k: float(v) for k, v in result.items()}, train_loss=metrics.get("loss"))
  if chief and final["finished"]:
    files.write_text_atomic(os.path.join(workdir, "result.json"),
                         json.dumps(dict(final, config=config.to_dict()), indent=1,
                                    default=str))
  if not chief and final["finished"]:
    shutil.rmtree(_checkpoint_dir(workdir, chief), ignore_errors=True)
  return final

r"""Speed of a Sobolev training step relative to a regular one (not a test).

Cases:
  (a) regression: the paper's 2x256 ReLU MLP, 2-D input, batch 100, Adam,
      first-order Sobolev with full gradients (section 4.1);
  (b) distillation: the SM section 3 student (84x84x4 input, 6 actions, batch
      200), KL plus the stochastic output-space term, teacher of SM's
      architecture differentiated on the fly (section 4.2).
Each in plain ``tf.function`` (one step per call), with ``jit_compile=True``,
and with many steps per call (``sobolev_tf.multi_step``).

    python scripts/benchmark.py                  # writes results/benchmarks.md
    python scripts/benchmark.py --jvp_study      # ForwardAccumulator under XLA
    python scripts/benchmark.py --jax            # also time the JAX reference
    python scripts/benchmark.py --keras          # SobolevModel.fit vs hand-written loops

Run it alone: a second heavy process on the 2 cores distorts every number.
"""

import math
import os
import platform
import sys
import time
from typing import Callable, Dict, List

from absl import app
from absl import flags
import numpy as np

import sobolev_tf  # First: it imports TensorFlow without its C++ start-up lines.
import sonnet as snt  # pylint: disable=g-import-not-at-top
import tensorflow as tf  # pylint: disable=g-import-not-at-top

import sobolev_tf as st  # pylint: disable=g-import-not-at-top
from sobolev_tf import checks  # pylint: disable=g-import-not-at-top
from sobolev_tf.atari import networks  # pylint: disable=g-import-not-at-top
from sobolev_tf import regression  # pylint: disable=g-import-not-at-top
from sobolev_tf import optimizers  # pylint: disable=g-import-not-at-top
from sobolev_tf.files import write_section  # pylint: disable=g-import-not-at-top
from sobolev_tf.files import SECTIONS_START  # pylint: disable=g-import-not-at-top

FLAGS = flags.FLAGS
flags.DEFINE_string("output", "results/benchmarks.md", "Markdown file to write ('' to skip).")
flags.DEFINE_integer("repeats", 5, "Timed repetitions; the median is reported.", lower_bound=1)
flags.DEFINE_integer("steps_per_call", 100, "Steps per call in the many-steps mode.")
flags.DEFINE_float("min_seconds", 1.0, "Minimum duration of one timed repetition.",
                   lower_bound=0.0)
flags.register_validator("min_seconds", math.isfinite,
                         message="--min_seconds must be a finite number of seconds.")
flags.DEFINE_list("cases", ["regression", "distillation", "distillation_online_teacher",
                            "distillation_cached_jacobian"],
                  "Cases to run.")
flags.DEFINE_bool("jvp_study", False, "Also time a forward-mode (JVP) step with and without XLA.")
flags.DEFINE_bool("jax", False, "Also time case (a) in JAX (needs jax and optax installed).")
flags.DEFINE_bool("keras", False, "Also time case (a) through Keras fit (SobolevModel, plain "
                  "Keras) against hand-written loops, interleaved.")
flags.DEFINE_integer("inter_op_threads", 0, lower_bound=0, help=
                     "TensorFlow inter-op threads (0: TF's default). For case (a)'s small "
                     "ops, 2 inter-op x 1 intra-op thread is about 10% faster on 2 cores.")
flags.DEFINE_integer("intra_op_threads", 0, "TensorFlow intra-op threads (0: TF's default).")
flags.DEFINE_enum("optimizer", "fused", ["fused", "sonnet"],
                  "Adam of case (a): sobolev_tf.optimizers.Adam (fused kernels) or Sonnet's.")


def _calls_per_repetition(run: Callable[[int], object]) -> int:
  """Warms ``run`` up and returns how many calls last FLAGS.min_seconds."""
  run(0)
  run(0)
  t0 = time.perf_counter()
  _block(run(0))
  once = time.perf_counter() - t0
  return max(1, int(FLAGS.min_seconds / max(once, 1e-6)))


def _seconds_per_step(run: Callable[[int], object], calls: int, steps_per_call: int) -> float:
  t0 = time.perf_counter()
  for c in range(calls):
    out = run(c)
  _block(out)
  return (time.perf_counter() - t0) / (calls * steps_per_call)


def _time_per_step(run: Callable[[int], object], steps_per_call: int) -> float:
  """Median seconds per step over FLAGS.repeats repetitions (after warm-up)."""
  calls = _calls_per_repetition(run)
  return float(np.median([_seconds_per_step(run, calls, steps_per_call)
                          for _ in range(FLAGS.repeats)]))


def _interleaved(a: tuple, b: tuple) -> tuple:
  """Per-step seconds of runners a and b timed in turn (a, b, a, b, ...), and their ratios.

  A load that comes and goes hits both members of a pair alike, so the
  median of the per-pair ratios b/a is robust where a ratio of medians is not.
  """
  calls = [_calls_per_repetition(run) for run, _ in (a, b)]
  ta, tb = [], []
  for _ in range(FLAGS.repeats):
    ta.append(_seconds_per_step(a[0], calls[0], a[1]))
    tb.append(_seconds_per_step(b[0], calls[1], b[1]))
  return np.array(ta), np.array(tb), np.array(tb) / np.array(ta)


def _block(out):
  for v in tf.nest.flatten(out):
    if hasattr(v, "numpy"):
      v.numpy()


def _step_runners(step_fn, steps_per_call: int) -> Dict[str, tuple]:
  """The three execution modes of one step function."""
  plain = tf.function(step_fn)
  jit = tf.function(step_fn, jit_compile=True)
  many = st.multi_step(step_fn, steps_per_call)
  many_jit = st.multi_step(step_fn, steps_per_call, jit_compile=True)
  return {
      "tf.function": (lambda c: plain(tf.constant(c, tf.int64)), 1),
      "tf.function + jit_compile": (lambda c: jit(tf.constant(c, tf.int64)), 1),
      f"{steps_per_call} steps/call": (lambda c: many(tf.constant(c, tf.int64)), steps_per_call),
      f"{steps_per_call} steps/call + jit_compile": (
          lambda c: many_jit(tf.constant(c, tf.int64)), steps_per_call),
  }


def regression_step(sobolev: bool, num_batches: int = 10, seed: int = 0):
  """Case (a): one Adam step of the 2x256 ReLU MLP on Styblinski-Tang data."""
  rng = np.random.default_rng(seed)
  x = rng.uniform(-5, 5, size=(num_batches, 100, 2)).astype(np.float32)
  y = 0.5 * np.sum(x**4 - 16 * x**2 + 5 * x, axis=-1)
  dy = 0.5 * (4 * x**3 - 32 * x + 5)
  x, y, dy = (tf.constant(a, tf.float32) for a in (x, y, dy))
  tf.random.set_seed(seed)
  mlp = regression.regression_mlp()
  model = lambda z: mlp(z)[:, 0]  # scalar per example: gradient [B, 2]
  mlp(x[0])
  if FLAGS.optimizer == "fused":  # One kernel per variable (sobolev_tf.optimizers).
    opt = optimizers.Adam(3e-5)
    opt.build(mlp.trainable_variables)
  else:
    opt = snt.optimizers.Adam(3e-5)

  def step(i):
    # tf.gather, not x[b]: a sliced argument is a compile-time constant for XLA,
    # so every new step index would recompile a jit_compile'd step.
    b = i % num_batches
    xb, yb, dyb = tf.gather(x, b), tf.gather(y, b), tf.gather(dy, b)
    with tf.GradientTape() as tape:
      if sobolev:
        loss, _ = st.sobolev_loss(model, xb, (yb, dyb), check_targets=False)
      else:
        loss = tf.reduce_mean(st.squared_l2(yb, model(xb)))
    grads = tape.gradient(loss, mlp.trainable_variables)
    opt.apply(grads, mlp.trainable_variables)
    return {"loss": loss}

  return step


def distillation_step(sobolev: bool, num_batches: int = 4, seed: int = 0,
                      num_actions: int = 6, batch_size: int = 200,
                      online_teacher: bool = False, cached_jacobian: bool = False):
  """Case (b): one Adam step of the SM section 3 student.

  The regular step reads teacher log-probabilities recorded in the dataset
  (``online_teacher=False``) or runs the teacher forward on the batch. With
  ``cached_jacobian`` the Sobolev step reads the teacher's input Jacobian of
  log-probabilities, precomputed once per frame (feasible in memory for the
  1-10% training fractions: 6 x 84 x 84 x 4 floats per frame), instead of
  differentiating the teacher at every step; the projection on the random
  output direction is then a cheap contraction inside ``sobolev_loss``.
  """
  rng = np.random.default_rng(seed)
  frames = tf.constant(rng.integers(0, 256, size=(num_batches, batch_size, 84, 84, 4),
                                    dtype=np.uint8))
  tf.random.set_seed(seed)
  teacher = networks.AtariTeacher(num_actions)
  student = networks.AtariStudent(num_actions)
  teacher_log_probs = tf.stack([tf.nn.log_softmax(teacher(frames[b]))
                                for b in range(num_batches)])
  opt = snt.optimizers.Adam(1e-4)
  student_log_probs = lambda s: tf.nn.log_softmax(student(s))
  teacher_fn = lambda s: tf.nn.log_softmax(teacher(s))
  if cached_jacobian:
    teacher_jacobian = tf.stack([
        st.batch_jacobian(teacher_fn, tf.cast(frames[b], tf.float32) / 255.0)[1]
        for b in range(num_batches)])

  def step(i):
    b = i % num_batches
    s = tf.cast(tf.gather(frames, b), tf.float32) / 255.0
    with tf.GradientTape() as tape:
      if sobolev and cached_jacobian:
        loss, _ = st.sobolev_loss(
            student_log_probs, s,
            (tf.gather(teacher_log_probs, b), tf.gather(teacher_jacobian, b)),
            value_loss=st.categorical_kl_from_log_probs,
            derivative_loss="l2_norm", stochastic=True, projection_space="output",
            seed=tf.stack([tf.constant(seed, tf.int64), i]), check_targets=False)
      elif sobolev:
        loss, _ = st.sobolev_loss(
            student_log_probs, s, teacher=teacher_fn,
            value_loss=st.categorical_kl_from_log_probs,
            derivative_loss="l2_norm", stochastic=True, projection_space="output",
            seed=tf.stack([tf.constant(seed, tf.int64), i]))
      else:
        target = teacher_fn(s) if online_teacher else tf.gather(teacher_log_probs, b)
        kl = st.categorical_kl_from_log_probs(target, student_log_probs(s))
        loss = tf.reduce_mean(kl)
    grads = tape.gradient(loss, student.trainable_variables)
    opt.apply(grads, student.trainable_variables)
    return {"loss": loss}

  return step


def run_case(name: str, make_step, steps_per_call: int) -> List[dict]:
  rows = []
  reg = _step_runners(make_step(False), steps_per_call)
  sob = _step_runners(make_step(True), steps_per_call)
  for mode in reg:
    t_reg, t_sob, ratios = _interleaved(reg[mode], sob[mode])
    row = dict(case=name, mode=mode, regular_us=np.median(t_reg) * 1e6,
               sobolev_us=np.median(t_sob) * 1e6, ratio=np.median(ratios),
               ratio_min=ratios.min(), ratio_max=ratios.max())
    print(f"{name:13s} {mode:32s} regular {row['regular_us']:10.1f} us   "
          f"sobolev {row['sobolev_us']:10.1f} us   ratio {row['ratio']:.2f} "
          f"({row['ratio_min']:.2f}-{row['ratio_max']:.2f})", flush=True)
    rows.append(row)
  return rows


def _keras_regression_data(num_batches: int, seed: int = 0):
  """Case (a)'s Styblinski-Tang batches as arrays ``[N, 2]``, ``[N, 1]``, ``[N, 1, 2]``."""
  rng = np.random.default_rng(seed)
  x = rng.uniform(-5, 5, size=(num_batches * 100, 2)).astype(np.float32)
  y = 0.5 * np.sum(x**4 - 16 * x**2 + 5 * x, axis=-1, keepdims=True)
  dy = (0.5 * (4 * x**3 - 32 * x + 5))[:, None, :]
  return x, y.astype(np.float32), dy.astype(np.float32)


def _keras_mlp(seed: int = 0):
  import keras  # pylint: disable=g-import-not-at-top
  keras.utils.set_random_seed(seed)
  return keras.Sequential([keras.Input((2,)), keras.layers.Dense(256, "relu"),
                           keras.layers.Dense(256, "relu"), keras.layers.Dense(1)])


class _SobolevModelWithoutMetrics(st.SobolevModel):
  """``SobolevModel`` minus its per-step metric updates: what the metrics cost."""

  def _metrics_result(self, x, total, terms, predictions, value_targets, sample_weight):
    return {"loss": total}


def keras_runners(num_batches: int = 1000) -> Dict[str, Callable[[], int]]:
  """Case (a) through Keras: each runner trains ``num_batches`` steps and returns that count.

  ``fit`` runs one epoch over the arrays with ``steps_per_execution`` = steps per
  call. The hand-written loops run the same steps as ``multi_step`` calls with a
  Keras optimizer on the same Keras model: batches gathered in the graph, or
  read from a ``tf.data`` iterator like ``fit``'s, or with ``fit``'s metric
  updates added, to attribute the difference.
  """
  import keras  # pylint: disable=g-import-not-at-top
  spc = FLAGS.steps_per_call
  x, y, dy = _keras_regression_data(num_batches)
  xs, ys, dys = (tf.constant(a.reshape((num_batches, 100) + a.shape[1:])) for a in (x, y, dy))

  def hand_written(sobolev: bool, data: str = "graph", metrics: bool = False):
    net = _keras_mlp()
    opt = keras.optimizers.Adam(1e-3)
    opt.build(net.trainable_variables)
    trackers = [keras.metrics.Mean(name=n) for n in ("loss", "value_loss", "derivative_1_loss")]
    iterator = iter(tf.data.Dataset.from_tensor_slices((x, y, dy)).batch(100).repeat()
                    .prefetch(tf.data.AUTOTUNE)) if data == "tf.data" else None

    def step(i):
      if iterator is None:
        b = i % num_batches
        xb, yb, dyb = tf.gather(xs, b), tf.gather(ys, b), tf.gather(dys, b)
      else:
        xb, yb, dyb = next(iterator)
      with tf.GradientTape() as tape:
        if sobolev:
          loss, terms = st.sobolev_loss(net, xb, (yb, dyb))
        else:
          loss = tf.reduce_mean(tf.square(yb - net(xb, training=True)))
      opt.apply(tape.gradient(loss, net.trainable_variables), net.trainable_variables)
      if metrics:  # As SobolevModel: one Mean per term, weighted by the batch size.
        for tracker, value in zip(trackers, (loss, terms["value"], terms["derivative_1"])):
          tracker.update_state(value, sample_weight=100)
        return {t.name: t.result() for t in trackers}
      return {"loss": loss}

    run = st.multi_step(step, spc)

    def train():
      for c in range(num_batches // spc):
        out = run(c * spc)
      _block(out)
      return num_batches

    return train

  def keras_fit(sobolev: bool, model_class=st.SobolevModel):
    net = _keras_mlp()
    model = model_class(net) if sobolev else net
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=None if sobolev else "mse",
                  steps_per_execution=spc)
    targets = (y, dy) if sobolev else y

    def train():
      model.fit(x, targets, batch_size=100, epochs=1, shuffle=False, verbose=0)
      return num_batches

    return train

  return {
      "hand-written loop, regular": hand_written(False),
      "Keras fit, regular (MSE)": keras_fit(False),
      "hand-written loop, Sobolev": hand_written(True),
      "hand-written loop, Sobolev, tf.data batches": hand_written(True, data="tf.data"),
      "hand-written loop, Sobolev, SobolevModel's metrics": hand_written(True, metrics=True),
      "SobolevModel.fit": keras_fit(True),
      "SobolevModel.fit without metric updates": keras_fit(True, _SobolevModelWithoutMetrics),
  }


KERAS_RATIOS = (
    ("SobolevModel.fit", "hand-written loop, Sobolev"),
    ("Keras fit, regular (MSE)", "hand-written loop, regular"),
    ("SobolevModel.fit", "Keras fit, regular (MSE)"),
    ("hand-written loop, Sobolev", "hand-written loop, regular"),
    ("hand-written loop, Sobolev, tf.data batches", "hand-written loop, Sobolev"),
    ("hand-written loop, Sobolev, SobolevModel's metrics", "hand-written loop, Sobolev"),
    ("SobolevModel.fit without metric updates", "hand-written loop, Sobolev"),
)


def keras_study() -> List[str]:
  """Interleaved timings of the Keras runners; ratios as medians of per-round ratios.

  Every round times each runner once, in turn, so a load that comes and goes
  hits all of them alike; a ratio is taken within each round and summarised by
  its median and range over the rounds. Garbage is collected before each run
  so that no finished run's input pipeline threads are left to compete.
  """
  import gc  # pylint: disable=g-import-not-at-top
  runners = keras_runners()
  for train in runners.values():  # Warm-up: tracing, compilation, first epoch.
    train()
  seconds = {name: [] for name in runners}
  for _ in range(FLAGS.repeats):
    for name, train in runners.items():
      gc.collect()
      t0 = time.perf_counter()
      steps = train()
      seconds[name].append((time.perf_counter() - t0) / steps)
  lines = ["| runner | us/step (median) |", "|---|---:|"]
  for name, ts in seconds.items():
    lines.append(f"| {name} | {np.median(ts) * 1e6:.1f} |")
    print(f"{name:52s} {np.median(ts) * 1e6:8.1f} us/step", flush=True)
  lines += ["", "| ratio | median | range over rounds |", "|---|---:|---|"]
  for a, b in KERAS_RATIOS:
    r = np.array(seconds[a]) / np.array(seconds[b])
    lines.append(f"| {a} / {b} | {np.median(r):.2f} | {r.min():.2f}-{r.max():.2f} |")
    print(f"{a} / {b}: {np.median(r):.2f} ({r.min():.2f}-{r.max():.2f})", flush=True)
  return lines


def jvp_study() -> List[str]:
  """Times a forward-mode Sobolev step of case (a) in every JVP mode and XLA setting."""
  lines = []
  rng = np.random.default_rng(0)
  x = tf.constant(rng.uniform(-5, 5, (10, 100, 2)), tf.float32)
  v = st.random_unit_vectors([10, 100, 2], 0)
  for mode in ("forward", "double_reverse"):
    for jit in (False, True):
      tf.random.set_seed(0)
      mlp = regression.regression_mlp()
      opt = snt.optimizers.Adam(3e-5)

      def step(i, mode=mode, mlp=mlp, opt=opt):
        b = i % 10
        with tf.GradientTape() as tape:
          y, jv = st.jvp(lambda z: mlp(z)[:, 0], tf.gather(x, b), tf.gather(v, b), mode=mode)
          loss = tf.reduce_mean(y**2) + tf.reduce_mean(jv**2)
        opt.apply(tape.gradient(loss, mlp.trainable_variables), mlp.trainable_variables)
        return {"loss": loss}

      fn = tf.function(step, jit_compile=jit)
      old_min = FLAGS.min_seconds
      FLAGS.min_seconds = 0.5
      t = _time_per_step(lambda c: fn(tf.constant(c, tf.int64)), 1)
      FLAGS.min_seconds = old_min
      line = f"| {mode} | {'yes' if jit else 'no'} | {t * 1e6:.0f} |"
      print(line, flush=True)
      lines.append(line)
  return lines


def jax_reference() -> List[str]:
  """Case (a) in JAX (jit + fori_loop), for the absolute-time comparison."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top

  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.uniform(-5, 5, (10, 100, 2)), jnp.float32)
  y = 0.5 * jnp.sum(x**4 - 16 * x**2 + 5 * x, axis=-1)
  dy = 0.5 * (4 * x**3 - 32 * x + 5)
  key = jax.random.PRNGKey(0)
  sizes = [2, 256, 256, 1]
  params = []
  for a, b in zip(sizes[:-1], sizes[1:]):
    key, sub = jax.random.split(key)
    params.append((jax.random.normal(sub, (a, b)) / np.sqrt(a), jnp.zeros(b)))

  def mlp(p, z):
    for w, b in p[:-1]:
      z = jax.nn.relu(z @ w + b)
    w, b = p[-1]
    return (z @ w + b)[..., 0]

  opt = optax.adam(3e-5)

  def loss_fn(p, xb, yb, dyb, sobolev):
    pred = jax.vmap(lambda z: mlp(p, z))(xb)
    loss = jnp.mean((pred - yb)**2)
    if sobolev:
      g = jax.vmap(jax.grad(lambda z: mlp(p, z)))(xb)
      loss = loss + jnp.mean(jnp.sum((g - dyb)**2, -1))
    return loss

  lines = []
  n = FLAGS.steps_per_call
  for sobolev in (False, True):

    @jax.jit
    def run(p, s, sobolev=sobolev):
      def body(i, carry):
        p, s = carry
        b = i % 10
        grads = jax.grad(loss_fn)(p, x[b], y[b], dy[b], sobolev)
        updates, s = opt.update(grads, s, p)
        return optax.apply_updates(p, updates), s
      return jax.lax.fori_loop(0, n, body, (p, s))

    state = (params, opt.init(params))
    state = run(*state)
    jax.block_until_ready(state)
    samples = []
    for _ in range(FLAGS.repeats):
      calls = 20
      t0 = time.perf_counter()
      for _ in range(calls):
        state = run(*state)
      jax.block_until_ready(state)
      samples.append((time.perf_counter() - t0) / (calls * n))
    t = float(np.median(samples))
    name = "sobolev" if sobolev else "regular"
    print(f"JAX {name}: {t * 1e6:.1f} us/step", flush=True)
    lines.append(f"| JAX jit + fori_loop ({n} steps/call) | {name} | {t * 1e6:.1f} |")
  return lines


def main(argv):
  del argv
  # Must precede the first TensorFlow op.
  tf.config.threading.set_inter_op_parallelism_threads(FLAGS.inter_op_threads)
  tf.config.threading.set_intra_op_parallelism_threads(FLAGS.intra_op_threads)
  threads = ", ".join(f"{n} {k}-op threads" for k, n in
                      (("inter", FLAGS.inter_op_threads), ("intra", FLAGS.intra_op_threads)) if n)
  header = (f"TensorFlow {tf.__version__}, Sonnet {snt.__version__}, "
            f"Python {platform.python_version()}, {os.cpu_count()} CPU cores"
            + (f" ({threads})" if threads else ""))
  print(header, flush=True)
  rows = []
  cases = {"regression": regression_step, "distillation": distillation_step,
           "distillation_online_teacher": (
               lambda sobolev: distillation_step(sobolev, online_teacher=True)),
           "distillation_cached_jacobian": (
               lambda sobolev: distillation_step(sobolev, cached_jacobian=True))}
  unknown = [name for name in FLAGS.cases if name not in cases]
  if unknown:  # All of them before the first is timed.
    raise ValueError(f"--cases: unknown cases {unknown}; known: {sorted(cases)}")
  if not (FLAGS.cases or FLAGS.jvp_study or FLAGS.jax or FLAGS.keras):
    raise ValueError(f"--cases is empty and no study is asked for: nothing to time, and "
                     f"{FLAGS.output or 'the report'} would lose its tables. Name cases from "
                     f"{sorted(cases)}.")
  if FLAGS.output:
    checks.check_output_file(FLAGS.output, "report", starts_with=SECTIONS_START)
  for name in FLAGS.cases:
    spc = FLAGS.steps_per_call if name == "regression" else max(1, FLAGS.steps_per_call // 20)
    rows.extend(run_case(name, cases[name], spc))
  jvp_lines = jvp_study() if FLAGS.jvp_study else []
  jax_lines = jax_reference() if FLAGS.jax else []
  keras_lines = keras_study() if FLAGS.keras else []
  if not FLAGS.output:
    return
  command = "python scripts/benchmark.py " + " ".join(sys.argv[1:])
  out = [
      "# Benchmarks: Sobolev vs regular training step", "",
      f"Command: `{command.strip()}`  ",
      f"Machine: {header}.  ",
      f"Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; medians of "
      f"{FLAGS.repeats} repetitions of at least {FLAGS.min_seconds}s each, regular and "
      "Sobolev timed in turn; the ratio is the median of the per-pair ratios, with "
      "their range.", "",
      "(a) regression: 2x256 ReLU MLP, 2-D input, batch 100, Adam "
      f"({'sobolev_tf.optimizers.Adam, one fused kernel per variable' if FLAGS.optimizer == 'fused' else 'snt.optimizers.Adam'}), "
      "first-order Sobolev with full gradients. (b) distillation: SM section 3 student "
      "(84x84x4, 6 actions, batch 200), KL + stochastic output-space term "
      "(one projection, l2 norm), teacher of SM architecture differentiated on the fly; "
      "The `distillation` regular step reads teacher log-probabilities recorded in the "
      "dataset; `distillation_online_teacher` runs the teacher forward in the regular step "
      "too (both Sobolev columns are the same computation); `distillation_cached_jacobian` "
      "reads the teacher's input Jacobian precomputed per frame instead of differentiating "
      "the teacher at every step.", "",
      "| case | mode | regular (us/step) | Sobolev (us/step) | ratio | ratio range |",
      "|---|---|---:|---:|---:|---|",
  ]
  for r in rows:
    out.append(f"| {r['case']} | {r['mode']} | {r['regular_us']:.1f} | "
               f"{r['sobolev_us']:.1f} | {r['ratio']:.2f} | "
               f"{r['ratio_min']:.2f}-{r['ratio_max']:.2f} |")
  if jvp_lines:
    out += ["", "## Forward-mode (JVP) step under XLA", "",
            "Case (a) network, loss on value and JVP along a random direction.", "",
            "| JVP mode | jit_compile | us/step |", "|---|---|---:|"] + jvp_lines
  if keras_lines:
    out += ["", "## Case (a) through Keras", "",
            "The same 2x256 ReLU Keras model, batch 100, Keras Adam, 1,000 steps per run: "
            f"`fit` on arrays with steps_per_execution={FLAGS.steps_per_call}, against "
            "`multi_step` loops of the same steps (batches gathered in the graph, or from a "
            "`tf.data` iterator, or with SobolevModel's metric updates). Runners "
            f"interleaved over {FLAGS.repeats} rounds; each ratio is the median of its "
            "per-round ratios.", ""] + keras_lines
  if jax_lines:
    out += ["", "## JAX reference for case (a)", "",
            "| implementation | method | us/step |", "|---|---|---:|"] + jax_lines
  # Its own section: scripts/benchmark_peers.py keeps another one in the same file.
  write_section(FLAGS.output, "steps", "\n".join(out))
  print(f"wrote the 'steps' section of {FLAGS.output}")


if __name__ == "__main__":
  app.run(main)

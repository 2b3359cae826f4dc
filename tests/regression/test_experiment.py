"""The regression grid: data, the stacked trainer, resume, CSV schema and report."""

import os

import ml_collections
import numpy as np
import tensorflow as tf

from configs import regression as regression_configs
from sobolev_tf import loggers
from sobolev_tf.regression import experiment
from sobolev_tf.regression import report


def tiny_config(**overrides):
  config = regression_configs.get_config("quick")
  config.hidden_sizes = (16, 16)
  config.num_steps = 200
  config.steps_per_call = 100
  config.eval_steps = (100,)
  config.num_test = 500
  config.grid_resolution = 0
  config.learning_rate = 3e-3
  config.checkpoint_minutes = 0.0
  for k, v in overrides.items():
    config[k] = v
  return config


class ObjectiveTest(tf.test.TestCase):
  """The stacked models' loss is the library's sobolev_loss, model by model."""

  def test_group_loss_equals_sobolev_loss(self):
    import sobolev_tf as st  # pylint: disable=g-import-not-at-top
    for units in ("original", "standardized"):
      config = tiny_config(derivative_units=units, batch_size=8)
      runs = [experiment.Run("beale", 20, "sobolev", 0), experiment.Run("booth", 20, "sobolev", 1)]
      group = experiment._Group(runs, config)  # pylint: disable=protected-access
      step = tf.constant(3, tf.int64)
      terms = group.loss_terms(step)
      # The same minibatch, one model at a time through sobolev_loss.
      idx = [tf.random.stateless_uniform([8], seed=tf.stack([key, step]), maxval=20,
                                         dtype=tf.int64) for key in group.model_keys]
      for i in range(2):
        pick = lambda k: tf.gather(group.train[k][i], idx[i])
        x = pick("x")
        others = tf.stack([tf.zeros_like(x)] * 2)
        one_model = lambda z, i=i: group.model.per_example(8)(
            tf.reshape(tf.tensor_scatter_nd_update(others, [[i]], [z]), [-1, 2]))[i * 8:(i + 1) * 8]
        scale = group.scalers[i].x_scale if units == "original" else np.ones(2)
        weight = tf.constant(np.broadcast_to(1.0 / scale**2, (8, 2)), tf.float32)
        total, expected = st.sobolev_loss(
            one_model, x, {"y": pick("y"), "dy": pick("dy"), "dy_weight": weight})
        self.assertAllClose(terms["value"][i], expected["value"], rtol=1e-5)
        self.assertAllClose(terms["derivative_1"][i], expected["derivative_1"], rtol=1e-5)
        self.assertAllClose(terms["loss"][i], total, rtol=1e-5)

  def test_balance_and_derivative_weight_equal_sobolev_loss(self):
    import sobolev_tf as st  # pylint: disable=g-import-not-at-top
    for weight, lam in ((0.1, 0.0), (3.0, 1.0), (1.0, 0.5)):
      config = tiny_config(batch_size=20, derivative_weight=weight, balance=lam)
      runs = [experiment.Run("beale", 20, "sobolev", 0), experiment.Run("ackley", 20, "sobolev", 1)]
      group = experiment._Group(runs, config)  # pylint: disable=protected-access
      terms = group.loss_terms(tf.constant(0, tf.int64))
      for i in range(2):
        x = group.train["x"][i]
        others = tf.stack([tf.zeros_like(x)] * 2)
        one_model = lambda z, i=i: group.model.per_example(20)(
            tf.reshape(tf.tensor_scatter_nd_update(others, [[i]], [z]), [-1, 2]))[i * 20:(i + 1) * 20]
        targets = {"y": group.train["y"][i], "dy": group.train["dy"][i]}
        if lam:
          balance = st.DerivativeBalance.from_derivatives(group.train["dy"][i].numpy(), lam=lam)
          self.assertNotAllClose(balance.partial_weights, [0.5, 0.5])  # Not a trivial case.
          kwargs = dict(balance=balance)
        else:
          targets["dy_weight"] = tf.constant(
              np.broadcast_to(1.0 / group.scalers[i].x_scale**2, (20, 2)), tf.float32)
          kwargs = {}
        total, _ = st.sobolev_loss(one_model, x, targets, derivative_weights=(weight,), **kwargs)
        self.assertAllClose(terms["loss"][i], total, rtol=1e-5)

  def test_derivative_weight_zero_trains_as_regular_and_activation_override(self):
    runs = [experiment.Run("booth", 20, m, 0) for m in ("regular", "sobolev")]
    results = experiment.run_grid(runs, tiny_config(derivative_weight=0.0), log=lambda s: None)
    regular, sobolev = sorted(results, key=lambda r: r["method"])
    self.assertAllClose(regular["test_mse"], sobolev["test_mse"], rtol=1e-5)
    self.assertNotAllClose(regular["test_grad_mse"], 0.0)
    groups = experiment.group_runs(runs, "tanh")
    self.assertEqual(sorted(k[1] for k in groups), ["tanh", "tanh"])
    tanh = experiment._Group(runs[:1], tiny_config(activation="tanh"))  # pylint: disable=protected-access
    self.assertIs(tanh.model.activation, tf.nn.tanh)
    with self.assertRaisesRegex(ValueError, "Unknown activation 'gelu'"):
      experiment.group_runs(runs, "gelu")
    with self.assertRaisesRegex(ValueError, "Hessians, which are 0 for a ReLU"):
      experiment.group_runs([experiment.Run("booth", 20, "sobolev2", 0)], "relu")
    with self.assertRaisesRegex(ValueError, "config.balance weights first-order"):
      experiment._Group([experiment.Run("booth", 20, "stochastic", 0)],  # pylint: disable=protected-access
                        tiny_config(balance=1.0))
    with self.assertRaisesRegex(ValueError, "config.derivative_weight must be >= 0"):
      experiment.run_grid(runs, tiny_config(derivative_weight=-1.0))

  def test_stochastic_and_second_order_terms_by_hand(self):
    import sobolev_tf as st  # pylint: disable=g-import-not-at-top
    config = tiny_config(batch_size=20)  # Full batch: no minibatch indices to replay.
    for method in ("stochastic", "sobolev2"):
      group = experiment._Group([experiment.Run("beale", 20, method, 0)], config)  # pylint: disable=protected-access
      step = tf.constant(5, tf.int64)
      terms = group.loss_terms(step)
      f = group.model.per_example(20)
      x, y, dy = group.train["x"][0], group.train["y"][0], group.train["dy"][0]
      r = group.scalers[0].x_scale.astype(np.float32)
      values, grad, *rest = st.derivative_tensors(f, x, group.order)
      self.assertAllClose(terms["value"][0], np.mean((values - y)**2), rtol=1e-5)
      if method == "stochastic":
        v = st.random_unit_vectors([20, 2], tf.stack([group.model_keys[0] + 1, step]))
        expected = np.mean(np.sum((grad - dy) / r * v, axis=1)**2)
      else:
        expected = np.mean(np.sum(((grad - dy) / r)**2, axis=1))
        hess_error = (rest[0] - group.train["d2y"][0]) / (r[:, None] * r[None, :])
        self.assertAllClose(terms["derivative_2"][0], np.mean(np.sum(hess_error**2, (1, 2))),
                            rtol=1e-5)
      self.assertAllClose(terms["derivative_1"][0], expected, rtol=1e-5)


class TrainAndEvaluateTest(tf.test.TestCase):

  def test_relu_beside_tanh_report(self):
    config = tiny_config(functions=("booth",), sizes=(20,), seeds=(0,), num_steps=100,
                         eval_steps=(), methods=regression_configs.CONVERGED_METHODS,
                         lr_schedule="cosine", grid_resolution=5, plot_sizes=(20,),
                         caption="Why ReLU beside tanh.")
    output = self.create_tempdir().full_path
    results = experiment.train_and_evaluate(config, self.create_tempdir().full_path, output,
                                            "python scripts/reproduce_figure2.py")
    self.assertLen(results, 4)
    with open(os.path.join(output, "figure2.md")) as f:
      text = f.read()
    self.assertIn("lr 0.003 (cosine)", text)
    self.assertIn("\nWhy ReLU beside tanh.\n", text)
    self.assertIn("| regular | sobolev | regular_tanh | sobolev_tanh | Sobolev/regular MSE ratio "
                  "(ReLU) | Sobolev/regular MSE ratio (tanh) |", text)
    relu, tanh = text.split("### ReLU network (the paper's)")[1].split("### tanh network")
    by = {(r["method"]): np.log10(r["test_mse"]) for r in results}
    for part, (reg, sob) in ((relu, ("regular", "sobolev")), (tanh, ("regular_tanh",
                                                                         "sobolev_tanh"))):
      self.assertIn(f"median gap {by[reg] - by[sob]:.2f} decades", part)
    self.assertTrue(os.path.exists(os.path.join(output, "booth.png")))
    self.assertLen({r["test_mse"] for r in results}, 4)  # Four different networks.

  def test_tiny_grid_writes_the_report(self):
    config = tiny_config(functions=("booth",), sizes=(20,), seeds=(0,), num_steps=100,
                         eval_steps=(), second_order_sizes=(20,),
                         second_order_methods=("sobolev2",))
    self.assertEqual([r.method for r in experiment.grid_runs(config)],
                     ["regular", "sobolev", "sobolev2"])
    output = self.create_tempdir().full_path
    results = experiment.train_and_evaluate(config, self.create_tempdir().full_path, output,
                                            "python scripts/reproduce_figure2.py")
    self.assertLen(results, 3)
    for name in ("figure2.csv", "figure2.md", "figure2.png", "curves.png"):
      self.assertTrue(os.path.exists(os.path.join(output, name)), name)
    with open(os.path.join(output, "figure2.md")) as f:
      self.assertIn("Command: `python scripts/reproduce_figure2.py`", f.read())


class DataTest(tf.test.TestCase):

  def test_subsets_shared_test_set_and_finite_differences(self):
    small = experiment.make_data(experiment.Run("beale", 20, "regular", 3), num_test=100)
    large = experiment.make_data(experiment.Run("beale", 100, "sobolev", 3), num_test=100)
    self.assertAllClose(small["x_train"], large["x_train"][:20])
    self.assertAllClose(small["x_test"], large["x_test"])
    fd = experiment.make_data(experiment.Run("beale", 20, "finite_difference", 3), num_test=100)
    self.assertAllClose(fd["dy_train"], small["dy_train"], rtol=1e-2, atol=1e-3)  # O(h^2) error.
    self.assertNotAllClose(fd["dy_train"], small["dy_train"], rtol=0, atol=1e-12)
    second = experiment.make_data(experiment.Run("booth", 20, "sobolev2", 0), num_test=10)
    self.assertAllClose(second["d2y_train"], np.broadcast_to([[10., 8.], [8., 10.]], (20, 2, 2)),
                        atol=1e-6)

  def test_named_activations_are_not_overridden(self):
    self.assertEqual(experiment.activation_of("sobolev", "softplus"), "softplus")
    self.assertEqual(experiment.activation_of("sobolev_tanh", "tanh"), "tanh")
    for method in experiment.NAMED_ACTIVATION:
      with self.assertRaisesRegex(ValueError, f"config.activation='relu' would train method "
                                              f"'{method}' on another network"):
        experiment.activation_of(method, "relu")

  def test_fixed_budget_is_the_setting_its_results_were_made_with(self):
    fixed = regression_configs.get_config("fixed_budget").to_dict()
    for key in ("workdir", "results_dir", "caption"):  # Where, and words: not what it trains.
      del fixed[key]
    self.assertEqual(fixed, dict(
        functions=regression_configs.PAPER_FUNCTIONS, sizes=(20, 100, 10_000),
        methods=("regular", "sobolev"), extra_methods=(), second_order_methods=(),
        second_order_sizes=(20, 100), seeds=(0, 1, 2, 3, 4), num_test=10_000,
        hidden_sizes=(256, 256), learning_rate=3e-4, lr_schedule="constant", standardize=True,
        derivative_units="original", activation="", derivative_weight=1.0, balance=0.0,
        batch_size=100, num_steps=10_000, steps_per_call=500, eval_steps=(500, 1000, 2000, 5000),
        jit_compile=True, fd_step=1e-3, checkpoint_minutes=2.0, grid_resolution=41,
        plot_sizes=(20, 100)))

  def test_bad_runs(self):
    with self.assertRaisesRegex(ValueError, "Unknown function 'sphere'"):
      experiment.Run("sphere", 20, "regular", 0)
    with self.assertRaisesRegex(ValueError, "Unknown method 'magic'"):
      experiment.Run("booth", 20, "magic", 0)
    with self.assertRaisesRegex(ValueError, "variant"):
      regression_configs.get_config("huge")

  def test_default_trains_relu_beside_tanh_to_convergence(self):
    default, full, fixed, fixed_full = (regression_configs.get_config(v) for v in (
        "default", "full", "fixed_budget", "fixed_budget_full"))
    pairs = {"regular", "sobolev", "regular_tanh", "sobolev_tanh"}
    self.assertEqual({r.method for r in experiment.grid_runs(default)}, pairs)
    self.assertLen(experiment.grid_runs(default), 7 * 2 * 4 * 3)
    self.assertLen(experiment.grid_runs(full), 7 * 3 * 4 * 5)
    for config in (default, full):  # The convergence study's relu_20k and tanh_20k.
      self.assertEqual((config.lr_schedule, config.learning_rate, config.num_steps),
                       ("cosine", 1e-3, 20_000))
      self.assertIn("tanh", config.caption)
    self.assertEqual({experiment.activation_of(m) for m in pairs}, {"relu", "tanh"})
    self.assertEqual({r.method for r in experiment.grid_runs(fixed)}, {"regular", "sobolev"})
    self.assertLen(experiment.grid_runs(fixed), 7 * 3 * 2 * 5)
    self.assertEqual((fixed.lr_schedule, fixed.learning_rate, fixed.num_steps),
                     ("constant", 3e-4, 10_000))
    self.assertEqual({r.method for r in experiment.grid_runs(fixed_full)},
                     {"regular", "sobolev", "stochastic", "finite_difference", "sobolev2",
                      "regular_softplus"})
    self.assertEqual(default.results_dir, "results/regression")
    self.assertEqual(full.results_dir, "results/regression/full")
    self.assertEqual(fixed.results_dir, "results/regression/fixed_budget")
    self.assertNotEqual(default.workdir, full.workdir)  # Their groups differ in size.


class TrainerTest(tf.test.TestCase):

  def test_stacked_models_equal_models_trained_alone(self):
    config = tiny_config()
    runs = [experiment.Run("booth", 20, "sobolev", 0), experiment.Run("rosenbrock", 20, "stochastic", 1),
            experiment.Run("mccormick", 20, "sobolev", 2)]
    together = experiment.train_group(runs, config, log=lambda s: None)
    for run, joint in zip(runs, together):
      alone = experiment.train_group([run], config, log=lambda s: None)[0]
      self.assertAllClose(joint["test_mse"], alone["test_mse"], rtol=2e-3)
      self.assertAllClose(joint["test_grad_mse"], alone["test_grad_mse"], rtol=2e-3)

  def test_annealed_rate_follows_its_schedule_and_resumes_exactly(self):
    import sobolev_tf as st  # pylint: disable=g-import-not-at-top
    runs = [experiment.Run("booth", 20, "sobolev", 0)]
    config = tiny_config(lr_schedule="cosine", num_steps=200)
    group = experiment._Group(runs, config)  # pylint: disable=protected-access
    for step in (0, 50, 199):
      group.train_step(tf.constant(step, tf.int64))
      self.assertAllClose(group.learning_rate, 3e-3 * 0.5 * (1 + np.cos(np.pi * step / 200)),
                          rtol=1e-5)
    straight = experiment.train_group(runs, config, log=lambda s: None)
    workdir = self.create_tempdir().full_path

    class Interrupted(Exception):
      pass

    class StopAfterFirstCall(loggers.Progress):
      def update(self, n, postfix=""):
        if n >= 1:  # The second call (step 200), after the checkpoint at step 100.
          raise Interrupted()
        super().update(n, postfix)

    with self.assertRaises(Interrupted):
      experiment.train_group(runs, config, workdir, log=lambda s: None,
                             progress=StopAfterFirstCall(1, enabled=False))
    messages = []
    resumed = experiment.train_group(runs, config, workdir, log=messages.append)
    self.assertTrue(any("resumed at step 100" in m for m in messages), messages)
    self.assertAllClose(straight[0]["test_mse"], resumed[0]["test_mse"], rtol=1e-6)
    # Its rate was annealed over 200 steps: a longer budget is another run.
    with self.assertRaisesRegex(ValueError, "num_steps: 200 there, 400 now"):
      experiment.train_group(runs, tiny_config(lr_schedule="cosine", num_steps=400), workdir,
                             log=lambda s: None)
    with self.assertRaisesRegex(ValueError, "config.lr_schedule must be one of"):
      experiment.run_grid(runs, tiny_config(lr_schedule="step"))
    del st

  def test_resume_continues_the_same_run(self):
    workdir = self.create_tempdir().full_path
    runs = [experiment.Run("booth", 100, "sobolev", 0), experiment.Run("booth", 100, "stochastic", 0)]
    straight = experiment.train_group(runs, tiny_config(num_steps=400, batch_size=50),
                                      log=lambda s: None)
    experiment.train_group(runs, tiny_config(num_steps=200, batch_size=50), workdir,
                           log=lambda s: None)
    messages = []
    resumed = experiment.train_group(runs, tiny_config(num_steps=400, batch_size=50), workdir,
                                     log=messages.append)
    self.assertTrue(any("resumed at step 200" in m for m in messages))
    for a, b in zip(straight, resumed):
      self.assertAllClose(a["test_mse"], b["test_mse"], rtol=1e-4)

  def test_killed_run_resumes_to_the_same_curve_without_duplicate_rows(self):
    runs = [experiment.Run("booth", 20, "sobolev", 0), experiment.Run("booth", 20, "sobolev", 1)]
    config = tiny_config(num_steps=400, eval_steps=(100, 200, 300))
    straight_dir, killed_dir = (self.create_tempdir().full_path for _ in range(2))
    straight = experiment.train_group(runs, config, straight_dir, log=lambda s: None)
    # A run killed after its step-300 evaluation but before its next checkpoint:
    # its CSV has rows past the checkpoint (step 200), which the resumed run writes again.
    experiment.train_group(runs, tiny_config(num_steps=200, eval_steps=(100,)), killed_dir,
                           log=lambda s: None)
    path = os.path.join(killed_dir, "curves", "n20_relu_order1.csv")
    with open(path) as f:
      lines = f.read().splitlines()
    with open(path, "a") as f:
      f.write("\n".join(line.replace("200,", "300,", 1) for line in lines[-2:]) + "\n")
    resumed = experiment.train_group(runs, config, killed_dir, log=lambda s: None)
    with open(os.path.join(straight_dir, "curves", "n20_relu_order1.csv")) as f:
      straight_csv = f.read()
    with open(path) as f:
      self.assertEqual(f.read(), straight_csv)  # Bit-identical, each step once.
    for a, b in zip(straight, resumed):
      self.assertEqual(a["test_mse"], b["test_mse"])
      self.assertEqual(a["curve"], b["curve"])
      self.assertEqual([c[0] for c in a["curve"]], [100, 200, 300, 400])
    self.assertTrue(os.listdir(os.path.join(straight_dir, "tb", "n20_relu_order1")))

  def test_finished_workdir_refuses_fewer_steps(self):
    workdir = self.create_tempdir().full_path
    runs = [experiment.Run("booth", 20, "regular", 0)]
    experiment.train_group(runs, tiny_config(num_steps=200), workdir, log=lambda s: None)
    with self.assertRaisesRegex(ValueError, "at step 200, beyond num_steps \\(100\\)"):
      experiment.train_group(runs, tiny_config(num_steps=100), workdir, log=lambda s: None)

  def test_corrupt_checkpoint_is_refused_with_its_path(self):
    workdir = self.create_tempdir().full_path
    runs = [experiment.Run("booth", 20, "regular", 0)]
    experiment.train_group(runs, tiny_config(num_steps=100), workdir, log=lambda s: None)
    ckpt_dir = os.path.join(workdir, "checkpoints", "n20_relu_order0")
    for name in os.listdir(ckpt_dir):
      if ".data-" in name:
        with open(os.path.join(ckpt_dir, name), "wb") as f:
          f.write(b"garbage")
    with self.assertRaisesRegex(ValueError, "Corrupt or incompatible checkpoint .*n20_relu_order0"):
      experiment.train_group(runs, tiny_config(num_steps=200), workdir, log=lambda s: None)

  def test_quick_sobolev_has_lower_gradient_error(self):
    runs = [experiment.Run("styblinski_tang", 100, m, 0) for m in ("regular", "sobolev")]
    regular, sobolev = experiment.run_grid(runs, tiny_config(), log=lambda s: None)
    self.assertLess(sobolev["test_grad_mse"], 0.8 * regular["test_grad_mse"])


class CsvAndReportTest(tf.test.TestCase):

  def _rows(self):
    rows = []
    for f in ("ackley", "booth"):
      for n in (20, 100, 10000):
        for m, base in (("regular", 2.0), ("sobolev", 0.5 if f == "booth" else 3.0)):
          for s in range(2):
            rows.append(dict(function=f, num_train=n, method=m, seed=s,
                             test_mse=10**(base + 0.1 * s), test_grad_mse=1.0, steps=10,
                             wall_seconds=0.5, curve=[(5, 1.0, 1.0), (10, 0.5, 0.5)]))
    return rows

  def test_csv_round_trip_and_schema(self):
    path = os.path.join(self.create_tempdir().full_path, "sub", "figure2.csv")
    rows = self._rows()
    experiment.write_csv(rows, path)
    with open(path) as f:
      self.assertEqual(f.readline().strip(),
                       "function,num_train,method,seed,test_mse,test_grad_mse,steps,wall_seconds")
    back = experiment.read_csv(path)
    self.assertLen(back, len(rows))
    self.assertEqual(back[0]["num_train"], 20)
    self.assertAllClose([r["test_mse"] for r in back], [r["test_mse"] for r in rows])
    with open(path, "w") as f:
      f.write("a,b\n")
    with self.assertRaisesRegex(ValueError, "expected columns"):
      experiment.read_csv(path)

  def test_report_and_claims(self):
    rows = self._rows()
    out = self.create_tempdir().full_path
    report.write_markdown(rows, os.path.join(out, "figure2.md"), ["# title"])
    text = open(os.path.join(out, "figure2.md")).read()
    self.assertIn("| booth | 20 | 2.05 +- 0.05 | 0.55 +- 0.05 | 0.0316 |", text)
    self.assertIn("Ackley is the exception at low data** (regular better): holds", text)
    report.plot_figure2(rows, os.path.join(out, "figure2.png"))
    report.plot_curves(rows, os.path.join(out, "curves.png"))
    self.assertTrue(os.path.getsize(os.path.join(out, "figure2.png")) > 1000)


if __name__ == "__main__":
  tf.test.main()

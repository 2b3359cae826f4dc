r"""Writes examples/sobolev_training.ipynb from the cells below and runs it (outputs and plots saved).

    python examples/make_notebook.py            # full size, 15-30 minutes on 2 CPU cores

The tests run the notebook itself with SOBOLEV_NOTEBOOK_QUICK=1 (tests/test_notebook.py).
"""

import os

import nbclient
import nbformat

HERE = os.path.dirname(os.path.abspath(__file__))
PATH = os.path.join(HERE, "sobolev_training.ipynb")

CELLS = [
    ("markdown", """# Sobolev training in a few cells

*Sobolev Training for Neural Networks* (Czarnecki et al., NeurIPS 2017) fits a network to the
values **and the input derivatives** of its target (eq. 1):

$$\\sum_i \\ell(m(x_i), f(x_i)) + \\sum_{j=1}^K \\ell_j(D^j_x m(x_i), D^j_x f(x_i)).$$

This notebook fits Franke's function, a classic 2-D test surface that is not one of the paper's
seven, with and without its gradients, using `sobolev_tf.sobolev_loss`; then does the same with
Keras (`SobolevModel`), distils a trained network into a smaller one from its values and
Jacobians (`SobolevModel(..., teacher=...)`), and ends with what the network's activation does
to the gain. The networks here are smooth (tanh): a ReLU network's gradients are piecewise
constant, and on this function the gradient term then helps much less (last section)."""),
    ("code", """# Sizes. The test suite sets SOBOLEV_NOTEBOOK_QUICK=1 to run this notebook in seconds.
import os
QUICK = os.environ.get("SOBOLEV_NOTEBOOK_QUICK") == "1"
NUM_STEPS = 100 if QUICK else 3000       # full-batch Adam steps per model
SIZES = (10, 40) if QUICK else (10, 20, 40, 80, 160)   # training-set sizes
SEEDS = (0,) if QUICK else (0, 1, 2)
HIDDEN = 64 if QUICK else 256            # width of the 2 hidden layers (paper, section 4.1: 256)
print(dict(quick=QUICK, num_steps=NUM_STEPS, sizes=SIZES, seeds=SEEDS, hidden=HIDDEN))"""),
    ("code", """import sobolev_tf as st  # First: it imports TensorFlow without its C++ start-up lines.

import keras
import matplotlib.pyplot as plt
import numpy as np
import sonnet as snt
import tensorflow as tf

tf.get_logger().setLevel("ERROR")  # fit_full_batch compiles one function per model: no retracing notes.

def franke(x):
  \"\"\"Franke's function on [0, 1]^2, x: [B, 2] -> [B].\"\"\"
  a, b = 9 * x[:, 0], 9 * x[:, 1]
  return (0.75 * tf.exp(-((a - 2) ** 2 + (b - 2) ** 2) / 4)
          + 0.75 * tf.exp(-(a + 1) ** 2 / 49 - (b + 1) / 10)
          + 0.5 * tf.exp(-((a - 7) ** 2 + (b - 3) ** 2) / 4)
          - 0.2 * tf.exp(-(a - 4) ** 2 - (b - 7) ** 2))

def sample(n, seed):
  \"\"\"n uniform points, their values and gradients (exact, by autodiff of franke).\"\"\"
  x = tf.constant(np.random.default_rng(seed).uniform(0, 1, (n, 2)), tf.float32)
  y, dy = st.value_and_gradient(franke, x)
  return x, y, dy

x_test, y_test, dy_test = sample(4000, seed=1000)"""),
    ("markdown", """## Regular vs Sobolev training

The same 2-hidden-layer tanh network, data and Adam budget; the only difference is the
gradient term of `sobolev_loss` (`st.fit_full_batch(..., sobolev=True)` calls it)."""),
    ("code", """def mlp(seed, activation):
  tf.random.set_seed(seed)
  return snt.nets.MLP([HIDDEN, HIDDEN, 1], activation=activation)

def fit(n, seed, sobolev, activation=tf.tanh):
  x, y, dy = sample(n, seed)
  net = mlp(seed, activation)
  st.fit_full_batch(net, x, y, dy, sobolev=sobolev, learning_rate=1e-3,
                    num_steps=NUM_STEPS, steps_per_call=NUM_STEPS)
  return net, x

def test_errors(net):
  y, dy = st.value_and_gradient(lambda z: net(z)[:, 0], x_test)
  return (float(tf.reduce_mean((y - y_test) ** 2)),
          float(tf.reduce_mean(tf.reduce_sum((dy - dy_test) ** 2, -1))))

results = {}  # (method, n, seed) -> (test MSE, test gradient MSE)
nets = {}
for n in SIZES:
  for seed in SEEDS:
    for method in ("regular", "sobolev"):
      net, x_train = fit(n, seed, sobolev=method == "sobolev")
      results[method, n, seed] = test_errors(net)
      nets[method, n, seed] = (net, x_train)
for n in SIZES:
  r = [np.mean([results[m, n, s][0] for s in SEEDS]) for m in ("regular", "sobolev")]
  print(f"{n:4d} points: test MSE regular {r[0]:.2e}  Sobolev {r[1]:.2e}  ratio {r[1] / r[0]:.3f}")"""),
    ("markdown", """### The function and both fits (20 points where run, else the smallest size)"""),
    ("code", """n_show = 20 if 20 in SIZES else SIZES[0]
grid = np.linspace(0, 1, 60)
gx, gy = np.meshgrid(grid, grid)
g = tf.constant(np.stack([gx.ravel(), gy.ravel()], 1), tf.float32)
panels = [("Franke's function", franke(g))]
for m in ("regular", "sobolev"):
  net, _ = nets[m, n_show, SEEDS[0]]
  panels.append((f"{m}, {n_show} points", net(g)[:, 0]))
fig, axes = plt.subplots(1, 3, figsize=(13, 4), constrained_layout=True)
x_train = nets["sobolev", n_show, SEEDS[0]][1].numpy()
for ax, (title, z) in zip(axes, panels):
  c = ax.contourf(gx, gy, np.reshape(z, gx.shape), levels=np.linspace(-0.3, 1.25, 21), cmap="viridis")
  ax.scatter(x_train[:, 0], x_train[:, 1], c="w", edgecolors="k", s=18)
  ax.set_title(title); ax.set_aspect("equal")
fig.colorbar(c, ax=axes, shrink=0.8)
plt.show()"""),
    ("markdown", """### Gradient fields

Arrows: input gradients on a coarse grid. The Sobolev fit is asked to match them at the
training points; the regular fit only sees the values."""),
    ("code", """coarse = np.linspace(0.05, 0.95, 12)
cx, cy = np.meshgrid(coarse, coarse)
c = tf.constant(np.stack([cx.ravel(), cy.ravel()], 1), tf.float32)
fields = [("Franke's function", st.value_and_gradient(franke, c)[1])]
for m in ("regular", "sobolev"):
  net, _ = nets[m, n_show, SEEDS[0]]
  fields.append((f"{m}, {n_show} points", st.value_and_gradient(lambda z: net(z)[:, 0], c)[1]))
fig, axes = plt.subplots(1, 3, figsize=(13, 4.3), constrained_layout=True)
for ax, (title, d) in zip(axes, fields):
  ax.quiver(cx, cy, d[:, 0].numpy().reshape(cx.shape), d[:, 1].numpy().reshape(cx.shape),
            angles="xy", scale=40)
  ax.scatter(x_train[:, 0], x_train[:, 1], c="tab:red", s=12)
  ax.set_title(title); ax.set_aspect("equal"); ax.set_xlim(0, 1); ax.set_ylim(0, 1)
plt.show()"""),
    ("markdown", """### Test error against training-set size

Mean over seeds of the test MSE on 4,000 uniform points (values, and gradients)."""),
    ("code", """fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
for k, (ax, what) in enumerate(zip(axes, ("value", "gradient"))):
  for m, style in (("regular", "o-"), ("sobolev", "s-")):
    ax.plot(SIZES, [np.mean([results[m, n, s][k] for s in SEEDS]) for n in SIZES], style, label=m)
  ax.set_xscale("log"); ax.set_yscale("log")
  ax.set_xlabel("training points"); ax.set_ylabel(f"test {what} MSE"); ax.legend()
plt.show()"""),
    ("markdown", """## The Keras path

`SobolevModel` wraps any Keras model: targets are `(y, dy)`, and `compile`, `fit`,
`sample_weight`, metrics, `tf.distribute` and saving work as for a plain Keras model. With
`derivative_weights=(0.0,)` it trains exactly like the plain model."""),
    ("code", """n = SIZES[len(SIZES) // 2]
x, y, dy = sample(n, seed=0)
def keras_mlp(width):
  return keras.Sequential([keras.Input((2,)), keras.layers.Dense(width, "tanh"),
                           keras.layers.Dense(width, "tanh"), keras.layers.Dense(1)])
keras.utils.set_random_seed(0)
model = st.SobolevModel(keras_mlp(HIDDEN))
model.compile(optimizer=keras.optimizers.Adam(1e-3), metrics=["mae"])
history = model.fit(x, (y[:, None], dy[:, None]), batch_size=n, epochs=NUM_STEPS, verbose=0)
print({k: round(v[-1], 5) for k, v in history.history.items()})
print("test MSE", float(tf.reduce_mean((model.predict(x_test, verbose=0)[:, 0] - y_test) ** 2)))"""),
    ("markdown", """## Distillation from a teacher

A trained network (the Keras Sobolev model above) teaches a smaller one: `fit(x)` takes inputs
only, and the student matches the teacher's values and input Jacobians (no gradient flows into
the teacher). Compared with matching the teacher's values alone, on the same inputs."""),
    ("code", """teacher = model.model
teacher.trainable = False
x_distil = sample(n, seed=1)[0]
students = {}
for name, weights in (("values only", (0.0,)), ("values + Jacobians", (1.0,))):
  keras.utils.set_random_seed(1)
  students[name] = st.SobolevModel(keras_mlp(HIDDEN // 4), teacher=teacher,
                                   derivative_weights=weights)
  students[name].compile(optimizer=keras.optimizers.Adam(1e-3))
  students[name].fit(x_distil, batch_size=n, epochs=NUM_STEPS, verbose=0)
teacher_y = teacher(x_test)[:, 0]
for name, s in students.items():
  mse = float(tf.reduce_mean((s.model(x_test)[:, 0] - teacher_y) ** 2))
  print(f"student ({name}): test MSE to the teacher {mse:.2e}")"""),
    ("markdown", """## One call: `SobolevRegressor`

For surrogates of a function known through samples of its values and derivatives, the
scikit-learn estimator does all of the above in one call: standardisation, Huge & Savine's
weights of values against derivatives, a smooth network, Adam under a one-cycle schedule.
Here a basket option of 7 assets priced from simulated paths: each label is one path's payoff,
each derivative label its pathwise delta (Huge & Savine, 2020), so both are noisy. With the
deltas the network gets close to the analytic price from few paths."""),
    ("code", """from sobolev_tf.pricing import BachelierBasket

basket = BachelierBasket(7)
paths = 512 if QUICK else 4096
s1, payoff, pathwise_delta = basket.training_set(paths, seed=0)   # states, labels
spots, price, delta = basket.test_set(1024)                     # and analytic references
epochs = 10 if QUICK else 100
surrogates = {"standard": st.SobolevRegressor(epochs=epochs).fit(s1, payoff),
              "differential": st.SobolevRegressor(epochs=epochs).fit(s1, payoff, pathwise_delta)}
fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
for ax, (name, surrogate) in zip(axes, surrogates.items()):
  value, deltas = surrogate.predict_with_derivatives(spots)
  rmse = 100 * np.sqrt(np.mean((value - price) ** 2))
  print(f"{name}: {paths} paths, test RMSE x 100 of the price {rmse:.3f}, of the deltas "
        f"{100 * np.sqrt(np.mean((deltas - delta) ** 2)):.3f}")
  order = np.argsort(basket.basket(spots))
  ax.plot(basket.basket(spots), value, "o", ms=2, mfc="white", label="predicted")
  ax.plot(basket.basket(spots)[order], price[order], "r-", lw=1, label="analytic")
  ax.set_title(f"{name}: RMSE x 100 {rmse:.3f}"); ax.set_xlabel("basket"); ax.legend()
plt.show()"""),
    ("markdown", """## The activation decides the gain

The paper's regression network is ReLU (section 4.1). Its input gradient is piecewise constant,
so it can match a smooth gradient field only coarsely, and the gradient term competes with the
values instead of helping. The same comparison with ReLU, at one training-set size:"""),
    ("code", """n = SIZES[1]
for name, activation in (("relu", tf.nn.relu), ("tanh", tf.tanh)):
  mse = {}
  for method in ("regular", "sobolev"):
    mse[method] = np.mean([test_errors(fit(n, s, method == "sobolev", activation)[0])[0]
                           for s in SEEDS])
  print(f"{name}: {n} points, test MSE regular {mse['regular']:.2e}  Sobolev "
        f"{mse['sobolev']:.2e}  ratio {mse['sobolev'] / mse['regular']:.3f}")"""),
]


def build() -> nbformat.NotebookNode:
  nb = nbformat.v4.new_notebook()
  nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
  make = {"markdown": nbformat.v4.new_markdown_cell, "code": nbformat.v4.new_code_cell}
  nb.cells = [make[kind](source) for kind, source in CELLS]
  return nb


def execute(nb: nbformat.NotebookNode, timeout: int = 1800) -> nbformat.NotebookNode:
  """Runs every cell in a fresh python3 kernel, in this directory; raises on any error."""
  nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                          resources={"metadata": {"path": HERE}}).execute()
  return nb


def main():
  from sobolev_tf import files  # pylint: disable=g-import-not-at-top
  nb = execute(build())
  files.write_text_atomic(PATH, nbformat.writes(nb))
  print(f"wrote {PATH}")


if __name__ == "__main__":
  main()

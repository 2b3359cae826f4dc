"""The pricing experiment: Huge & Savine's differential machine learning with ``SobolevRegressor``.

A cell is one fit: a pricing model (Black-Scholes, or a Bachelier basket of ``n``
assets), a number ``m`` of training paths, a method and a seed. Methods:

* ``standard``: values (payoffs) only;
* ``differential``: values and full pathwise gradients (AAD), Huge & Savine's
  weights;
* ``directional``: values and one directional derivative per path, along a random
  unit direction (one forward-mode AAD sweep): eq. 2 of Czarnecki et al. with
  the projections given (``SobolevRegressor.fit(..., directions=...)``).

Seed ``s`` draws the market (for baskets: correlation, weights, volatilities),
the paths, the test set, the directions and the initial weights, each from its
own stream, so that every method and size of a seed sees the same market and
test set, and the smaller training sets are prefixes of the larger ones.

Errors are root mean squared errors on the test set times 100 (RMSE x 100, as
Huge & Savine publish them), of values (so in percent of the unit spot), of the
delta to asset 0 and of all deltas (in hundredths of a unit delta). Runs are resumable: finished cells are rows of
``<workdir>/cells.csv``, and a fit killed midway resumes from its checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from sobolev_tf import checks
from sobolev_tf import files
from sobolev_tf import loggers
from sobolev_tf import training
from sobolev_tf.estimator import Execution
from sobolev_tf.estimator import SobolevRegressor
from sobolev_tf.pricing import generators

__all__ = ["Cell", "METHODS", "MODELS", "make_generator", "make_data", "fit_cell", "evaluate",
           "run_cells", "CSV_COLUMNS", "read_cells", "part_cells", "train_and_evaluate",
           "report_starts", "TITLES"]

METHODS = ("standard", "differential", "directional")
MODELS = ("black_scholes", "bachelier")
CSV_COLUMNS = ("model", "n", "m", "method", "seed", "value_rmse", "delta0_rmse", "delta_rmse",
               "epochs", "fit_seconds")
_TYPES = dict(n=int, m=int, seed=int, value_rmse=float, delta0_rmse=float, delta_rmse=float,
              epochs=int, fit_seconds=float)
# How each part's Markdown report starts (the curve's and dimension's titles go on with n).
TITLES = dict(table="# Huge & Savine's published table beside ours",
              curve="# Learning curve: Bachelier basket, n = ",
              dimension="# Dimension: Bachelier n = ")
_MARKET_START = '{\n "model": '  # surrogate_market.json, as _export writes it.
# Streams of a seed, [seed, purpose] (the market's is keyed apart, in generators).
_PATHS, _TEST, _DIRECTIONS = 1, 2, 3


@dataclasses.dataclass(frozen=True, order=True)
class Cell:
  model: str
  n: int
  m: int
  method: str
  seed: int

  def __post_init__(self):
    if self.model not in MODELS:
      raise ValueError(f"Unknown pricing model {self.model!r}; known: {', '.join(MODELS)}.")
    if self.method not in METHODS:
      raise ValueError(f"Unknown method {self.method!r}; known: {', '.join(METHODS)}.")
    if self.model == "black_scholes" and self.n != 1:
      raise ValueError(f"Black-Scholes has one asset, got n={self.n}.")
    if self.n < 1 or self.m < 2 or self.seed < 0:
      raise ValueError(f"A cell needs n >= 1, m >= 2 and seed >= 0, got {self}.")

  @property
  def name(self) -> str:
    return f"{self.model}{self.n}_m{self.m}_{self.method}_seed{self.seed}"


def make_generator(model: str, n: int, seed: int):
  if model == "black_scholes":
    return generators.BlackScholes()
  return generators.BachelierBasket(n, market_seed=seed)


def _stream(seed: int, purpose: int) -> np.random.SeedSequence:
  return np.random.SeedSequence([seed, purpose])


def make_data(cell: Cell, num_test: int) -> Dict[str, np.ndarray]:
  """Training paths (a prefix of the seed's stream), the test set and its analytic values."""
  gen = make_generator(cell.model, cell.n, cell.seed)
  x, y, dydx = gen.training_set(cell.m, _stream(cell.seed, _PATHS))
  # Black-Scholes is tested on Huge & Savine's grid of 100 spots, baskets on num_test draws.
  x_test, price, delta = gen.test_set(100 if cell.model == "black_scholes" else num_test,
                                      seed=_stream(cell.seed, _TEST))
  data = dict(x=x, y=y, dydx=dydx, x_test=x_test, price=price, delta=delta)
  if cell.method == "directional":
    v = np.random.default_rng(_stream(cell.seed, _DIRECTIONS)).standard_normal(x.shape)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    data["directions"], data["dydx"] = v, np.sum(dydx * v, axis=1)
  return data


def _estimator_params(estimator_config) -> dict:
  """``SobolevRegressor``'s arguments from ``config.estimator`` (``one_cycle_peak``: Huge &
  Savine's schedule with another peak rate)."""
  params = dict(estimator_config)
  peak = params.pop("one_cycle_peak", None)
  if peak is not None:
    params["learning_rate"] = training.one_cycle(peak)
  return params


def fit_cell(cell: Cell, data: Dict[str, np.ndarray], estimator_config: dict,
             checkpoint_dir: Optional[str] = None,
             checkpoint_minutes: float = 2.0) -> SobolevRegressor:
  model = SobolevRegressor(**dict(_estimator_params(estimator_config), seed=cell.seed,
                                  verbose=False,
                                  execution=Execution(checkpoint_dir=checkpoint_dir,
                                                      checkpoint_minutes=checkpoint_minutes)))
  if cell.method == "standard":
    return model.fit(data["x"], data["y"])
  if cell.method == "directional":
    return model.fit(data["x"], data["y"], data["dydx"], directions=data["directions"])
  return model.fit(data["x"], data["y"], data["dydx"])


def evaluate(model: SobolevRegressor, data: Dict[str, np.ndarray]) -> Dict[str, float]:
  """Test RMSE x 100 of values, of the delta to asset 0 and of all deltas."""
  values, deltas = model.predict_with_derivatives(data["x_test"])
  deltas = deltas.reshape(data["delta"].shape)
  rmse = lambda e: float(100.0 * np.sqrt(np.mean(np.square(e))))
  return dict(value_rmse=rmse(values - data["price"]),
              delta0_rmse=rmse(deltas[:, 0] - data["delta"][:, 0]),
              delta_rmse=rmse(deltas - data["delta"]))


def read_cells(path: str) -> List[dict]:
  """The rows of a ``cells.csv``, typed and checked (finite errors, known cells, no repeats)."""
  rows = files.read_csv(path, types=_TYPES, columns=CSV_COLUMNS)
  seen = set()
  for row in rows:
    cell = Cell(row["model"], row["n"], row["m"], row["method"], row["seed"])
    if cell in seen:
      raise ValueError(f"{path} holds {cell.name} twice.")
    seen.add(cell)
    for k in ("value_rmse", "delta0_rmse", "delta_rmse"):
      if not np.isfinite(row[k]) or row[k] < 0:
        raise ValueError(f"{path}: {cell.name} has {k}={row[k]!r}; errors are finite and >= 0.")
  return rows


# Keys a resumed workdir may change: which cells are run, reporting, checkpoint rhythm.
RESUMABLE_KEYS = ("table", "curve", "dimension", "seeds", "parts", "checkpoint_minutes",
                  "results_dir", "workdir", "plot_cases", "export")


def run_cells(cells: Sequence[Cell], config, workdir: str,
              on_fit: Optional[Callable[[Cell, SobolevRegressor, dict], None]] = None,
              log: Optional[Callable[[str], None]] = None) -> List[dict]:
  """Fits every cell not yet in ``<workdir>/cells.csv``; returns the rows of ``cells``.

  ``on_fit(cell, model, data)`` runs after each new fit (plots, exports). A fit
  killed midway resumes from ``<workdir>/checkpoints/<cell>``.
  """
  checks.check_writable_directory(workdir, "pricing workdir")
  path = os.path.join(workdir, "cells.csv")
  resuming = os.path.exists(path)
  training.check_same_config(os.path.join(workdir, "run_config.json"), config.to_dict(),
                             resuming=resuming, ignore=RESUMABLE_KEYS,
                             hint=f"Use another --workdir, or delete {workdir}.")
  rows = read_cells(path) if resuming else []
  done = {Cell(r["model"], r["n"], r["m"], r["method"], r["seed"]) for r in rows}
  todo = [c for c in cells if c not in done]
  total = sum(c.m for c in cells)
  with loggers.Progress(total, "pricing", unit="path",
                        initial=sum(c.m for c in cells if c in done)) as progress:
    log = log or progress.write
    if done & set(cells):
      log(f"[pricing] {len(done & set(cells))} of {len(cells)} cells done earlier in {path}")
    work = total - sum(c.m for c in todo)
    for cell in todo:
      data = make_data(cell, config.num_test)
      checkpoint_dir = os.path.join(workdir, "checkpoints", cell.name)
      model = fit_cell(cell, data, dict(config.estimator), checkpoint_dir,
                       config.checkpoint_minutes)
      row = dict(dataclasses.asdict(cell), **evaluate(model, data), epochs=model.n_epochs_,
                 fit_seconds=model.fit_seconds_)
      if on_fit is not None:
        on_fit(cell, model, data)
      rows.append(row)
      files.write_csv(path, rows, CSV_COLUMNS)  # The cell is done once its row is written.
      shutil.rmtree(checkpoint_dir, ignore_errors=True)
      work += cell.m
      progress.update(work, f"{cell.name}: value {row['value_rmse']:.3f}, delta0 "
                      f"{row['delta0_rmse']:.3f}")
  wanted = set(cells)
  return [r for r in rows if Cell(r["model"], r["n"], r["m"], r["method"], r["seed"]) in wanted]


def part_cells(config, part: str) -> List[Cell]:
  """The cells of one part of the config (``table``, ``curve`` or ``dimension``)."""
  seeds = list(config.seeds)
  if part == "table":
    return [Cell(model, n, m, method, s) for model, n, sizes in config.table for m in sizes
            for method in ("standard", "differential") for s in seeds]
  if part == "curve":
    c = config.curve
    return [Cell("bachelier", c.n, m, method, s) for m in c.sizes for method in c.methods
            for s in seeds]
  if part == "dimension":
    c = config.dimension
    return [Cell("bachelier", n, m, method, s) for n in c.dims for m in c.sizes
            for method in c.methods for s in seeds]
  raise ValueError(f"Unknown part {part!r} in config.parts; known: table, curve, dimension.")


def _check_config(config) -> None:
  checks.check_config(config, positive=("num_test",), non_negative=("checkpoint_minutes",),
                      seeds=("seeds",))
  if not config.parts:
    raise ValueError("config.parts is empty: nothing to run (table, curve, dimension).")
  for part in config.parts:
    if not part_cells(config, part):
      raise ValueError(f"config part {part!r} has no cells.")
  SobolevRegressor(**_estimator_params(config.estimator))._check_params()  # pylint: disable=protected-access


def report_starts(config) -> Dict[str, object]:
  """The files ``train_and_evaluate`` may write to its ``output_dir`` for ``config.parts``,
  each with how it starts (``files.check_file_destination``): an existing file that does
  not is someone else's. The ``surrogate/`` SavedModel directory is checked apart."""
  png = files.PNG_START
  starts = {}
  for part in config.parts:
    starts.update({f"{part}.csv": ",".join(CSV_COLUMNS), f"{part}.md": TITLES[part]})
    if part == "table":
      starts.update({f"predictions_{model}{n}_m{m}.png": png
                     for model, n, m in sorted({tuple(c) for c in config.plot_cases})})
      if config.export is not None:
        starts["surrogate_market.json"] = _MARKET_START
    else:
      starts[f"{part}.png"] = png
  return starts


def train_and_evaluate(config, workdir: str, output_dir: str, command: str) -> List[str]:
  """Runs (or resumes) every part of ``config`` and writes its report to ``output_dir``.

  ``table``: ``table.{md,csv}``, ``predictions_<case>.png`` and the exported
  surrogate ``surrogate/`` (with ``surrogate_market.json``); ``curve``:
  ``curve.{md,csv,png}``; ``dimension``: ``dimension.{md,csv,png}``. Returns the
  names written.
  """
  from sobolev_tf.pricing import report  # pylint: disable=g-import-not-at-top
  _check_config(config)
  cells = {part: part_cells(config, part) for part in config.parts}  # Bad cells fail here.
  checks.check_writable_directory(output_dir, "pricing report")
  for name, first in report_starts(config).items():  # Files it did not write are kept.
    checks.check_output_file(os.path.join(output_dir, name), "pricing report", starts_with=first)
  if "table" in config.parts and config.export is not None:
    files.check_saved_model_destination(os.path.join(output_dir, "surrogate"))
  plot_cases = {tuple(c) for c in config.plot_cases}
  prediction_dir = os.path.join(workdir, "predictions")

  def keep_predictions(cell, model, data):
    if cell.seed == min(config.seeds) and (cell.model, cell.n, cell.m) in plot_cases:
      values, deltas = model.predict_with_derivatives(data["x_test"])
      gen = make_generator(cell.model, cell.n, cell.seed)
      files.save_npz_atomic(os.path.join(prediction_dir, f"{cell.name}.npz"),
                            basket=gen.basket(data["x_test"]), value=values,
                            delta0=deltas.reshape(data["delta"].shape)[:, 0],
                            price=data["price"], true_delta0=data["delta"][:, 0])

  header = ["", f"Command: `{command}`  ",
            f"Estimator: `SobolevRegressor` defaults (4x20 softplus, standardised, Huge & "
            f"Savine's weights, Adam, 100 one-cycle epochs, batch max(256, m // 16)) with "
            f"{dict(config.estimator)}; seeds {list(config.seeds)}; test scenarios "
            f"{config.num_test} (Black-Scholes: 100 spots on a grid).  ",
            "Errors: test RMSE x 100 (values: percent of the unit spot; deltas: hundredths), "
            "median [min-max] over seeds.", ""]
  written = []
  for part, part_rows in cells.items():
    rows = run_cells(part_rows, config, workdir, on_fit=keep_predictions)
    files.write_csv(os.path.join(output_dir, f"{part}.csv"), rows, CSV_COLUMNS)
    written.append(f"{part}.csv")
    if part == "table":
      lines, findings, above = report.table_lines(rows)
      text = ([TITLES["table"], ""] + header + lines + [""]
              + ["Published: their notebook's outputs, one run each with unknown seeds. "
                 "'differential better': seeds where differential training has the lower "
                 "error; the last column is the median over seeds of standard / "
                 "differential error.", ""]
              + (["Published figures below our seeds' range, and orderings our median does "
                  "not share:", ""] + [f"- {f}" for f in findings]
                 if findings else ["Every published figure lies within our seeds' range or "
                                   "above it, and where differential beats standard in their "
                                   "table it does in our median."])
              + (["", "Published figures above our seeds' range (their run worse than all of "
                  "ours):", ""] + [f"- {f}" for f in above] if above else []))
      files.write_text_atomic(os.path.join(output_dir, "table.md"), "\n".join(text) + "\n")
      written.append("table.md")
      for model, n, m in sorted(plot_cases):
        preds = {}
        for method in ("standard", "differential"):
          path = os.path.join(prediction_dir, f"{Cell(model, n, m, method, min(config.seeds)).name}"
                              ".npz")
          if os.path.exists(path):
            p = files.load_npz(path, fix="delete it and run the cell again.")
            p["rmse"] = [100 * np.sqrt(np.mean((p["value"] - p["price"])**2)),
                         100 * np.sqrt(np.mean((p["delta0"] - p["true_delta0"])**2))]
            preds[method] = p
        if preds:
          name = f"predictions_{model}{n}_m{m}.png"
          report.plot_predictions(preds, f"{model} n={n}, m={m:,} paths, seed "
                                  f"{min(config.seeds)}", os.path.join(output_dir, name))
          written.append(name)
      if config.export is not None:
        written += _export(config, output_dir)
    elif part == "curve":
      gen = make_generator("bachelier", config.curve.n, min(config.seeds))
      noise = report.noise_floor(gen, 65536, _stream(min(config.seeds), _PATHS))
      text = ([f"{TITLES['curve']}{config.curve.n}", ""] + header
              + report.curve_lines(rows, noise))
      files.write_text_atomic(os.path.join(output_dir, "curve.md"), "\n".join(text) + "\n")
      report.plot_curves({meth: [r for r in rows if r["method"] == meth]
                          for meth in config.curve.methods},
                         os.path.join(output_dir, "curve.png"), noise,
                         f"Bachelier n={config.curve.n}: median and range over seeds")
      written += ["curve.md", "curve.png"]
    else:
      text = ([TITLES["dimension"] + ", ".join(map(str, config.dimension.dims)), ""]
              + header + report.dimension_lines(rows))
      files.write_text_atomic(os.path.join(output_dir, "dimension.md"), "\n".join(text) + "\n")
      report.plot_curves({f"{meth}, n={n}": [r for r in rows if r["method"] == meth
                                              and r["n"] == n]
                          for n in config.dimension.dims for meth in config.dimension.methods},
                         os.path.join(output_dir, "dimension.png"),
                         title="Bachelier baskets: median and range over seeds")
      written += ["dimension.md", "dimension.png"]
  return written


def _export(config, output_dir: str) -> List[str]:
  """The surrogate of ``config.export`` as a SavedModel, and its market beside it."""
  e = config.export
  cell = Cell(e.model, e.n, e.m, "differential", e.seed)
  data = make_data(cell, config.num_test)
  model = fit_cell(cell, data, dict(config.estimator))
  path = os.path.join(output_dir, "surrogate")
  model.export(path)
  gen = make_generator(cell.model, cell.n, cell.seed)
  market = dict(model=cell.model, n=cell.n, m=cell.m, seed=cell.seed, strike=gen.strike,
                expiry=gen.t2 - gen.t1, basket_vol=getattr(gen, "basket_vol", None),
                weights=np.asarray(getattr(gen, "weights", [1.0])).tolist(),
                **evaluate(model, data))
  files.write_text_atomic(os.path.join(output_dir, "surrogate_market.json"),
                          json.dumps(market, indent=1) + "\n")
  return ["surrogate/", "surrogate_market.json"]

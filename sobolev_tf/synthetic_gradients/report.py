"""The Table 1 report over seeds: ``<output>.md``, ``.csv`` and ``.png`` from the trainer's runs.

Each workdir is one seed of one config, with a subdirectory per method holding
``result.json`` (a finished run), ``curve.csv`` (test accuracy during training)
and ``tb/`` (the TensorBoard scalars, including the cosine between synthetic and
true gradients per split). The report tabulates the test top-1 mean +- std over
seeds next to the paper's Table 1 (CIFAR-10 row), tests each adjacent pair of the
paper's ordering, and gives the mean cosine per split.

The test of a pair (a, b) is Welch's t-test (unequal variances) of the seed means:
``t = (m_b - m_a) / sqrt(s_a^2 / n_a + s_b^2 / n_b)`` with the Welch-Satterthwaite
degrees of freedom, two-sided at ``ALPHA``; the direction of a significant gap
decides "supported" or "reversed". Holm's step-down correction over the pairs is
given next to it. With 3 seeds per method the test resolves gaps of a few seed
standard deviations, not less.
"""

from __future__ import annotations

import glob
import math
import os
import re
from typing import Dict, List, Optional, Sequence

import numpy as np

from sobolev_tf import checks
from sobolev_tf import files
from sobolev_tf import loggers
from sobolev_tf import training
from sobolev_tf.synthetic_gradients import methods as sg
from sobolev_tf.synthetic_gradients import trainer

__all__ = ["write_report", "read_run", "read_cosines", "check_named_config",
           "ordering_statements", "holm",
           "PAPER_CIFAR10", "ORDER", "ALPHA", "CSV_COLUMNS", "TITLE"]

# Table 1, CIFAR-10 with 3 SG modules: test top-1 (%) mean and std; backprop in parentheses.
PAPER_CIFAR10 = {"backprop": (94.3, None), "noprop": (54.5, 1.15), "direct": (79.2, 0.01),
                 "vfbn": (88.5, 2.70), "critic": (93.2, 0.02), "sobolev": (93.5, 0.01)}
NAMES = {"backprop": "Backprop", "noprop": "Noprop", "direct": "Direct SG", "vfbn": "VFBN",
         "critic": "Critic", "sobolev": "Sobolev"}
# The paper's ordering: Noprop < Direct SG < VFBN < Critic <= Sobolev <= Backprop.
ORDER = ("noprop", "direct", "vfbn", "critic", "sobolev", "backprop")
STRICT = ("noprop", "direct", "vfbn")  # ``a < b`` for these as the lower of a pair, else ``<=``.
ALPHA = 0.05  # Two-sided significance level of each ordering test.
# Config keys that may differ between the seeds of one method.
_SEED_KEYS = ("seed",) + trainer.RESUMABLE_KEYS
_COSINE_TAG = re.compile(r"^(?:train/)?cosine_(\d+)$")  # As the trainer writes them.
TITLE = "# Synthetic gradients on CIFAR-10 (section 4.3, Table 1)"  # The report's first line.
CSV_COLUMNS = ("seed", "method", "steps", "test_top1", "test_top5", "cosine_1", "cosine_2",
               "cosine_3", "cosine_samples")


def read_run(workdir: str) -> Optional[Dict]:
  """``dict(curve, result)`` of one run (either may be None), or None if ``workdir`` is absent.

  ``curve``: the rows of ``curve.csv`` (``loggers.read_rows``); ``result``: a
  finished run's ``result.json``, checked (steps, top-1 and top-5 in [0, 1]).
  """
  curve = None
  curve_path = os.path.join(workdir, "curve.csv")
  if os.path.exists(curve_path):
    curve = loggers.read_rows(curve_path, trainer.CURVE_COLUMNS, trainer.CURVE_TYPES) or None
  result = None
  result_path = os.path.join(workdir, "result.json")
  if os.path.exists(result_path):
    result = files.read_json(result_path, "Run the method again (scripts/synthetic_gradients.py) "
                             "or move its directory away.")
    if not isinstance(result, dict):
      raise ValueError(f"{result_path} holds {type(result).__name__}, not a run's result: it is "
                       "not the trainer's file.")
    if result.get("finished"):
      _check_result(result, result_path)
  if curve is None and result is None:
    return dict(curve=None, result=None) if os.path.isdir(workdir) else None
  return dict(curve=curve, result=result)


def _check_result(result: Dict, path: str) -> None:
  """A finished run's numbers as the trainer writes them: a step count and accuracies."""
  steps = result.get("steps")
  if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
    raise ValueError(f"{path}: steps must be a positive integer, got {steps!r}; the file is not "
                     "the trainer's, or was edited.")
  for key in ("test_top1", "test_top5"):
    checks.check_number(result.get(key), f"{path}: {key}", "a fraction in [0, 1]", low=0, high=1,
                        fix="The file is not the trainer's, or was edited.")


def check_named_config(named: Dict, runs: Sequence[tuple], config_name: str) -> None:
  """Refuses runs whose recorded config is not ``named`` (the config the report names).

  ``runs``: ``(result.json path, recorded config)`` pairs. The seed, the method
  and the logging and device settings may differ; keys a run does not record
  (added to the config file since) are not compared.
  """
  ignore = ("seed", "method", "strategy") + tuple(k for k in trainer.RESUMABLE_KEYS
                                                  if k != "num_steps")
  for path, recorded in runs:
    differences = training.config_differences(
        recorded, {k: v for k, v in named.items() if k in recorded}, ignore=ignore)
    if differences:
      raise ValueError(f"{path} is a run of another config than {config_name!r} ("
                       + "; ".join(differences[:6]) + (", ..." if len(differences) > 6 else "")
                       + "): pass the --config_name these runs used.")


def read_cosines(tb_dir: str, after_step: float) -> Optional[Dict]:
  """Mean cosine per split (1-based) over the logged training steps beyond ``after_step``.

  The trainer logs the cosine of one batch now and then as ``[train/]cosine_<k>``
  for split ``k`` (0-based). A resumed run has one event file per segment: a
  later segment replaces the values an earlier one logged from the later one's
  first step on (those of a killed segment after its last checkpoint). Returns
  ``dict(cosines, samples)``, samples being the fewest values of a split, or None
  when ``tb_dir`` has no cosine.
  """
  from tensorboard.backend.event_processing import event_file_loader  # pylint: disable=g-import-not-at-top
  values: Dict[int, Dict[int, float]] = {}
  for path in sorted(glob.glob(os.path.join(tb_dir, "events.out.tfevents.*")),
                     key=_event_file_order):
    segment: Dict[int, Dict[int, float]] = {}
    first_step = None
    for event in event_file_loader.EventFileLoader(path).Load():
      for value in event.summary.value:
        match = _COSINE_TAG.match(value.tag)
        if match:
          first_step = event.step if first_step is None else min(first_step, event.step)
          number = (float(np.asarray(_tensor_value(value))) if value.HasField("tensor")
                    else float(value.simple_value))
          segment.setdefault(int(match.group(1)) + 1, {})[event.step] = number
    if first_step is None:
      continue
    for split in values:
      values[split] = {s: v for s, v in values[split].items() if s < first_step}
    for split, by_step in segment.items():
      values.setdefault(split, {}).update(by_step)
  values = {k: [v for s, v in by_step.items() if s > after_step] for k, by_step in values.items()}
  values = {k: v for k, v in values.items() if v}
  if not values:
    return None
  return dict(cosines={k: float(np.mean(v)) for k, v in sorted(values.items())},
              samples=min(len(v) for v in values.values()))


def _event_file_order(path: str) -> tuple:
  """Event files by creation time (``events.out.tfevents.<seconds>.<host>...``), then name."""
  match = re.search(r"tfevents\.(\d+)", os.path.basename(path))
  return (int(match.group(1)) if match else 0, os.path.basename(path))


def _tensor_value(value):
  from tensorboard.util import tensor_util  # pylint: disable=g-import-not-at-top
  return tensor_util.make_ndarray(value.tensor)


def _seed(result: Dict, path: str) -> int:
  seed = result.get("seed", (result.get("config") or {}).get("seed"))
  if seed is None:
    raise ValueError(f"{path} names no seed (neither 'seed' nor 'config.seed').")
  return int(seed)


def _read_seed(workdir: str) -> Dict[str, Dict]:
  """The runs of one workdir by method, each with its seed and cosines."""
  runs = {}
  for method in sg.METHODS:
    run = read_run(os.path.join(workdir, method))
    if run is None:
      continue
    result = run["result"]
    run["finished"] = bool(result and result.get("finished"))
    if run["finished"]:
      run["seed"] = _seed(result, os.path.join(workdir, method, "result.json"))
      run["cosines"] = read_cosines(os.path.join(workdir, method, "tb"),
                                    after_step=result["steps"] / 2)
    runs[method] = run
  seeds = {run["seed"] for run in runs.values() if run["finished"]}
  if len(seeds) > 1:
    raise ValueError(f"{workdir} holds runs of several seeds {sorted(seeds)}: one workdir per "
                     "seed.")
  return runs


def _check_seeds(workdirs: Sequence[str], by_workdir: List[Dict[str, Dict]]) -> Dict[str, List]:
  """One seed per workdir, no seed twice, the same config (apart from the seed) per method.

  Returns, per workdir, the methods whose result records no config (so were not compared).
  """
  seen = {}
  for workdir, runs in zip(workdirs, by_workdir):
    for run in runs.values():
      if run["finished"]:
        if run["seed"] in seen and seen[run["seed"]] != workdir:
          raise ValueError(f"{seen[run['seed']]} and {workdir} both hold seed {run['seed']}: "
                           "a seed counted twice would shrink the spread.")
        seen[run["seed"]] = workdir
  unchecked: Dict[str, List[str]] = {}
  for method in sg.METHODS:
    runs = [(w, runs[method]["result"]) for w, runs in zip(workdirs, by_workdir)
            if method in runs and runs[method]["finished"]]
    for w, r in runs:
      if not r.get("config"):
        unchecked.setdefault(w, []).append(NAMES[method])
    for i, (w0, r0) in enumerate(runs):
      for w, r in runs[i + 1:]:
        if r0["steps"] != r["steps"]:
          raise ValueError(f"{method}: {w0} ran {r0['steps']:,} steps, {w} {r['steps']:,}.")
        if r0.get("config") and r.get("config"):
          differences = training.config_differences(r0["config"], r["config"],
                                                    ignore=_SEED_KEYS)
          if differences:
            raise ValueError(f"{method}: {w0} and {w} ran different configs: "
                             + "; ".join(differences))
  return unchecked


def _mean_std(values: Sequence[float]) -> tuple:
  values = np.asarray(values, dtype=float)
  return float(values.mean()), (float(values.std(ddof=1)) if values.size > 1 else float("nan"))


def _welch(a: Sequence[float], b: Sequence[float]) -> Dict[str, float]:
  """Welch's t-test of mean(b) - mean(a): t, df, two-sided p and the 1 - ALPHA interval."""
  from scipy import stats  # pylint: disable=g-import-not-at-top
  result = stats.ttest_ind(b, a, equal_var=False)
  interval = result.confidence_interval(1.0 - ALPHA)
  return dict(t=float(result.statistic), df=float(result.df), p=float(result.pvalue),
              low=float(interval.low), high=float(interval.high))


def holm(p_values: Sequence[float]) -> List[float]:
  """Holm's step-down adjusted p-values (family-wise error over ``p_values``)."""
  order = np.argsort(p_values)
  adjusted, running = [0.0] * len(p_values), 0.0
  for rank, i in enumerate(order):
    running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
    adjusted[i] = running
  return adjusted


def _pair_test(a: str, b: str, top1: Dict[str, List[float]]) -> Dict:
  """The paper's ``a < b`` (or ``a <= b``): Welch's test, or why there is none."""
  rel = "<" if a in STRICT else "<="
  out = dict(a=a, b=b, rel=rel, head=f"- {NAMES[a]} {rel} {NAMES[b]}: ")
  if a not in top1 or b not in top1:
    return dict(out, kind="missing", detail="not comparable yet (runs missing or unfinished).")
  xa, xb = top1[a], top1[b]
  (ma, sa), (mb, sb) = _mean_std(xa), _mean_std(xb)
  out["gap"] = f"{100 * (mb - ma):+.1f} points ({100 * ma:.1f}% vs {100 * mb:.1f}%)"
  out["positive"] = mb > ma
  if len(xa) < 2 or len(xb) < 2:
    few = " and ".join(NAMES[m] for m, x in ((a, xa), (b, xb)) if len(x) < 2)
    return dict(out, kind="untested", detail=f"{out['gap']}; no test: fewer than 2 seeds of "
                f"{few}.")
  if sa + sb < 1e-9 * max(abs(ma), abs(mb), 1.0):
    return dict(out, kind="untested", detail=f"{out['gap']}; no test: no spread over the seeds.")
  out.update(_welch(xa, xb))
  out["separate"] = ma + sa < mb - sb or mb + sb < ma - sa
  return out


def ordering_statements(top1: Dict[str, List[float]]) -> List[Dict]:
  """Every adjacent pair of the paper's ordering, tested on each method's top-1 over seeds.

  Each entry has ``kind``: ``supported`` (b significantly higher, two-sided at
  ALPHA), ``reversed`` (a significantly higher), ``unresolved``, ``untested``
  (fewer than 2 seeds, or no spread) or ``missing``; ``holm_significant``; and
  ``text``, the report's line.
  """
  tests = [_pair_test(a, b, top1) for a, b in zip(ORDER[:-1], ORDER[1:])]
  tested = [t for t in tests if "p" in t]
  for t, adjusted in zip(tested, holm([t["p"] for t in tested])):
    t["p_holm"] = adjusted
  for t in tests:
    t["holm_significant"] = t.get("p_holm", 1.0) < ALPHA
    if "p" not in t:
      t["text"] = t["head"] + t["detail"]
      continue
    if t["p"] < ALPHA:
      t["kind"] = "supported" if t["positive"] else "reversed"
      verdict = (f"supported, {NAMES[t['b']]} higher" if t["positive"] else
                 f"reversed, {NAMES[t['a']]} higher")
    else:
      t["kind"] = "unresolved"
      verdict = ("consistent but not resolved" if t["rel"] == "<=" and t["positive"] else
                 "not resolved") + ": the gap is within the seed spread"
    t["text"] = (t["head"] + f"{verdict}; {t['gap']}, {100 * (1 - ALPHA):.0f}% interval of the "
                 f"gap [{100 * t['low']:+.1f}, {100 * t['high']:+.1f}]; Welch t = {t['t']:.2f}, "
                 f"df = {t['df']:.1f}, p = {t['p']:.2g} (Holm-adjusted {t['p_holm']:.2g}); the "
                 "mean +- std intervals " + ("do not overlap." if t["separate"] else "overlap."))
  return tests


def _summary(tests: Sequence[Dict]) -> str:
  """The plain sentence: which orderings the runs support, which they cannot resolve."""
  label = lambda t: f"{NAMES[t['a']]} {t['rel']} {NAMES[t['b']]}"
  named = lambda kind: [label(t) for t in tests if t["kind"] == kind]
  parts = []
  for kind, phrase in (("supported", "support"), ("reversed", "reverse"),
                       ("unresolved", "cannot resolve"), ("untested", "do not test"),
                       ("missing", "cannot compare yet")):
    if named(kind):
      parts.append(f"{phrase} {', '.join(named(kind))}")
  text = "In short, these runs " + "; they ".join(parts) + "."
  significant = [t for t in tests if t["kind"] in ("supported", "reversed")]
  if significant:
    kept = [label(t) for t in significant if t["holm_significant"]]
    text += (f" After Holm's correction for the {sum('p' in t for t in tests)} tests, "
             + (f"{', '.join(kept)} remain{'s' if len(kept) == 1 else ''} significant."
                if kept else "none remains significant."))
  return text


def _fmt(mean: float, std: float, scale: float = 100.0, digits: int = 1) -> str:
  if math.isnan(std):
    return f"{scale * mean:.{digits}f}"
  return f"{scale * mean:.{digits}f} +- {scale * std:.{digits}f}"


def _splits(runs: Sequence[Dict]) -> List[int]:
  return sorted({k for r in runs for k in r["cosines"]["cosines"]})


def _cosine_stats(runs: Sequence[Dict], split: int) -> tuple:
  values = [r["cosines"]["cosines"][split] for r in runs if split in r["cosines"]["cosines"]]
  return _mean_std(values) if values else (float("nan"), float("nan"))


def write_report(workdirs: Sequence[str], config_name: str, output: str, command: str,
                 named_config: Optional[Dict] = None) -> str:
  """Writes ``output``.md, .csv and .png for the seeds in ``workdirs``; returns the markdown.

  ``command`` is the command line that made the report, quoted at its top.
  ``named_config``: the config ``config_name`` names (a dict), which every run
  that records its config must have used. Nothing is written unless some run
  has finished.
  """
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  workdirs = list(workdirs)
  if not workdirs:
    raise ValueError("workdirs is empty: give one workdir per seed.")
  by_workdir = [_read_seed(w) for w in workdirs]
  unchecked = _check_seeds(workdirs, by_workdir)
  finished = {m: [runs[m] for runs in by_workdir if m in runs and runs[m]["finished"]]
              for m in ORDER}
  checks.check_runs_to_report(sum(map(len, finished.values())), ", ".join(workdirs),
                              output + ".md")
  if named_config is not None:
    check_named_config(named_config, [
        (os.path.join(w, m, "result.json"), runs[m]["result"]["config"])
        for w, runs in zip(workdirs, by_workdir) for m in runs
        if runs[m]["finished"] and runs[m]["result"].get("config")], config_name)
  top1 = {m: [r["result"]["test_top1"] for r in runs] for m, runs in finished.items() if runs}
  name = config_name
  seeds = sorted({r["seed"] for runs in finished.values() for r in runs})
  sources = {}
  for runs in finished.values():
    for r in runs:
      if r["result"].get("source"):
        sources.setdefault(r["seed"], r["result"]["source"])
  lines = [f"{TITLE}, config `{name}`", "",
           f"Report: `{command}`", "",
           "Runs, one per seed (resumable; one method after another on the 2-core CPU): "
           "`python scripts/synthetic_gradients.py "
           f"--config=configs/synthetic_gradients.py:{name} --config.seed=<seed> "
           f"--methods={','.join(sg.METHODS)} --workdir=workdirs/sg_{name}_seed<seed>`.", ""]
  lines += [f"Seed {seed}: {source}" for seed, source in sorted(sources.items())]
  if unchecked:
    lines.append("Not checked against the other seeds' config (none recorded): " + "; ".join(
        f"{w}: {'all methods' if len(names) == len(sg.METHODS) else ', '.join(names)}"
        for w, names in unchecked.items()) + ".")
  lines += ["" if sources or unchecked else None,
            f"Every number below is from config `{name}`"
            + (" (a CPU-scale setting: quarter-width network, 8K updates of batch 64; see "
               "`configs/synthetic_gradients.py`), not the paper's setting; the paper's column "
               "is Table 1 (full-width network, 10 asynchronous GPU workers)."
               if name != "cifar10" else "."), "",
            f"Seeds: {', '.join(map(str, seeds)) or 'none finished'}; test accuracy on the "
            "10,000 test images at the last update; +- is the standard deviation over seeds.", "",
            "| method | paper top-1 (Table 1) | ours: test top-1 (%) | per seed | test top-5 (%) "
            "| seeds | cosine split 1 / 2 / 3 |", "|---|---:|---:|---|---:|---:|---|"]
  lines = [line for line in lines if line is not None]
  csv_rows = []
  for method in ORDER:
    paper, paper_std = PAPER_CIFAR10[method]
    paper_cell = f"{paper}%" + (f" +- {paper_std}" if paper_std is not None else " (backprop)")
    runs = finished[method]
    if not runs:
      lines.append(f"| {NAMES[method]} | {paper_cell} | - | - | - | 0 | - |")
      continue
    per_seed = ", ".join(f"{100 * r['result']['test_top1']:.1f} (seed {r['seed']})"
                         for r in sorted(runs, key=lambda r: r["seed"]))
    top5 = _mean_std([r["result"]["test_top5"] for r in runs])
    with_cosines = [r for r in runs if r.get("cosines")]
    cosine_cell = "-"
    if with_cosines:
      cosine_cell = " / ".join(_fmt(*_cosine_stats(with_cosines, k), scale=1, digits=2)
                               for k in _splits(with_cosines))
      cosine_cell += f" ({len(with_cosines)} seed{'s' if len(with_cosines) > 1 else ''})"
    lines.append(f"| {NAMES[method]} | {paper_cell} | {_fmt(*_mean_std(top1[method]))} | "
                 f"{per_seed} | {_fmt(*top5)} | {len(runs)} | {cosine_cell} |")
    has_modules = method not in ("backprop", "noprop")
    for r in runs:
      cos = (r.get("cosines") or {}).get("cosines", {})
      csv_rows.append(dict(seed=r["seed"], method=method, steps=r["result"]["steps"],
                           test_top1=r["result"]["test_top1"],
                           test_top5=r["result"]["test_top5"],
                           **{f"cosine_{k}": cos.get(k, "") for k in (1, 2, 3)},
                           cosine_samples=((r.get("cosines") or {}).get("samples", 0)
                                           if has_modules else "")))
  samples = [r["cosine_samples"] for r in csv_rows if r["cosine_samples"]]
  unfinished = [f"{NAMES[m]} ({w})" for m in ORDER for w, runs in zip(workdirs, by_workdir)
                if m in runs and not runs[m]["finished"]]
  if unfinished:
    lines += ["", "Started, not finished (not counted): " + ", ".join(unfinished) + "."]
  lines += ["", "Cosine: between the synthetic gradient a method feeds split k and the true "
            "gradient of the loss there, over one batch; the mean over the steps logged in the "
            "second half of training, then mean +- std over the seeds whose TensorBoard logs "
            "were kept (Noprop and Backprop use no synthetic gradient)"
            + (f"; {min(samples)}-{max(samples)} logged batches per run." if samples else "."),
            "",
            "The paper's ordering (Noprop < Direct SG < VFBN < Critic <= Sobolev <= Backprop), "
            "each adjacent pair tested on the top-1 over seeds with Welch's t-test, two-sided at "
            f"{ALPHA}; \"supported\" means the later method is significantly higher, also for "
            "<= pairs; the interval is the confidence interval of the difference of the means:",
            ""]
  tests = ordering_statements(top1)
  lines += [t["text"] for t in tests] + ["", _summary(tests)]
  _plot(plt, finished, output + ".png", name)
  files.write_csv(output + ".csv", csv_rows, CSV_COLUMNS)
  lines += ["", f"Per run: `{os.path.basename(output)}.csv`.", "",
            f"![test top-1 over seeds and cosines per split]({os.path.basename(output)}.png)", ""]
  text = "\n".join(lines)
  files.write_text_atomic(output + ".md", text)
  return text


def _plot(plt, finished: Dict[str, List[Dict]], path: str, name: str) -> None:
  """Top-1 per seed and mean +- std; cosine per split; test top-1 curves."""
  fig, (ax_top1, ax_cos, ax_curve) = plt.subplots(1, 3, figsize=(16, 4.5))
  labels = [NAMES[m] for m in ORDER]
  curve_seeds = set()
  for i, method in enumerate(ORDER):
    values = [100 * r["result"]["test_top1"] for r in finished[method]]
    if not values:
      continue
    ax_top1.plot([i] * len(values), values, "o", color=f"C{i}", alpha=0.6, ms=4)
    mean, std = _mean_std(values)
    ax_top1.errorbar([i + 0.15], [mean], yerr=[0 if math.isnan(std) else std], fmt="s",
                     color="k", capsize=3)
    for r in finished[method]:
      c = r["curve"]
      if c is not None:
        curve_seeds.add(r["seed"])
        ax_curve.plot([row["step"] for row in c], [100 * row["test_top1"] for row in c], "-",
                      color=f"C{i}", alpha=0.6, label=NAMES[method])
  ax_top1.set_xticks(range(len(ORDER)), labels, rotation=30)
  ax_top1.set_ylabel("test top-1 (%)")
  ax_top1.set_title("final top-1: seeds (dots), mean \u00b1 std", fontsize=10)
  width = 0.2
  with_modules = [m for m in ORDER if m not in ("noprop", "backprop")]
  cosine_seeds = set()
  for j, method in enumerate(with_modules):
    runs = [r for r in finished[method] if r.get("cosines")]
    if not runs:
      continue
    cosine_seeds.update(r["seed"] for r in runs)
    splits = _splits(runs)
    stats_ = [_cosine_stats(runs, k) for k in splits]
    ax_cos.bar(np.array(splits) + (j - (len(with_modules) - 1) / 2) * width,
               [m for m, _ in stats_], width, yerr=[0 if math.isnan(s) else s for _, s in stats_],
               capsize=2, color=f"C{ORDER.index(method)}", label=NAMES[method])
    ax_cos.set_xticks(splits)
  seeds_label = lambda seeds: ", ".join(map(str, sorted(seeds))) or "none"
  ax_cos.set_xlabel("split")
  ax_cos.set_ylabel("cosine(synthetic, true gradient)")
  ax_cos.set_title(f"cosine, 2nd half of training (seeds {seeds_label(cosine_seeds)})",
                   fontsize=10)
  ax_cos.legend(fontsize=8)
  handles, curve_labels = ax_curve.get_legend_handles_labels()
  unique = dict(zip(curve_labels, handles))
  ax_curve.legend(unique.values(), unique.keys(), fontsize=8)
  ax_curve.set_xlabel("main-network updates")
  ax_curve.set_ylabel("test top-1 (%)")
  ax_curve.set_title(f"{name}: test top-1 (seeds {seeds_label(curve_seeds)})", fontsize=10)
  for ax in (ax_top1, ax_cos, ax_curve):
    ax.grid(alpha=0.3)
  fig.tight_layout()
  files.save_figure_atomic(fig, path, dpi=100, bbox_inches="tight")
  plt.close(fig)

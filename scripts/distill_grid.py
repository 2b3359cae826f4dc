r"""The Figure 4 grid: trains (resumably) and reports games x fractions x methods.

    python scripts/distill_grid.py --config=configs/distill.py:grid \
        --data_dir=data/distillation --teachers_dir=teachers \
        --workdir=workdirs/distill_grid
    python scripts/distill_grid.py ... --report_only   # Report the finished runs so far.
    python scripts/distill_grid.py ... --report_only --merge_report=results/distillation
        # ... plus the cells of an earlier report that this workdir has not finished.

Writes to --output_dir: curves.csv (every evaluation of every run), final.csv
(per game, fraction and method: selected learning rate, mean and std over seeds
of the final test action error and KL, wall time), figure4.md and figure4.png
(rows = games; columns = fractions, action error then KL; regular vs Sobolev).
"""

import os
import sys
from typing import List

from absl import app
from absl import flags
from ml_collections import config_flags

from sobolev_tf import tf_startup  # pylint: disable=g-import-not-at-top
from sobolev_tf import checks  # pylint: disable=g-import-not-at-top
from sobolev_tf.atari import distill_grid  # pylint: disable=g-import-not-at-top
from sobolev_tf.atari import evaluation  # pylint: disable=g-import-not-at-top
from sobolev_tf.atari import train_teacher  # pylint: disable=g-import-not-at-top
from sobolev_tf.files import save_figure_atomic  # pylint: disable=g-import-not-at-top
from sobolev_tf.files import write_text_atomic  # pylint: disable=g-import-not-at-top

_DEFAULT_CONFIG = os.path.join(os.path.dirname(__file__), "..", "configs", "distill.py:grid")
_CONFIG = config_flags.DEFINE_config_file(
    "config", _DEFAULT_CONFIG,
    "configs/distill.py:grid (CPU scale) or :grid_quick.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Root of the grid's runs.", required=True)
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Directory with <game>.npz datasets.",
                                required=True)
_TEACHERS_DIR = flags.DEFINE_string(
    "teachers_dir", os.path.join(os.path.dirname(__file__), "..", "teachers"),
    "Directory of teacher workdirs, one per game: <teachers_dir>/<game>/ (default: the "
    "shipped teachers/).")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", "results/distillation", "Report directory.")
_REPORT_ONLY = flags.DEFINE_bool("report_only", False, "Only report the finished runs.")
_PLAY_EPISODES = flags.DEFINE_integer(
    "play_episodes", 0, "Also score each selected student (first seed) over this many games, "
    "next to its teacher's <teachers_dir>/<game>/evaluation.json (0: skip).", lower_bound=0)
_MERGE_REPORT = flags.DEFINE_string(
    "merge_report", None, "An earlier report directory (final.csv, curves.csv): its cells "
    "(game, fraction, method) that this workdir has not finished are kept in the report, "
    "e.g. cells run on another machine. Finished cells here replace its cells.")


_TITLE = "# Policy distillation (section 4.2, Figure 4)"  # figure4.md's first line.
# How each file of a report starts: an existing file that does not is someone else's.
_STARTS = {"figure4.md": _TITLE, "final.csv": "game,fraction,method",
           "curves.csv": "game,fraction,method", "figure4.png": b"\x89PNG"}


def plot(config, curves, path) -> List[str]:
  """Writes the Figure 4 grid of test curves to `path`; returns the titles of empty panels."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  games, fractions = list(config.games), list(config.fractions)
  fig, axes = plt.subplots(len(games), 2 * len(fractions), squeeze=False,
                           figsize=(3 * 2 * len(fractions), 2.6 * len(games)))
  colors = {"regular": "tab:blue", "sobolev": "tab:red"}
  empty = []
  for i, game in enumerate(games):
    for j, fraction in enumerate(fractions):
      for k, metric in enumerate(("action_error", "kl")):
        ax = axes[i][k * len(fractions) + j]
        title = (f"{game} {100 * fraction:g}%: test "
                 f"{'action error' if metric == 'action_error' else 'KL'}")
        plotted = False
        for method in config.methods:
          rows = [c for c in curves if c["selected"] and c["split"] == "test" and
                  (c["game"], c["fraction"], c["method"]) == (game, fraction, method)]
          for seed in sorted({r["seed"] for r in rows}):
            pts = [(r["step"], r[metric]) for r in rows if r["seed"] == seed]
            ax.plot(*zip(*pts), color=colors[method], alpha=0.8,
                    label=method if seed == min(r["seed"] for r in rows) else None)
            plotted = True
        if not plotted:  # a partial report (--report_only while the grid runs)
          ax.text(0.5, 0.5, "not finished yet", ha="center", va="center",
                  transform=ax.transAxes, fontsize=8, color="gray")
          empty.append(title)
        ax.set_title(title, fontsize=8)
        ax.set_xlabel("step", fontsize=7)
        ax.tick_params(labelsize=6)
        if i == 0 and j == 0:
          ax.legend(fontsize=7)
  fig.tight_layout()
  save_figure_atomic(fig, path, dpi=90)
  return empty


def main(argv):
  del argv
  tf_startup.default_script_verbosity()
  config = _CONFIG.value
  checks.check_config_kind(config, _DEFAULT_CONFIG)
  if _REPORT_ONLY.value and not os.path.isdir(_WORKDIR.value):
    raise ValueError(f"--report_only: no grid workdir {_WORKDIR.value}; nothing to report.")
  checks.check_writable_directory(_OUTPUT_DIR.value, "report")
  for name, start in _STARTS.items():
    checks.check_output_file(os.path.join(_OUTPUT_DIR.value, name), "report", starts_with=start)
  # Read before any training, so that a wrong path fails now.
  earlier = distill_grid.read_report(_MERGE_REPORT.value) if _MERGE_REPORT.value else None
  teachers = {}
  if "sobolev" in config.methods and not _REPORT_ONLY.value:
    # Every teacher before any training: a missing one fails now, not hours later.
    for game in config.games:
      teachers[game], _ = train_teacher.load_teacher(os.path.join(_TEACHERS_DIR.value, game),
                                                     game)

  results = distill_grid.run_grid(config, _WORKDIR.value, _DATA_DIR.value, teachers.get,
                                  train=not _REPORT_ONLY.value)
  if not _MERGE_REPORT.value:
    checks.check_runs_to_report(len(results), _WORKDIR.value,
                                os.path.join(_OUTPUT_DIR.value, "figure4.md"))
  out = _OUTPUT_DIR.value
  curves = distill_grid.collect_curves(results)
  summary = distill_grid.summarise(results)
  if _PLAY_EPISODES.value:
    distill_grid.add_student_scores(summary, _PLAY_EPISODES.value)
  if _MERGE_REPORT.value:
    summary, curves = distill_grid.merge_report(summary, curves, *earlier)
  teacher_scores = {}
  for game in config.games:
    path = os.path.join(_TEACHERS_DIR.value or "", game, "evaluation.json")
    if _TEACHERS_DIR.value and os.path.exists(path):
      teacher_scores[game] = evaluation.read_result(path, game)["mean"]
  distill_grid.write_report_csv(os.path.join(out, "curves.csv"), curves)
  distill_grid.write_report_csv(os.path.join(out, "final.csv"), summary)
  plot(config, curves, os.path.join(out, "figure4.png"))
  name = os.path.basename(sys.argv[0])
  lines = [_TITLE, "",
           f"Command: `python scripts/{name} {' '.join(sys.argv[1:])}`", "",
           f"Settings: {config.num_steps:,} steps of batch {config.batch_size}, learning rate selected "
           f"from {list(config.learning_rates)} by final validation KL"
           + (f" (Sobolev: alpha {config.alpha:g}, then alpha from "
              f"{sorted({config.alpha, *config.alpha_search})} at the selected rate)"
              if config.get("alpha_search") else f" (Sobolev: alpha {config.alpha:g})")
           + f", seeds {list(config.seeds)}. A CPU-scale setting, not the paper's (unstated) "
           "budget."
           + (f" Student score: the first seed's student of each cell, mean +- std over "
              f"{_PLAY_EPISODES.value} games (sampled actions); teacher score: its "
              "evaluation.json." if _PLAY_EPISODES.value else ""), "",
           "| game | train fraction | method | lr | alpha | seeds | train states "
           "| test action error | test KL | wall min/run | student score | teacher score |",
           "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
  for r in sorted(summary, key=lambda r: (r["game"], r["fraction"], r["method"])):
    alpha = f"{r['alpha']:g}" if r["method"] == "sobolev" else "-"
    lines.append(f"| {r['game']} | {100 * r['fraction']:g}% | {r['method']} | "
                 f"{r['learning_rate']:g} | {alpha} | "
                 f"{r['seeds']} | {r['train_states']:,} | "
                 f"{r['action_error']:.4f} +- {r['action_error_std']:.4f} | "
                 f"{r['kl']:.4f} +- {r['kl_std']:.4f} | {r['wall_minutes']:.1f} | "
                 + (f"{r['student_score']:.1f} +- {r['student_score_std']:.1f}"
                    if "student_score" in r else "-")
                 + f" | {teacher_scores.get(r['game'], '-')} |")
  cells = {(r["game"], r["fraction"]): {} for r in summary}
  for r in summary:
    cells[(r["game"], r["fraction"])][r["method"]] = r
  lines += ["", "Sobolev vs regular (final test metrics, mean over seeds):", ""]
  for (game, fraction), by_method in sorted(cells.items()):
    if {"regular", "sobolev"} <= set(by_method):
      reg, sob = by_method["regular"], by_method["sobolev"]
      lines.append(f"- {game} {100 * fraction:g}%: action error {reg['action_error']:.4f} -> "
                   f"{sob['action_error']:.4f}, KL {reg['kl']:.4f} -> {sob['kl']:.4f} "
                   f"({'closer' if sob['kl'] < reg['kl'] else 'NOT closer'} to the teacher "
                   "in KL)")
  lines += ["", "Overfitting (final test KL over its minimum during training, selected runs, "
            "mean over seeds; 1.00 = none):", ""]
  for (game, fraction), by_method in sorted(cells.items()):
    ratios = []
    for method in config.methods:
      runs = {}
      for c in curves:
        if (c["selected"] and c["split"] == "test" and
            (c["game"], c["fraction"], c["method"]) == (game, fraction, method)):
          runs.setdefault(c["seed"], []).append(c["kl"])
      if runs:
        ratio = sum(kls[-1] / min(kls) for kls in runs.values()) / len(runs)
        ratios.append(f"{method} {ratio:.2f}")
    lines.append(f"- {game} {100 * fraction:g}%: " + ", ".join(ratios))
  lines += ["", "![Figure 4](figure4.png)", ""]
  write_text_atomic(os.path.join(out, "figure4.md"), "\n".join(lines))
  print("\n".join(lines))


if __name__ == "__main__":
  app.run(main)

r"""results/teachers.md and teachers.png from the teachers' workdirs (learning curves, scores).

    python scripts/teachers_report.py --workdirs=pong:workdirs/teachers/pong

Reads each workdir's episodes.csv (training episodes: frames, score) and every
evaluation*.json in it (written by scripts/evaluate_policy.py --output=<workdir>/evaluation.json;
one table row each).
"""

import glob
import os
import sys

from absl import app
from absl import flags
import numpy as np

from sobolev_tf import checks
from sobolev_tf import loggers
from sobolev_tf.atari import evaluation
from sobolev_tf.atari import games
from sobolev_tf.atari import train_teacher
from sobolev_tf.files import save_figure_atomic
from sobolev_tf.files import write_text_atomic

_WORKDIRS = flags.DEFINE_list("workdirs", None, "game:workdir pairs.", required=True)
_OUTPUT_DIR = flags.DEFINE_string("output_dir", "results", "Where teachers.md/.png go.")
_TITLE = "# Atari teachers (SM section 3, A2C)"  # teachers.md's first line.


def _episodes(path):
  """Frames and scores of the finished training games (none yet is a valid report)."""
  if not os.path.exists(path):
    raise ValueError(f"No {path}; train the teacher first.")
  rows = loggers.read_rows(path, train_teacher.EPISODE_COLUMNS, train_teacher.EPISODE_TYPES,
                           step_column="frames", key_columns=None)
  return (np.array([r["frames"] for r in rows], float),
          np.array([r["score"] for r in rows], float))


def _pairs(values):
  """(game, workdir) from ``game:workdir`` values, all checked before any is read."""
  if not values:
    raise ValueError("--workdirs is empty: give game:workdir pairs, e.g. pong:teachers/pong.")
  pairs = []
  for value in values:
    if ":" not in value:
      raise ValueError(f"--workdirs: {value!r} is not game:workdir (e.g. pong:teachers/pong).")
    game, workdir = value.split(":", 1)
    games.get_game(game)
    if not os.path.isdir(workdir):
      raise ValueError(f"--workdirs: no directory {workdir} (for {game}).")
    if game in [g for g, _ in pairs]:
      raise ValueError(f"--workdirs: {game} is given twice.")
    pairs.append((game, workdir))
  return pairs


def main(argv):
  del argv
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  pairs = _pairs(_WORKDIRS.value)
  # Everything read (and checked) before the report directory is touched.
  runs = [(game, workdir, *_episodes(os.path.join(workdir, "episodes.csv")),
           [(path, evaluation.read_result(path, game)) for path in
            sorted(glob.glob(os.path.join(workdir, "evaluation*.json")))])
          for game, workdir in pairs]
  for name, start in (("teachers.md", _TITLE), ("teachers.png", b"\x89PNG")):
    checks.check_output_file(os.path.join(_OUTPUT_DIR.value, name), "report", starts_with=start)
  fig, axes = plt.subplots(1, len(pairs), figsize=(5 * len(pairs), 3.5), squeeze=False)
  lines = [_TITLE, "",
           f"Command: `python scripts/teachers_report.py {' '.join(sys.argv[1:])}`", "",
           "Training scores are full games played by the sampling policy during training, "
           "by an agent whose weights change every 5 agent steps, within each game. The "
           "evaluation is of the frozen checkpoint, the teacher the students learn from; its "
           "protocol is in `sobolev_tf/atari/evaluation.py`. The two can differ a lot "
           "(Breakout: `teachers_frozen_vs_learning.md`).", "",
           "| game | frames trained | last-100 training mean | evaluation mean +- std (episodes) "
           "| evaluated checkpoint | random play | evaluation command |",
           "|---|---:|---:|---:|---|---:|---|"]
  for ax, (game, _, frames, scores, evaluations) in zip(axes[0], runs):
    spec = games.get_game(game)
    window = min(100, len(scores))
    rolling = np.convolve(scores, np.ones(window) / window, mode="valid") if window else []
    ax.plot(frames / 1e6, scores, ".", ms=2, alpha=0.3)
    if len(rolling):
      ax.plot(frames[window - 1:] / 1e6, rolling, lw=2, label=f"mean of {window}")
    ax.axhline(spec.random_score, color="gray", ls=":", label="random play")
    ax.set_xlabel("frames (millions)")
    ax.set_ylabel("episode score")
    ax.set_title(game)
    ax.legend(fontsize=7)
    # One row per evaluation file (evaluation.json, evaluation30.json, ...): the
    # same checkpoint measured over more games is kept next to the first measure.
    last = float(np.mean(scores[-100:])) if len(scores) else float("nan")
    for _, e in evaluations or [(None, None)]:
      score, command, checkpoint = "not evaluated yet", "", ""
      if e:
        score = f"{e['mean']:.1f} +- {e['std']:.1f} ({e['episodes']})"
        command = f"`{e.get('command', '')}`"
        checkpoint = os.path.basename(e.get("checkpoint", ""))
      lines.append(f"| {game} | {int(frames[-1]) if len(frames) else 0:,} | {last:.1f} | "
                   f"{score} | {checkpoint} | {spec.random_score} | {command} |")
  os.makedirs(_OUTPUT_DIR.value, exist_ok=True)
  png = os.path.join(_OUTPUT_DIR.value, "teachers.png")
  save_figure_atomic(fig, png, dpi=100, bbox_inches="tight")
  missing = sorted(set(games.GAMES) - {game for game, _ in pairs})
  if missing:
    lines += ["", f"Not trained yet: {', '.join(missing)}."]
  lines += ["", "![learning curves](teachers.png)"]
  write_text_atomic(os.path.join(_OUTPUT_DIR.value, "teachers.md"), "\n".join(lines) + "\n")
  print("\n".join(lines))


if __name__ == "__main__":
  app.run(main)

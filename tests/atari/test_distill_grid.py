"""The Figure 4 grid on synthetic frames: selection on validation, resume, report."""

import copy
import json
import os
import signal
import subprocess
import sys

import tensorflow as tf

import sobolev_tf as st
from sobolev_tf.atari import networks
from configs import distill as distill_configs
from sobolev_tf.atari import distill_grid
from tests.atari.test_distill import _synthetic_dataset

REPO = os.path.join(os.path.dirname(__file__), "..", "..")


class GridTest(tf.test.TestCase):

  def test_grid_selects_on_validation_resumes_and_reports(self):
    tf.random.set_seed(0)
    teacher = networks.AtariTeacher(3)
    root = self.create_tempdir().full_path
    data_dir = os.path.join(root, "data")
    os.makedirs(data_dir)
    _synthetic_dataset(os.path.join(data_dir, "pong.npz"), teacher, episode_length=4)
    config = distill_configs.get_config("grid_quick")
    workdir = os.path.join(root, "grid")
    logs = []
    results = distill_grid.run_grid(config, workdir, data_dir, lambda game: teacher,
                                    log=logs.append)
    # Regular: 2 learning rates with seed 0 + seed 1 at the selected rate; Sobolev:
    # the same plus alpha 0.1 at the selected rate.
    self.assertLen(results, 7)
    with open(os.path.join(workdir, "selection.json")) as f:
      selection = json.load(f)
    for method in ("regular", "sobolev"):
      chosen = selection[f"pong/0.5/{method}"]
      kls = {float(k): v for k, v in chosen["validation_kl"].items()}
      self.assertEqual(chosen["selected"], min(kls, key=kls.get))
      selected = [r for r in results if r["method"] == method and r["selected"]]
      self.assertEqual(sorted(r["seed"] for r in selected), [0, 1])
      self.assertTrue(all(r["learning_rate"] == chosen["selected"] for r in selected))
      if method == "sobolev":
        alpha_kls = {float(k): v for k, v in chosen["validation_kl_by_alpha"].items()}
        self.assertEqual(sorted(alpha_kls), [0.1, 1.0])
        self.assertEqual(chosen["alpha"], min(alpha_kls, key=alpha_kls.get))
        self.assertTrue(all(r["alpha"] == chosen["alpha"] for r in selected))
        searched = [r for r in results if r["alpha"] == 0.1]
        self.assertLen(searched, 1 + (chosen["alpha"] == 0.1))
        self.assertTrue(all(r["run_dir"].endswith(f"lr{chosen['selected']:g}_alpha0.1/seed"
                                                  f"{r['seed']}") for r in searched))
      else:
        self.assertTrue(all(r["alpha"] == 0.0 for r in selected))
    # A second call trains nothing: every run is finished.
    logs.clear()
    again = distill_grid.run_grid(config, workdir, data_dir, lambda game: teacher,
                                  log=logs.append)
    self.assertLen(again, 7)
    self.assertFalse(any("seed" in line and "lr" in line for line in logs))
    # Finished Sobolev runs are not reused for another gradient-term loss.
    squared = copy.deepcopy(config)
    squared.derivative_loss = "squared_l2"
    with self.assertRaisesRegex(ValueError, "sobolev/lr.* holds a run of another configuration "
                                r"\(derivative_loss: 'l2_norm' there, 'squared_l2' now\)"):
      distill_grid.run_grid(squared, workdir, data_dir, lambda game: teacher, log=logs.append)
    # So is a finished run of another batch size (a regular one: checked first).
    bigger = copy.deepcopy(config)
    bigger.batch_size *= 2
    with self.assertRaisesRegex(ValueError, "regular/lr.* holds a run of another configuration "
                                r"\(batch_size: "):
      distill_grid.run_grid(bigger, workdir, data_dir, lambda game: teacher, log=logs.append)
    summary = distill_grid.summarise(again)
    self.assertLen(summary, 2)
    self.assertTrue(all(s["seeds"] == 2 for s in summary))
    # The report script on the finished runs, with a cell of an earlier report merged in.
    out_dir, earlier = os.path.join(root, "report"), os.path.join(root, "earlier")
    os.makedirs(earlier)
    with open(os.path.join(earlier, "final.csv"), "w") as f:
      f.write("game,fraction,method,learning_rate,alpha,seeds,train_states,test_states,"
              "action_error,action_error_std,kl,kl_std,wall_minutes,run_dir\n"
              "breakout,0.5,regular,0.001,0.0,2,50,20,0.25,0.0,0.125,0.0,1.0,/gone\n")
    with open(os.path.join(earlier, "curves.csv"), "w") as f:
      f.write("game,fraction,method,learning_rate,alpha,seed,selected,step,split,"
              "action_error,kl\nbreakout,0.5,regular,0.001,0.0,0,True,2,test,0.25,0.125\n")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    out = subprocess.run(
        [sys.executable, "scripts/distill_grid.py", "--config=configs/distill.py:grid_quick",
         f"--workdir={workdir}", f"--data_dir={data_dir}", f"--output_dir={out_dir}",
         "--report_only", "--play_episodes=1", f"--merge_report={earlier}"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    self.assertEqual(out.returncode, 0, msg=out.stderr[-3000:])
    for name in ("figure4.md", "figure4.png", "final.csv", "curves.csv"):
      self.assertTrue(os.path.exists(os.path.join(out_dir, name)), msg=name)
    with open(os.path.join(out_dir, "figure4.md")) as f:
      report = f.read()
    self.assertIn("| pong | 50% | sobolev |", report)
    self.assertIn("| breakout | 50% | regular | 0.001 | - | 2 | 50 | 0.2500 +- 0.0000 | "
                  "0.1250 +- 0.0000 | 1.0 | - |", report)
    self.assertIn("then alpha from [0.1, 1.0]", report)
    self.assertIn("Overfitting", report)
    # Each selected student (seed 0) played one real game of Pong: a full-game score.
    for row in summary:
      with open(os.path.join(row["run_dir"], "play.json")) as f:
        self.assertBetween(json.load(f)["mean"], -21, 21)

  def test_errors(self):
    root = self.create_tempdir().full_path
    config = distill_configs.get_config("grid_quick")
    with self.assertRaisesRegex(ValueError, "No dataset .*pong.npz"):
      distill_grid.run_grid(config, root, root, None)
    config.games = ("tetris",)
    with self.assertRaisesRegex(ValueError, "Unknown game 'tetris'"):
      distill_grid.run_grid(config, root, root, None)
    config.methods = ("dagger",)
    with self.assertRaisesRegex(ValueError, "Unknown method 'dagger'"):
      distill_grid.run_grid(config, root, root, None)

  def test_partial_report_marks_unfinished_panels(self):
    sys.path.insert(0, os.path.join(REPO, "scripts"))
    import distill_grid as distill_grid_script  # pylint: disable=g-import-not-at-top
    config = distill_configs.get_config("grid_quick")
    config.games = ("pong", "breakout")
    curves = [dict(game="pong", fraction=f, method=m, seed=0, step=s, split="test",
                   selected=True, action_error=0.5 / s, kl=1.0 / s)
              for f in config.fractions for m in config.methods for s in (1, 2)]
    path = os.path.join(self.create_tempdir().full_path, "figure4.png")
    empty = distill_grid_script.plot(config, curves, path)
    self.assertGreater(os.path.getsize(path), 1000)
    self.assertEqual(empty, [f"breakout {100 * f:g}%: test {metric}"
                             for f in config.fractions for metric in ("action error", "KL")])

  def test_merge_report_keeps_earlier_cells_this_grid_has_not_finished(self):
    def summary_row(game, method, kl, **score):
      return dict(game=game, fraction=0.5, method=method, learning_rate=1e-3, alpha=0.0,
                  seeds=2, train_states=50, test_states=20, action_error=kl / 2,
                  action_error_std=0.0, kl=kl, kl_std=0.0, wall_minutes=1.0,
                  run_dir=f"/gone/{game}/{method}", **score)

    def curve_rows(game, method, kl):
      return [dict(game=game, fraction=0.5, method=method, learning_rate=1e-3, alpha=0.0,
                   seed=0, selected=True, step=step, split="test", action_error=kl / 2,
                   kl=kl / step) for step in (1, 2)]

    report = self.create_tempdir().full_path
    # Earlier report: pong regular (no student score) and pong sobolev.
    distill_grid.write_report_csv(os.path.join(report, "final.csv"), [
        summary_row("pong", "regular", 0.3),
        summary_row("pong", "sobolev", 0.2, student_score=5.0, student_score_std=1.0)])
    distill_grid.write_report_csv(os.path.join(report, "curves.csv"),
                                  curve_rows("pong", "regular", 0.3)
                                  + curve_rows("pong", "sobolev", 0.2))
    previous_summary, previous_curves = distill_grid.read_report(report)
    self.assertEqual(previous_summary[0], summary_row("pong", "regular", 0.3))
    self.assertEqual(previous_summary[1]["student_score"], 5.0)
    self.assertEqual(previous_curves[:2], curve_rows("pong", "regular", 0.3))
    # This grid finished pong sobolev again and has a partial breakout cell.
    summary = [summary_row("pong", "sobolev", 0.1)]
    curves = curve_rows("pong", "sobolev", 0.1) + curve_rows("breakout", "regular", 0.9)
    merged_summary, merged_curves = distill_grid.merge_report(
        summary, curves, previous_summary, previous_curves)
    self.assertEqual([(r["method"], r["kl"]) for r in merged_summary],
                     [("regular", 0.3), ("sobolev", 0.1)])
    self.assertNotIn("student_score", merged_summary[1])
    self.assertEqual(merged_curves, curve_rows("pong", "regular", 0.3)
                     + curve_rows("pong", "sobolev", 0.1) + curve_rows("breakout", "regular", 0.9))
    # Errors name the directory or the file.
    with self.assertRaisesRegex(ValueError, "No final.csv in the report directory"):
      distill_grid.read_report(self.create_tempdir().full_path)
    with open(os.path.join(report, "curves.csv"), "a") as f:
      f.write("pong,0.5,regular,0.001,0.0,zero,True,3,test,0.1,0.1\n")
    with self.assertRaisesRegex(ValueError, "Malformed CSV file .*curves.csv"):
      distill_grid.read_report(report)


_KILLABLE_GRID = r"""
import json, os, sys
sys.path.insert(0, os.getcwd())
from configs import distill as distill_configs
from sobolev_tf.atari import distill_grid
from tests import kill
workdir, data_dir, kill_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
teacher = kill.fixed_teacher(3, seed=7)
config = distill_configs.get_config("grid_quick")
config.checkpoint_minutes = 0.0
# In the middle of a run, after its evaluation, before its checkpoint.
kill.sigkill_at_checkpoint(lambda step, calls: calls == kill_at)
results = distill_grid.run_grid(config, workdir, data_dir, lambda game: teacher,
                                log=lambda s: None)
print(json.dumps(sorted((r["run_dir"][len(workdir):], r["kl"], r["action_error"])
                        for r in results)))
"""


class KilledGridTest(tf.test.TestCase):

  def test_sigkill_then_the_same_command_selects_and_reports_the_same(self):
    root = self.create_tempdir().full_path
    data_dir = os.path.join(root, "data")
    os.makedirs(data_dir)
    tf.random.set_seed(0)
    _synthetic_dataset(os.path.join(data_dir, "pong.npz"), networks.AtariTeacher(3),
                       episode_length=4)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")

    def run(workdir, kill_at):
      return subprocess.run([sys.executable, "-c", _KILLABLE_GRID, workdir, data_dir,
                             str(kill_at)], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=900)

    straight, killed = os.path.join(root, "straight"), os.path.join(root, "killed")
    uninterrupted = run(straight, 0)
    self.assertEqual(uninterrupted.returncode, 0, msg=uninterrupted.stderr[-2000:])
    # 4 steps per run: call 10 is step 2 of the third run (after its step-2 evaluation).
    first = run(killed, 10)
    self.assertEqual(first.returncode, -signal.SIGKILL, msg=first.stderr[-2000:])
    resumed = run(killed, 0)
    self.assertEqual(resumed.returncode, 0, msg=resumed.stderr[-2000:])
    self.assertEqual(json.loads(resumed.stdout.splitlines()[-1]),
                     json.loads(uninterrupted.stdout.splitlines()[-1]))
    with open(os.path.join(straight, "selection.json")) as a, \
        open(os.path.join(killed, "selection.json")) as b:
      self.assertEqual(json.load(a), json.load(b))
    report = {d: distill_grid.collect_curves(distill_grid.run_grid(
        distill_configs.get_config("grid_quick"), d, data_dir, None, train=False))
              for d in (straight, killed)}
    strip = lambda rows: [{k: v for k, v in r.items() if k != "run_dir"} for r in rows]
    self.assertEqual(strip(report[straight]), strip(report[killed]))  # No duplicate rows.


if __name__ == "__main__":
  tf.test.main()

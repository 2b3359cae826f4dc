"""Quiet start-up: no TensorFlow C++ start-up lines, real errors kept, --verbosity=0 restores."""

import os
import subprocess
import sys

import tensorflow as tf

from sobolev_tf import tf_startup

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The lines TF 2.21 prints on a CPU machine before absl logging is initialised.
NOISE = """WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1796155212.963791    7616 port.cc:153] oneDNN custom operations are on. You may see slightly different numerical results.
I0000 00:00:1796155212.964799    7616 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.
I0000 00:00:1796156099.062186   14710 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use available CPU instructions in performance-critical operations.
To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow with the appropriate compiler flags.
E0000 00:00:1796155214.356569    7616 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)
"""
REAL = ("E0000 00:00:1796155214.356569    7616 op_kernel.cc:1] something really failed\n"
        "E0000 00:00:1796155214.356569    7616 cuda_platform.cc:52] failed call to cuInit: "
        "INTERNAL: CUDA error: Failed call to cuInit: CUDA_ERROR_SYSTEM_DRIVER_MISMATCH (803)\n")


def run_python(code, *args, env=None):
  env = dict(os.environ if env is None else env)
  env.pop("TF_CPP_MIN_LOG_LEVEL", None)
  env.pop("SOBOLEV_TF_VERBOSE", None)
  env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
  return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                        env=env, timeout=300, check=True)


class FilterTest(tf.test.TestCase):

  def test_known_lines_are_dropped_and_others_kept(self):
    result = subprocess.run([sys.executable, "-S", "-c", tf_startup._FILTER,
                             tf_startup.STARTUP_NOISE.pattern],
                            input=NOISE + REAL + "plain text\n", capture_output=True, text=True,
                            timeout=60, check=True)
    self.assertEqual(result.stdout, REAL + "plain text\n")

  def test_verbosity_flags(self):
    for argv, verbose in [([], False), (["--verbosity=0"], True), (["--verbosity", "1"], True),
                          (["-v", "0"], True), (["-v=-1"], False), (["--verbosity=-1"], False),
                          (["--verbosity=info"], True), (["--other=0"], False),
                          (["--v=0"], True), (["--verbosity=0", "--verbosity=-1"], False)]:
      self.assertEqual(tf_startup.verbose_requested(argv, environ={}), verbose, argv)
    self.assertTrue(tf_startup.verbose_requested([], environ={"SOBOLEV_TF_VERBOSE": "1"}))
    self.assertFalse(tf_startup.verbose_requested([], environ={"SOBOLEV_TF_VERBOSE": "0"}))


class ReportCommandTest(tf.test.TestCase):

  def test_where_a_run_went_is_left_out(self):
    self.assertEqual(
        tf_startup.report_command("pricing.py", ["--config=configs/pricing.py:curve",
                                                 "--workdir=/scratch/w", "--output_dir=out",
                                                 "--config.seeds=0,1"]),
        "python scripts/pricing.py --config=configs/pricing.py:curve --config.seeds=0,1")
    self.assertEqual(tf_startup.report_command("reproduce_figure2.py", []),
                     "python scripts/reproduce_figure2.py")
    self.assertEqual(
        tf_startup.report_command("reproduce_figure2.py", [
            "--workdir", "/scratch/w", "--config.workdir=/x", "--output_dir", "o",
            "--config.results_dir=r", "--config.functions=booth,beale", "--note=two words"]),
        "python scripts/reproduce_figure2.py --config.functions=booth,beale '--note=two words'")


class ImportTest(tf.test.TestCase):

  def test_import_prints_no_startup_lines(self):
    result = run_python("import sobolev_tf, sys; print('imported', file=sys.stderr)")
    self.assertEqual(result.stderr, "imported\n")

  def test_verbosity_zero_brings_them_back(self):
    result = run_python("import sobolev_tf", "--verbosity=0")
    self.assertIn("absl::InitializeLog", result.stderr)

  def test_every_script_starts_quietly(self):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    scripts = sorted(f for f in os.listdir(os.path.join(ROOT, "scripts")) if f.endswith(".py"))
    self.assertGreater(len(scripts), 10)
    for script in scripts:
      result = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", script),
                               "--helpshort"], capture_output=True, text=True, timeout=300,
                              env=env, cwd=ROOT)
      self.assertIn("--", result.stdout + result.stderr, msg=script)  # Its flags' help.
      self.assertNotIn("Traceback", result.stderr, msg=f"{script}: {result.stderr[-2000:]}")
      for noise in ("cuInit", "absl::InitializeLog", "oneDNN", "cuda drivers", "cpu_feature"):
        self.assertNotIn(noise, result.stderr + result.stdout, msg=script)

  def test_bad_game_error_is_kept(self):
    result = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "distill.py"),
                             "--workdir=unused", "--game=tetris"], capture_output=True,
                            text=True, timeout=300, cwd=ROOT)
    self.assertNotEqual(result.returncode, 0)
    self.assertIn("Unknown game 'tetris'", result.stderr)
    self.assertNotIn("cuInit", result.stderr)

  def test_an_abort_during_the_import_still_shows_its_message(self):
    fake = self.create_tempdir().full_path
    with open(os.path.join(fake, "tensorflow.py"), "w") as f:
      f.write("import os\nos.write(2, b'F0000 cpu_feature_guard.cc:1] FATAL: no AVX\\n')\n"
              "os.abort()\n")
    env = dict(os.environ, PYTHONPATH=fake + os.pathsep + ROOT)
    env.pop("SOBOLEV_TF_VERBOSE", None)
    result = subprocess.run([sys.executable, "-c", "import sobolev_tf"], capture_output=True,
                            text=True, env=env, timeout=120)
    self.assertNotEqual(result.returncode, 0)
    self.assertIn("FATAL: no AVX", result.stderr)

if __name__ == "__main__":
  tf.test.main()

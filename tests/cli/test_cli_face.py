"""The command line's face: --version, -v/-q/--log-file on either side of the subcommand, dated log lines,
and a quiet exit when the reader of stdout goes away (`hpc-rg check JOB | head -1`)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import hpc_rg
from hpc_rg.cli_exits import EXIT_PIPE
from hpc_rg.cli_parser import build_parser

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "jobs" / "quickstart.toml"
DATED = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}"
TINY = """[job]
name = "tiny"
seed = 1
out = "run"

[simulate]
model = "ising2d"
L = 4
temperatures = [2.0, 2.5]
algorithm = "metropolis"
thermalize = 10
samples = 5
thin = 2
"""


def cli(*args):
    """`python -m hpc_rg ARGS` seeing this checkout's package."""
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    return [sys.executable, "-m", "hpc_rg", *map(str, args)], env


def run(*args, cwd=None, timeout=120):
    cmd, env = cli(*args)
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def test_version_prints_the_package_version():
    proc = run("--version")
    assert proc.returncode == 0, proc.stderr
    assert re.fullmatch(rf"hpc-rg {re.escape(hpc_rg.__version__)}( \(git [0-9a-f]{{12}}(, modified)?\))?\n",
                        proc.stdout), proc.stdout


@pytest.mark.parametrize("argv,verbose,quiet,log_file", [
    (["check", "J"], False, False, None),
    (["-v", "check", "J"], True, False, None),
    (["check", "J", "-v"], True, False, None),
    (["check", "-q", "J"], False, True, None),
    (["-q", "simulate", "J", "--resume"], False, True, None),
    (["run", "J", "--quiet", "--log-file", "x/{rank}.log"], False, True, "x/{rank}.log"),
    (["--log-file", "a.log", "info", "f.h5"], False, False, "a.log"),
    (["status", "d", "--verbose"], True, False, None),
    (["report", "d", "-q"], False, True, None),
])
def test_log_options_before_or_after_the_subcommand(argv, verbose, quiet, log_file):
    args = build_parser().parse_args(argv)
    assert (args.verbose, args.quiet, args.log_file) == (verbose, quiet, log_file)


def test_every_subcommand_takes_the_log_options():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name in sub.choices:
        option_strings = {s for a in sub.choices[name]._actions for s in a.option_strings}
        assert {"-v", "-q", "--log-file"} <= option_strings, name


def test_verbose_and_quiet_together_is_a_usage_error():
    proc = run("check", QUICKSTART, "-v", "-q")
    assert proc.returncode == 2 and "not allowed with" in proc.stderr


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("face")
    (folder / "tiny.toml").write_text(TINY)
    return folder


def test_quiet_terminal_full_log_file_with_dates(tiny_run):
    proc = run("simulate", "tiny.toml", "--force", "-q", "--log-file", "logs/sim.{rank}.log", cwd=tiny_run)
    assert proc.returncode == 0, proc.stderr
    assert "INFO" not in proc.stderr                    # -q: warnings and errors only on the terminal
    log = (tiny_run / "logs" / "sim.0.log").read_text()
    assert re.search(rf"^{DATED} \[0/1\] INFO stage simulate of job 'tiny'", log, re.M), log
    assert re.search(rf"^{DATED} \[0/1\] INFO stage simulate done", log, re.M), log


def test_log_file_is_appended_and_terminal_timestamps_carry_the_date(tiny_run):
    (tiny_run / "one.log").write_text("an earlier line\n")
    proc = run("simulate", "tiny.toml", "--force", "--log-file", "one.log", cwd=tiny_run)
    assert proc.returncode == 0, proc.stderr
    assert re.search(rf"^{DATED} INFO stage simulate done", proc.stderr, re.M), proc.stderr
    log = (tiny_run / "one.log").read_text()
    assert log.startswith("an earlier line\n")
    assert re.search(rf"^{DATED} \[0/1\] INFO stage simulate done", log, re.M), log


def test_unwritable_log_file_is_one_line_exit_2(tmp_path):
    (tmp_path / "a_file").write_text("")
    proc = run("check", QUICKSTART, "--log-file", tmp_path / "a_file" / "x.log")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "--log-file" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout == ""


@pytest.mark.parametrize("args", [("check", QUICKSTART), ("check", "--explain", QUICKSTART), ("--help",),
                                  ("info", "run/ensemble.h5"), ("status", "run")],
                         ids=["check", "explain", "help", "info", "status"])
def test_closed_stdout_exits_quietly(tiny_run, args):
    if not (tiny_run / "run" / "ensemble.h5").exists():
        assert run("simulate", "tiny.toml", "--force", cwd=tiny_run).returncode == 0
    cmd, env = cli(*args)
    proc = subprocess.Popen(cmd, env=env, cwd=tiny_run, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()                                 # the reader is gone before the command writes a byte
    _, err = proc.communicate(timeout=120)
    # argparse swallows write errors of its own messages (--help), so it may still exit 0; quiet either way
    assert proc.returncode in ((0, EXIT_PIPE) if args == ("--help",) else (EXIT_PIPE,)), err.decode()
    assert err.decode() == ""                           # no traceback, no "Exception ignored ... BrokenPipeError"


def test_head_in_a_shell_pipeline(tiny_run):
    cmd, env = cli("check", "--explain", QUICKSTART)
    proc = subprocess.run(" ".join(f"'{c}'" for c in cmd) + " | head -1", shell=True, env=env, cwd=tiny_run,
                          capture_output=True, text=True, timeout=120)
    assert proc.stdout.startswith("# ") and proc.stdout.count("\n") == 1
    assert proc.stderr == ""


def test_per_rank_log_files_under_mpiexec(tiny_run):
    mpiexec = Path(sys.executable).parent / "mpiexec"
    if not mpiexec.exists():
        pytest.skip("no mpiexec next to the interpreter")
    cmd, env = cli("simulate", "tiny.toml", "--force", "--log-file", "mpi/r{rank}.log", "-q")
    proc = subprocess.run([str(mpiexec), "-n", "2", *cmd], env=env, cwd=tiny_run, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "INFO" not in proc.stderr
    for rank in (0, 1):
        log = (tiny_run / "mpi" / f"r{rank}.log").read_text()
        assert re.search(rf"^{DATED} \[{rank}/2\] INFO stage simulate done", log, re.M), log
    assert "wrote" in (tiny_run / "mpi" / "r0.log").read_text()      # rank 0's own messages stay on rank 0
    assert "wrote" not in (tiny_run / "mpi" / "r1.log").read_text()

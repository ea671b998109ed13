"""Progress as users expect it (hpc_rg.progress): one duration format everywhere, a line with rate and ETA every
N seconds in a log, a tqdm bar on a terminal, epoch lines only with -v, analyze saying when each reduction
starts and ends."""
from __future__ import annotations

import io
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hpc_rg import progress
from hpc_rg.progress import Progress, duration

ROOT = Path(__file__).resolve().parents[2]
DURATION = r"(\d+h\d\dm|\d+m\d\ds|\d+s|\d\.\ds|\?)"
TINY = """[job]
name = "tiny"
seed = 3
out = "run"
stages = ["simulate", "train", "analyze"]

[simulate]
model = "ising2d"
L = 4
temperatures = [2.0, 2.5]
algorithm = "metropolis"
thermalize = 10
samples = 60
thin = 2

[train.rbm]
kind = "rbm"
n_hidden = 4
epochs = 3
batch_size = 10

[analyze.observables]
[analyze.correlators]
"""


def run(*args, cwd, env_extra=None, timeout=300):
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    env.pop("HPC_RG_PROGRESS_SECONDS", None)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "hpc_rg", *map(str, args)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("seconds,text", [(3725, "1h02m"), (86400, "24h00m"), (185, "3m05s"), (60, "1m00s"),
                                          (42, "42s"), (9.96, "10s"), (3.24, "3.2s"), (0, "0.0s"),
                                          (float("nan"), "?"), (float("inf"), "?"), (-1, "?")])
def test_one_duration_format(seconds, text):
    assert duration(seconds) == text


def test_interval_from_the_command_line_then_the_environment(monkeypatch):
    monkeypatch.setenv("HPC_RG_PROGRESS_SECONDS", "2.5")
    assert progress.interval() == 2.5
    progress.configure(7)
    try:
        assert progress.interval() == 7
    finally:
        progress.configure(None)
    monkeypatch.setenv("HPC_RG_PROGRESS_SECONDS", "soon")
    assert progress.interval() == progress.DEFAULT_SECONDS


def _capture_log():
    log = logging.getLogger("hpc_rg.test_progress")
    log.setLevel(logging.INFO)
    log.propagate = False
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    log.handlers = [handler]
    return log, stream


def test_log_lines_carry_position_rate_and_eta():
    log, stream = _capture_log()
    with Progress("simulate", 1000, "sweeps", start=200, every=0, log=log, bar=False) as p:
        for t in range(300, 1001, 100):
            p.update(t, lambda: "samples 3/9")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 7            # every update but the last (the stage's own end line says it is done)
    for line in lines:
        assert re.fullmatch(rf"simulate: \d+/1000 sweeps \(\d+%\), [0-9.e+]+ sweeps/s, {DURATION} elapsed, "
                            rf"ETA {DURATION}, samples 3/9", line), line


def test_lines_are_spaced_by_the_interval_and_silent_when_disabled_or_not_root():
    log, stream = _capture_log()
    with Progress("x", 10, "steps", every=3600, log=log, bar=False) as p:
        for t in range(10):
            p.update(t)
    for kw in ({"enabled": False}, {"is_root": False}):
        with Progress("x", 10, "steps", every=0, log=log, bar=False, **kw) as p:
            for t in range(10):
                p.update(t)
    assert stream.getvalue() == ""


def test_a_bar_on_a_terminal(capsys):
    log, stream = _capture_log()
    with Progress("train.rbm", 50, "samples", every=0, log=log, bar=True) as p:
        for t in range(0, 51, 10):
            p.update(t, "epoch 1/5")
    err = capsys.readouterr().err
    assert "train.rbm" in err and "50/50" in err and "%|" in err, err      # tqdm's bar, on stderr
    assert stream.getvalue() == ""                                       # instead of log lines


def test_no_bar_when_stderr_is_not_a_terminal():
    log, _ = _capture_log()
    log.handlers = [logging.StreamHandler(sys.stderr)]
    assert Progress("x", 10, "steps", log=log).bar is None     # pytest's stderr is a pipe or a capture


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    """One run of simulate, train and analyze at default verbosity and one of train with -v."""
    folder = tmp_path_factory.mktemp("progress")
    (folder / "tiny.toml").write_text(TINY)
    default = run("run", "tiny.toml", "--force", "--progress-every", "0.001", cwd=folder)
    assert default.returncode == 0, default.stderr
    verbose = run("train", "tiny.toml", "--force", "-v", cwd=folder,
                  env_extra={"HPC_RG_PROGRESS_SECONDS": "0.001"})
    assert verbose.returncode == 0, verbose.stderr
    return default.stderr, verbose.stderr


@pytest.mark.slow          # two pipeline runs in subprocesses (torch import): ~20 s, more on a busy node
def test_simulate_logs_rate_and_eta(logs):
    default, _ = logs
    assert re.search(rf"INFO simulate: \d+/\d+ sweeps \(\d+%\), [0-9.e+]+ sweeps/s, {DURATION} elapsed, "
                     rf"ETA {DURATION}, samples \d+/60$", default, re.M), default
    assert "ETA %" not in default and not re.search(r"ETA \d+ s\b", default)


@pytest.mark.slow          # two pipeline runs in subprocesses (torch import): ~20 s, more on a busy node
def test_train_default_one_line_per_model_at_start_and_end_plus_progress(logs):
    default, verbose = logs
    assert re.search(r"INFO train\.rbm: rbm on \d+ configurations", default), default        # start
    assert re.search(r"INFO train\.rbm: wrote .*rbm\.pt", default), default                  # end
    assert re.search(rf"INFO train\.rbm: \d+/\d+ samples \(\d+%\), [0-9.e+]+ samples/s, {DURATION} elapsed, "
                     rf"ETA {DURATION}, epoch \d/3$", default, re.M), default
    assert not re.search(r"epoch \d/3 .*s/epoch", default)                 # no line per epoch by default
    assert len(re.findall(r"train\.rbm: epoch \d/3 .*s/epoch, ETA " + DURATION, verbose)) == 3, verbose


@pytest.mark.slow          # two pipeline runs in subprocesses (torch import): ~20 s, more on a busy node
def test_analyze_logs_each_reduction_as_it_starts_and_ends(logs):
    default, _ = logs
    for k, name in enumerate(("observables", "correlators"), 1):
        start = re.search(rf"INFO analyze {name} \({k} of 2\): started$", default, re.M)
        end = re.search(rf"INFO analyze {name} \({k} of 2\): done in {DURATION} on 1 rank\(s\)", default)
        assert start and end and start.start() < end.start(), default
    assert re.search(rf"analyze observables \(1 of 2\): done .*; 1 left, ETA {DURATION}", default), default
    assert re.search(rf"stage analyze done in {DURATION}$", default, re.M), default

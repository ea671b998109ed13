"""A signal to one rank of a 2-rank `train` or `analyze` (serial tests that launch `mpiexec -n 2`).

Before: the signalled rank died (SIGTERM) or exited 130 (SIGINT) and the other rank blocked forever in its
next collective. Now the ranks agree at the next collective (train: after the epoch, whose checkpoint is
written; analyze: after the reduction in progress), every rank exits 3 within seconds, and `--resume` gives
what an uninterrupted run gives.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
MPIEXEC = Path(sys.executable).parent / "mpiexec"

pytestmark = pytest.mark.skipif(not MPIEXEC.exists() or not Path("/proc/self/environ").exists(),
                                reason="needs mpiexec beside the interpreter and /proc")


def env() -> dict:
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(
        [str(ROOT)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])))


def hpc_rg(*args, ranks: int = 1, timeout: float = 180) -> subprocess.CompletedProcess:
    cmd = [str(MPIEXEC), "-n", str(ranks), sys.executable, "-m", "hpc_rg", *map(str, args)]
    return subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=timeout)


def rank_pid(launcher: int, rank: int) -> int | None:
    """The pid of MPI rank `rank` among the descendants of the mpiexec process `launcher`."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    todo, found = [launcher], None
    while todo:
        pid = todo.pop()
        try:
            environ = (Path("/proc") / str(pid) / "environ").read_bytes().split(b"\0")
            cmdline = (Path("/proc") / str(pid) / "cmdline").read_bytes()
        except OSError:
            environ, cmdline = [], b""
        if f"PMI_RANK={rank}".encode() in environ and b"hpc_rg" in cmdline:
            found = pid
        todo += children.get(pid, [])
    return found


def signal_rank_when(cmd_args, ready, sig, rank: int = 1, timeout: float = 120):
    """Start `hpc-rg cmd_args` on 2 ranks, send `sig` to `rank` once `ready()` is true, and return
    (exit code, stderr, seconds from the signal to the end of every rank)."""
    cmd = [str(MPIEXEC), "-n", "2", sys.executable, "-m", "hpc_rg", *map(str, cmd_args)]
    err = open(Path(cmd_args[-1]).with_suffix(".stderr"), "w+")
    proc = subprocess.Popen(cmd, env=env(), stdout=subprocess.DEVNULL, stderr=err, text=True)
    try:
        deadline = time.time() + timeout
        while not ready() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.02)
        assert proc.poll() is None, "the run ended before the signal could be sent"
        pid = rank_pid(proc.pid, rank)
        assert pid is not None, "rank process not found"
        os.kill(pid, sig)
        t0 = time.time()
        code = proc.wait(timeout=30)           # every rank gone within 30 s
        elapsed = time.time() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err.seek(0)
    text = err.read()
    err.close()
    return code, text, elapsed


TRAIN_JOB = """[job]
name = "signals"
seed = 3
out = "{out}"

[train.wide]                # data-parallel over both ranks (above DDP_MIN_PARAMETERS)
kind = "autoencoder"
ensemble = "{ens}"
layers = [256, 800, 16]
epochs = 25
batch_size = 40
optimizer = "sgd"
lr = 0.05
momentum = 0.5

[train.rbm]                 # task-parallel
kind = "rbm"
ensemble = "{ens}"
n_hidden = 16
epochs = 25
batch_size = 20
persistent = true
ais_runs = 0
"""


@pytest.mark.slow
def test_signal_to_one_rank_of_train_stops_every_rank_and_resume_matches(tmp_path, ladder_ensemble):
    from hpc_rg.learn import load_model
    runs = {}
    for name in ("cut", "ref"):
        (tmp_path / name).mkdir()
        job = tmp_path / name / "job.toml"
        job.write_text(TRAIN_JOB.format(out=tmp_path / name / "run", ens=ladder_ensemble))
        runs[name] = job
    ckpt = tmp_path / "cut" / "run" / "models" / "wide.ckpt.pt"
    code, err, elapsed = signal_rank_when(["train", runs["cut"]], ckpt.exists, signal.SIGTERM)
    assert code == 3, err[-3000:]
    assert "stopped by SIGTERM on rank 1" in err and "resume with --resume" in err
    assert elapsed < 30
    assert ckpt.exists() and not (tmp_path / "cut" / "run" / "models" / "wide.pt").exists()

    resumed = hpc_rg("train", runs["cut"], "--resume", ranks=2)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming at phase 0" in resumed.stderr
    ref = hpc_rg("train", runs["ref"], ranks=2)
    assert ref.returncode == 0, ref.stderr[-3000:]
    for model in ("wide", "rbm"):
        a, meta_a = load_model(tmp_path / "cut" / "run" / "models" / f"{model}.pt")
        b, meta_b = load_model(tmp_path / "ref" / "run" / "models" / f"{model}.pt")
        for k, v in b.state_dict().items():
            assert torch.equal(a.state_dict()[k], v), (model, k)
        assert len(meta_a["history"]) == len(meta_b["history"]) == 25


ANALYZE_JOB = """[job]
name = "signals"
seed = 3
out = "{out}"

[analyze.block_rg]
levels = 2
[analyze.mutual_information]       # a few seconds: the signal arrives while it runs
block = 3
n_boot = {n_boot}
[analyze.correlators]
"""


def results(path: Path) -> dict:
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                out[name] = obj[()]
        f.visititems(visit)
    return out


@pytest.mark.slow
def test_signal_to_one_rank_of_analyze_stops_every_rank_and_resume_matches(tmp_path, ladder_ensemble):
    runs = {}
    for name in ("cut", "ref"):
        (tmp_path / name / "run").mkdir(parents=True)
        shutil.copy(ladder_ensemble, tmp_path / name / "run" / "ensemble.h5")
        job = tmp_path / name / "job.toml"
        job.write_text(ANALYZE_JOB.format(out=tmp_path / name / "run", n_boot=400))
        runs[name] = job
    log = runs["cut"].with_suffix(".stderr")
    code, err, elapsed = signal_rank_when(
        ["analyze", runs["cut"]], lambda: log.exists() and "analyze block_rg (" in log.read_text(),
        signal.SIGINT)
    assert code == 3, err[-3000:]
    assert "stopped by SIGINT on rank 1" in err
    assert elapsed < 30
    assert not (tmp_path / "cut" / "run" / "results.h5").exists()

    resumed = hpc_rg("analyze", runs["cut"], "--resume", ranks=2)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    ref = hpc_rg("analyze", runs["ref"], ranks=2)
    assert ref.returncode == 0, ref.stderr[-3000:]
    a, b = results(tmp_path / "cut" / "run" / "results.h5"), results(tmp_path / "ref" / "run" / "results.h5")
    assert a.keys() == b.keys() and a
    for k in b:
        assert np.array_equal(a[k], b[k], equal_nan=True), k

"""Helpers for tests/slurm: find the local Slurm of tests/slurm/up.sh, submit the templates, wait, compare.

The tests run only when a Slurm is reachable: `eval "$(tests/slurm/up.sh)"` exports HPC_RG_SLURM_CONF (and
SLURM_CONF); without it, or when `scontrol ping` fails, every `slurm` test is skipped.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
SLURM_DIR = REPO / "slurm"
FINAL_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL",
                "DEADLINE", "PREEMPTED"}
NEVER_RUNS = {"PartitionConfig", "PartitionNodeLimit", "BadConstraints", "DependencyNeverSatisfied"}


def venv() -> Path:
    """The virtual environment that holds this test's hpc-rg (the templates activate it)."""
    prefix = Path(sys.prefix)
    return prefix if (prefix / "bin" / "hpc-rg").exists() else REPO / ".venv"


def slurm_env_or_none() -> dict | None:
    conf = os.environ.get("HPC_RG_SLURM_CONF") or os.environ.get("SLURM_CONF")
    if not conf or not Path(conf).exists() or shutil.which("sbatch") is None:
        return None
    env = dict(os.environ, SLURM_CONF=conf, HPC_RG_VENV=str(venv()))
    try:
        ok = subprocess.run(["scontrol", "ping"], env=env, capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    return env if ok else None


def sbatch(env: dict, *args: str, cwd: Path) -> str:
    """Submit; return the job id."""
    p = subprocess.run(["sbatch", "--parsable", *args], env=env, cwd=cwd, capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip().split(";")[0]


def job_records(env: dict, job_id: str) -> list[dict]:
    """`scontrol show job -o` as dicts (one per array task)."""
    p = subprocess.run(["scontrol", "show", "job", "-o", job_id], env=env, capture_output=True, text=True,
                       timeout=30)
    records = []
    for line in p.stdout.splitlines():
        rec = {}
        for item in line.split():
            key, _, value = item.partition("=")
            rec.setdefault(key, value)
        if rec:
            records.append(rec)
    return records


def wait_done(env: dict, job_id: str, timeout: float, count: int = 1) -> list[dict]:
    """Poll until `count` records of job_id (array tasks) are in a final state; requeued jobs go through
    PENDING again, so `sbatch --wait` is not used."""
    deadline = time.time() + timeout
    while True:
        recs = job_records(env, job_id)
        done = [r for r in recs if r.get("JobState") in FINAL_STATES]
        if len(done) >= count and len(done) == len(recs):
            return done
        stuck = [r for r in recs if r.get("Reason") in NEVER_RUNS]
        if stuck:
            raise AssertionError(f"job {job_id} can never start here: " + "; ".join(
                f"{r.get('JobId')} {r.get('Reason')} (NumCPUs={r.get('NumCPUs')})" for r in stuck))
        if time.time() > deadline:
            raise AssertionError(f"job {job_id} not done after {timeout} s: "
                                 + "; ".join(f"{r.get('JobId')} {r.get('JobState')}" for r in recs))
        time.sleep(1.0)


def write_job(path: Path, name: str, out: str, seed: int = 11, extra: str = "", **simulate) -> Path:
    """A small critical 2D Ising job with replica exchange; keyword arguments override [simulate] keys."""
    sim = dict(model='"ising2d"', L=16, temperatures="[2.0, 2.15, 2.269185, 2.4, 2.6]",
               algorithm='"metropolis"', chains=4, thermalize=200, samples=50, thin=10,
               replica_exchange="true", exchange_every=10)
    sim.update({k: (f'"{v}"' if isinstance(v, str) and not v.startswith(("[", '"')) else
                    ("true" if v is True else "false" if v is False else v)) for k, v in simulate.items()})
    text = f'[job]\nname = "{name}"\nseed = {seed}\nout = "{out}"\n\n[simulate]\n'
    text += "".join(f"{k} = {v}\n" for k, v in sim.items()) + extra
    path.write_text(text)
    return path


def ensemble_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every dataset that defines the ensemble (configurations, measurements, exchange record)."""
    import h5py
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                out[name] = obj[()]
        f.visititems(visit)
    return out


def assert_same_ensemble(a: Path, b: Path) -> None:
    x, y = ensemble_arrays(a), ensemble_arrays(b)
    assert sorted(x) == sorted(y)
    assert {"spins", "energy", "magnetization", "temperatures"} <= set(x)
    for name in x:
        assert x[name].shape == y[name].shape, name
        assert np.array_equal(x[name], y[name]), f"{name} differs between {a} and {b}"


def run_local(job: Path, *args: str, ranks: int = 1, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run hpc-rg outside Slurm (one rank plainly, several under the venv's mpiexec)."""
    exe = str(venv() / "bin" / "hpc-rg")
    cmd = [exe, *args, str(job)]
    if ranks > 1:
        cmd = [str(venv() / "bin" / "mpiexec"), "-n", str(ranks), *cmd]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "PMI_"))}
    env["OMP_NUM_THREADS"] = "1"
    p = subprocess.run(cmd, cwd=job.parent, env=env, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, p.stdout + p.stderr
    return p

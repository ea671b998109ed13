"""A full disk during simulate (part writes, checkpoints, assembly) and `assemble --copy`: one line, exit 2
(`no space left on <fs> while writing <file>; free space and run with --resume`), no segfault, no
ensemble.h5.tmp left, `status` does not say complete; after freeing space `--resume` gives the ensemble of
an uninterrupted run, bit for bit. Needs root to mount a small tmpfs; skipped otherwise."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import h5py
import numpy as np
import pytest

from tests.io.helpers import ROOT, assert_same_contents, cli, h5_contents, one_line_exit_2, write_job

SIM = """[simulate]
model = "ising2d"
L = 16
temperatures = [2.0, 2.6]
algorithm = "metropolis"
chains = 2
thermalize = 10
samples = 40
thin = 2
checkpoint_every = 25
"""
DATASETS = ("spins", "energy", "magnetization", "timeseries/energy", "timeseries/magnetization")


@pytest.fixture
def tmpfs(tmp_path):
    """A 1 MiB tmpfs mounted for the test (root only), unmounted afterwards."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("needs root to mount a tmpfs")
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {proc.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)
        if os.path.ismount(mnt):
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def fill(mnt: Path, leave: int) -> Path:
    """A ballast file that leaves `leave` bytes free on the tmpfs."""
    st = os.statvfs(mnt)
    ballast = mnt / f"ballast{uuid.uuid4().hex[:6]}"
    size = st.f_bavail * st.f_frsize - leave
    if size > 0:
        with open(ballast, "wb") as f:
            os.posix_fallocate(f.fileno(), 0, size)
    return ballast


def used(folder: Path) -> int:
    """Bytes the run folder takes on the tmpfs (whole pages)."""
    return sum(p.stat().st_blocks * 512 for p in folder.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    folder = tmp_path_factory.mktemp("full_ref")
    proc = cli("simulate", write_job(folder, "full", simulate=SIM), cwd=folder)
    assert proc.returncode == 0, proc.stderr
    return {k: v for k, v in h5_contents(folder / "full" / "ensemble.h5").items() if k in DATASETS}


def check_refused(proc, mnt: Path, run: Path) -> str:
    line = one_line_exit_2(proc, "no space left on ", "; free space and run with --resume")
    assert re.search(rf"no space left on {re.escape(str(mnt))} while writing {re.escape(str(run))}/\S+;", line), line
    assert not list(run.rglob("ensemble.h5.tmp")) and not list(run.rglob("*.copy.tmp"))
    status = cli("status", run)
    assert "simulate: complete" not in status.stdout, status.stdout
    return line


@pytest.mark.slow
def test_disk_full_during_simulate_then_resume(tmpfs, reference):
    """Two amounts of free space (one page, half of what the run needs): each time exit 2 and one line, and
    --resume after freeing space gives the reference."""
    job = write_job(tmpfs, "full", simulate=SIM)
    run = tmpfs / "full"
    proc = cli("simulate", job, cwd=tmpfs)                     # once with room, to measure what it needs
    assert proc.returncode == 0, proc.stderr
    # half of what the run writes before ensemble.h5 (whose labels and provenance are metadata of a fixed
    # size): the disk fills while the parts are written
    need = used(run) - (run / "ensemble.h5").stat().st_blocks * 512
    where = []
    for leave in (4096, need // 2):
        shutil.rmtree(run)
        ballast = fill(tmpfs, leave)
        proc = cli("simulate", job, cwd=tmpfs)
        where.append(check_refused(proc, tmpfs, run).split(" while writing ")[1].split(";")[0])
        ballast.unlink()
        proc = cli("simulate", job, "--resume", cwd=tmpfs)
        assert proc.returncode == 0, proc.stderr
        got = {k: v for k, v in h5_contents(run / "ensemble.h5").items() if k in DATASETS}
        assert_same_contents(reference, got)
    assert "simulate: complete" in cli("status", run).stdout
    assert any("/parts/" in w for w in where), where


def test_disk_full_during_assembly_leaves_no_tmp(tmpfs, tmp_path):
    """parts.assemble with its output on a full disk: DiskFullError naming ensemble.h5, no .tmp, no crash
    (in a subprocess: a crash must not take pytest with it)."""
    folder = tmp_path / "src"
    proc = cli("simulate", write_job(tmp_path, "src", simulate=SIM), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = tmpfs / "out"
    out.mkdir()
    fill(tmpfs, 0)
    script = f"""
import sys, h5py
sys.path.insert(0, {str(ROOT)!r})
from hpc_rg.io.diskfull import DiskFullError
from hpc_rg.io.parts import assemble
with h5py.File({str(folder / 'ensemble.h5')!r}, "r") as f:
    n_t, n_c, n_s = f["spins"].shape[:3]
    n_m = f["timeseries/energy"].shape[2]
    temps = f["temperatures"][()]
try:
    assemble({str(out)!r}, {str(folder / 'parts')!r}, {len(list((folder / 'parts').glob('p*.h5')))}, temps, n_c, (16, 16), n_s, n_m, {{"model": "x"}})
except DiskFullError as e:
    print("refused:", e)
    sys.exit(7)
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 7, (proc.returncode, proc.stdout, proc.stderr)
    assert f"while writing {out / 'ensemble.h5'};" in proc.stdout
    assert sorted(p.name for p in out.iterdir()) == []


def test_disk_full_during_assemble_copy(tmpfs):
    """`hpc-rg assemble RUN --copy` on a full disk: exit 2, one line, ensemble.h5 as it was, no temporary."""
    run = tmpfs / "full"
    proc = cli("simulate", write_job(tmpfs, "full", simulate=SIM), cwd=tmpfs)
    assert proc.returncode == 0, proc.stderr
    before = (run / "ensemble.h5").read_bytes()
    fill(tmpfs, 0)
    one_line_exit_2(cli("assemble", run, "--copy"), f"no space left on {tmpfs} while writing {run / 'ensemble.h5'};")
    assert (run / "ensemble.h5").read_bytes() == before
    assert not list(run.glob("*.tmp"))
    with h5py.File(run / "ensemble.h5", "r") as f:
        assert f["spins"].is_virtual and np.isin(f["spins"][()], (-1, 1)).all()


def test_disk_full_on_two_ranks_exits_2_without_hanging(tmpfs, reference):
    """Two ranks writing parts on a full disk: every rank gone with exit 2 (no rank left waiting), one
    line per rank that hit it and no traceback; --resume on 2 ranks after freeing space: the reference."""
    job = write_job(tmpfs, "full", simulate=SIM)
    run = tmpfs / "full"
    ballast = fill(tmpfs, 4096)
    mpiexec = [str(Path(sys.executable).parent / "mpiexec"), "-n", "2", sys.executable, "-m", "hpc_rg"]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(
        [str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    proc = subprocess.run(mpiexec + ["simulate", str(job)], cwd=tmpfs, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = [x for x in proc.stderr.splitlines() if " INFO " not in x and x.strip()]
    assert lines and all(x.startswith("hpc-rg: error") and "no space left on" in x for x in lines), proc.stderr
    assert not list(run.rglob("ensemble.h5.tmp"))
    ballast.unlink()
    proc = subprocess.run(mpiexec + ["simulate", str(job), "--resume"], cwd=tmpfs, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    got = {k: v for k, v in h5_contents(run / "ensemble.h5").items() if k in DATASETS}
    assert_same_contents(reference, got)

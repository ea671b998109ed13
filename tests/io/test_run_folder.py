"""The run folder under faults and hostile input (issue 16): physics checked on resume whatever job.toml
says, ownership for every stage, symbolic links refused, a lock against a second run, unusable `out`,
nothing written on exit 2, corrupt checkpoints named, and a truthful stop message."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from tests.mc.driver_helpers import BIN, assert_same_ensemble, hpc_rg, write_job

SMALL = dict(L=6, samples=10, thin=5, thermalize=20, checkpoint_every=20)


def _error_line(proc) -> str:
    """The user-facing line: exactly one line starting "hpc-rg: error:" and no traceback."""
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [l for l in proc.stderr.splitlines() if l.startswith("hpc-rg: error:")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def _tree(folder):
    """Every path below `folder` with its bytes (files) or None (folders): what a refused run must not change."""
    out = {}
    for root, dirs, files in os.walk(folder):
        for d in dirs:
            out[os.path.relpath(os.path.join(root, d), folder)] = None
        for f in files:
            p = os.path.join(root, f)
            out[os.path.relpath(p, folder)] = None if os.path.islink(p) else open(p, "rb").read()
    return out


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished small run (with its checkpoint and ensemble.h5), copied afresh by each test."""
    folder = tmp_path_factory.mktemp("finished")
    hpc_rg("simulate", write_job(folder, **SMALL))
    return folder


@pytest.fixture
def run(tmp_path, finished):
    shutil.copytree(finished, tmp_path, dirs_exist_ok=True)
    return tmp_path


# -- item 2: resume checks the physics ---------------------------------------------------------------

@pytest.mark.parametrize("job_toml", ["absent", "rewritten"])
def test_resume_with_other_temperatures_is_refused_whatever_job_toml_says(run, job_toml):
    other = write_job(run, **dict(SMALL, samples=20, temperatures="[5.0, 6.0, 7.0]"))
    folder = run / "driver"
    if job_toml == "absent":
        (folder / "job.toml").unlink()
    else:                                                  # what `train --force` with the other job did
        shutil.copy(other, folder / "job.toml")
    before = _tree(folder)
    proc = hpc_rg("simulate", other, "--resume", check=False)
    assert proc.returncode == 2
    line = _error_line(proc)
    assert "simulate.temperatures differs: run has [2.0, 2.269185, 2.6], job has [5.0, 6.0, 7.0]" in line
    assert _tree(folder) == before


def test_resume_with_other_seed_is_refused_from_the_ensemble_alone(run):
    """Without checkpoint and job.toml, ensemble.h5's record of the job still decides."""
    folder = run / "driver"
    (folder / "job.toml").unlink()
    shutil.rmtree(folder / "checkpoint")
    text = write_job(run, **dict(SMALL, samples=20)).read_text().replace("seed = 11", "seed = 12")
    (run / "driver.toml").write_text(text)
    proc = hpc_rg("simulate", run / "driver.toml", "--resume", check=False)
    assert proc.returncode == 2
    assert "job.seed differs: run has 11, job has 12" in _error_line(proc)


def test_lowering_samples_on_resume_is_refused_and_job_toml_kept(run):
    folder = run / "driver"
    before = _tree(folder)
    proc = hpc_rg("simulate", write_job(run, **dict(SMALL, samples=5)), "--resume", check=False)
    assert proc.returncode == 2
    assert "simulate.samples" in _error_line(proc)
    assert _tree(folder) == before                          # job.toml still says samples = 10


def test_analyze_of_a_job_with_other_physics_than_the_ensemble_is_refused(run):
    """Same job name and folder, other temperatures: the results would carry the wrong physics."""
    job = write_job(run, **dict(SMALL, temperatures="[5.0, 6.0, 7.0]"))
    job.write_text(job.read_text() + "\n[analyze.observables]\nn_blocks = 2\n")
    (run / "driver" / "job.toml").unlink()
    before = _tree(run / "driver")
    proc = hpc_rg("analyze", job, check=False)
    assert proc.returncode == 2
    assert "simulate.temperatures differs: run has [2.0, 2.269185, 2.6], job has [5.0, 6.0, 7.0]" in \
        _error_line(proc)
    assert _tree(run / "driver") == before


# -- corrupt checkpoints given to --resume ---------------------------------------------------------------

def _resume_longer(run):
    return hpc_rg("simulate", write_job(run, **dict(SMALL, samples=20)), "--resume", check=False)


@pytest.mark.parametrize("damage", ["truncated", "not json", "keys missing"])
def test_corrupt_commit_record_is_named(run, damage):
    latest = run / "driver" / "checkpoint" / "latest.json"
    text = latest.read_text()
    latest.write_text({"truncated": text[: len(text) // 2], "not json": "\x00garbage",
                       "keys missing": json.dumps({"checkpoint": 1})}[damage])
    proc = _resume_longer(run)
    assert proc.returncode == 2
    assert str(latest) in _error_line(proc)


@pytest.mark.parametrize("damage", ["truncated", "flipped", "missing"])
def test_corrupt_replica_file_is_named(run, damage):
    record = json.loads((run / "driver" / "checkpoint" / "latest.json").read_text())
    (name,) = record["files"]
    path = run / "driver" / "checkpoint" / name
    data = bytearray(path.read_bytes())
    if damage == "missing":
        path.unlink()
    elif damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    else:                                      # one bit of one spin: still a valid HDF5 file, wrong state
        record_spins_offset = len(data) - 1
        data[record_spins_offset] ^= 1
        path.write_bytes(data)
    proc = _resume_longer(run)
    assert proc.returncode == 2
    assert str(path) in _error_line(proc)


@pytest.mark.parametrize("victim", ["part", "ensemble.h5"])
def test_truncated_part_or_ensemble_is_named(run, victim):
    folder = run / "driver"
    path = sorted((folder / "parts").glob("p*.h5"))[-1] if victim == "part" else folder / "ensemble.h5"
    path.write_bytes(path.read_bytes()[:100])
    proc = _resume_longer(run)
    assert proc.returncode == 2
    assert str(path) in _error_line(proc)


def test_files_the_checkpoint_does_not_name_are_never_read(tmp_path, finished):
    """A replica file of a higher rank left by an earlier run (here planted: another checkpoint's states
    under the current number) must not override the committed replicas."""
    kw = dict(SMALL, samples=20)
    ref = tmp_path / "ref"
    ref.mkdir()
    hpc_rg("simulate", write_job(ref, **kw))
    run = tmp_path / "run"
    run.mkdir()
    job = write_job(run, **kw)
    proc = hpc_rg("simulate", job, env={"HPC_RG_FAULT": "kill@75"}, check=False)
    assert proc.returncode < 0
    ck = run / "driver" / "checkpoint"
    n = json.loads((ck / "latest.json").read_text())["checkpoint"]
    stale = ck / f"c{n:05d}.r0001.h5"
    shutil.copy(finished / "driver" / "checkpoint" / sorted(p.name for p in (finished / "driver" / "checkpoint")
                                                             .glob("c*.h5"))[0], stale)
    hpc_rg("simulate", job, "--resume")
    assert_same_ensemble(ref / "driver" / "ensemble.h5", run / "driver" / "ensemble.h5")
    assert not stale.exists()                # removed once a newer checkpoint was committed


# -- item 4: ownership for every stage ---------------------------------------------------------------

ANALYZE_JOB = """[job]
name = "{name}"
seed = 1
out = "shared"
stages = ["analyze"]
[analyze.observables]
files = ["{ensemble}"]
n_blocks = 2
"""


def test_analyze_does_not_overwrite_another_jobs_results(tmp_path, finished):
    ensemble = finished / "driver" / "ensemble.h5"
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text(ANALYZE_JOB.format(name="a", ensemble=ensemble))
    b.write_text(ANALYZE_JOB.format(name="b", ensemble=ensemble))
    hpc_rg("analyze", a)
    before = _tree(tmp_path / "shared")
    assert "results.h5" in before
    proc = hpc_rg("analyze", b, check=False)
    assert proc.returncode == 2
    assert "another job" in _error_line(proc) and "job.name" in proc.stderr
    assert _tree(tmp_path / "shared") == before
    hpc_rg("analyze", b, "--force")
    with h5py.File(tmp_path / "shared" / "results.h5") as f:
        assert 'name = "b"' in f.attrs["job_toml"]


def test_train_does_not_overwrite_another_jobs_models(tmp_path, finished):
    out = tmp_path / "shared"
    (out / "models").mkdir(parents=True)
    (out / "job.toml").write_text(ANALYZE_JOB.format(name="a", ensemble="x.h5"))
    (out / "models" / "m.pt").write_bytes(b"model of job a")
    job = tmp_path / "b.toml"
    job.write_text(f'[job]\nname = "b"\nseed = 1\nout = "shared"\n[train.m]\nkind = "rbm"\nensemble = '
                   f'"{finished / "driver" / "ensemble.h5"}"\nn_hidden = 2\nepochs = 1\nbatch_size = 10\n'
                   'ais_runs = 0\n')
    before = _tree(out)
    proc = hpc_rg("train", job, check=False)
    assert proc.returncode == 2
    assert "another job" in _error_line(proc)
    assert _tree(out) == before


# -- item 6: symbolic links and paths --------------------------------------------------------------------

@pytest.mark.parametrize("link", ["parts", "job.toml", "checkpoint"])
def test_symlink_in_run_folder_is_refused_not_followed(run, tmp_path_factory, link):
    folder = run / "driver"
    target = tmp_path_factory.mktemp("victim") / link
    shutil.move(folder / link, target)
    os.symlink(target, folder / link)
    victim = _tree(target.parent)
    proc = _resume_longer(run)
    assert proc.returncode == 2
    assert "symbolic link" in _error_line(proc) and link in proc.stderr
    assert _tree(target.parent) == victim


def test_model_name_leading_out_of_the_run_folder_is_refused(tmp_path, finished):
    job = tmp_path / "j.toml"
    job.write_text(f'[job]\nname = "j"\nseed = 1\nout = "run"\n[train."../../escape"]\nkind = "rbm"\n'
                   f'ensemble = "{finished / "driver" / "ensemble.h5"}"\nn_hidden = 2\nepochs = 1\n'
                   'batch_size = 10\nais_runs = 0\n')
    proc = hpc_rg("train", job, check=False)
    assert proc.returncode == 2
    _error_line(proc)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["j.toml"]      # nothing written anywhere


# -- item 9: the run-folder lock -------------------------------------------------------------------------

@pytest.mark.parametrize("mode,ranks", [("flock", 1), ("excl", 1), ("flock", 2)])
def test_second_run_on_a_locked_folder_fails_fast_naming_the_holder(run, monkeypatch, mode, ranks):
    from hpc_rg.io.folder_lock import FolderLock
    monkeypatch.setenv("HPC_RG_LOCK", mode)
    folder = run / "driver"
    held = FolderLock(folder)
    held.acquire()
    try:
        before = _tree(folder)
        t0 = time.time()
        proc = hpc_rg("simulate", write_job(run, **dict(SMALL, samples=20)), "--resume", ranks=ranks, check=False)
        assert proc.returncode == 2 and time.time() - t0 < 60
        line = _error_line(proc)
        assert f"pid {os.getpid()}" in line and socket.gethostname() in line
        assert _tree(folder) == before
    finally:
        held.release()
    assert _resume_longer(run).returncode == 0                # free again once released


@pytest.mark.parametrize("holder", ["dead pid here", "silent other host"])
def test_lock_file_of_a_gone_run_is_taken_over(run, monkeypatch, holder):
    monkeypatch.setenv("HPC_RG_LOCK", "excl")
    lock = run / "driver" / ".lock"
    if holder == "dead pid here":
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        lock.write_text(json.dumps({"host": socket.gethostname(), "pid": dead.pid, "time": 0}))
    else:                                     # no heartbeat for longer than HPC_RG_LOCK_STALE_SECONDS
        lock.write_text(json.dumps({"host": "node-elsewhere", "pid": 1, "time": 0}))
        os.utime(lock, (time.time() - 400, time.time() - 400))
    assert _resume_longer(run).returncode == 0
    assert not lock.exists()


def test_lock_file_of_a_live_run_on_another_host_is_respected(run, monkeypatch):
    monkeypatch.setenv("HPC_RG_LOCK", "excl")
    (run / "driver" / ".lock").write_text(json.dumps({"host": "node-elsewhere", "pid": 4242, "time": 0}))
    proc = _resume_longer(run)
    assert proc.returncode == 2
    assert "host node-elsewhere, pid 4242" in _error_line(proc)


def test_a_run_holds_the_lock_while_it_runs(tmp_path):
    job = write_job(tmp_path, name="long", samples=100000, thin=5)
    p = subprocess.Popen([str(BIN / "hpc-rg"), "simulate", str(job)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        folder = tmp_path / "long"
        deadline = time.time() + 60
        while not (folder / "parts").exists() and time.time() < deadline:
            time.sleep(0.05)
        proc = hpc_rg("simulate", job, "--resume", check=False)
        assert proc.returncode == 2
        assert f"pid {p.pid}" in _error_line(proc)
    finally:
        p.terminate()
        p.communicate(timeout=60)
    assert p.returncode == 3                  # the first run was not disturbed: it checkpointed on SIGTERM


# -- `out` that cannot be a run folder, and nothing written on exit 2 -------------------------------------

@pytest.mark.parametrize("out", ["file", "/dev/null"])
def test_out_that_is_not_a_folder(tmp_path, out):
    target = tmp_path / "afile" if out == "file" else out
    if out == "file":
        target.write_text("keep me")
    job = write_job(tmp_path, **SMALL)
    job.write_text(job.read_text().replace('out = "driver"', f'out = "{target}"'))
    proc = hpc_rg("simulate", job, check=False)
    assert proc.returncode == 2
    assert str(target) in _error_line(proc)
    if out == "file":
        assert target.read_text() == "keep me"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders: nothing to refuse")
def test_out_in_a_read_only_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    job = write_job(tmp_path, **SMALL)
    job.write_text(job.read_text().replace('out = "driver"', f'out = "{ro}/run"'))
    ro.chmod(0o555)
    try:
        proc = hpc_rg("simulate", job, check=False)
    finally:
        ro.chmod(0o755)
    assert proc.returncode == 2
    assert str(ro) in _error_line(proc)


def test_error_with_exit_2_writes_nothing(tmp_path):
    """Errors found by a stage after the folder was claimed: no [simulate] table; no ensemble.h5 in the
    run folder for analyze and train. The folder is left as it was: not even created."""
    job = tmp_path / "j.toml"
    job.write_text('[job]\nname = "j"\nseed = 1\nout = "shared"\n[analyze.observables]\nn_blocks = 2\n'
                   '[train.m]\nkind = "rbm"\nn_hidden = 2\nepochs = 1\nbatch_size = 10\nais_runs = 0\n')
    for stage in ("simulate", "analyze", "train"):
        proc = hpc_rg(stage, job, check=False)
        assert proc.returncode == 2
        _error_line(proc)
        assert not (tmp_path / "shared").exists()


# -- rank 0 says why it stopped ------------------------------------------------------------------------

def test_stop_reason_names_the_signal_and_the_rank(tmp_path):
    job = write_job(tmp_path, name="long", samples=1000, thin=5)
    proc = hpc_rg("simulate", job, ranks=2, env={"HPC_RG_FAULT": "term@50:rank=1"}, check=False, timeout=120)
    assert proc.returncode == 3, proc.stderr
    assert "stopped by SIGTERM at update" in proc.stderr and "SIGTERM received by rank 1 of 2" in proc.stderr
    assert "Slurm" not in proc.stderr


def test_without_flock_the_lock_falls_back_to_an_exclusive_lock_file(tmp_path, monkeypatch):
    """Where the file system has no flock (some NFS/Lustre mounts: ENOLCK), the O_EXCL lock file is used."""
    import errno
    from hpc_rg.io import folder_lock

    def no_flock(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")
    monkeypatch.delenv("HPC_RG_LOCK", raising=False)
    monkeypatch.setattr(folder_lock.fcntl, "flock", no_flock)
    first = folder_lock.FolderLock(tmp_path)
    first.acquire()
    try:
        assert first.mode == "excl"
        assert json.loads((tmp_path / ".lock").read_text())["pid"] == os.getpid()
        with pytest.raises(folder_lock.RunFolderError, match=f"pid {os.getpid()}"):
            folder_lock.FolderLock(tmp_path).acquire()
    finally:
        first.release()
    assert not (tmp_path / ".lock").exists()

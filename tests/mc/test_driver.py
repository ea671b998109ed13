"""The chain driver: rank-count invariance, restart equivalence, signals, extension, failure of one rank."""
from __future__ import annotations

import signal
import subprocess
import time

import h5py
import numpy as np
import pytest

from tests.mc.driver_helpers import BIN, assert_same_ensemble, hpc_rg, write_job


@pytest.mark.parametrize("ranks", [2, 4])
def test_ensemble_is_bit_identical_for_any_rank_count(tmp_path, reference, ranks):
    job = write_job(tmp_path)
    hpc_rg("simulate", job, ranks=ranks)
    assert_same_ensemble(reference, tmp_path / "driver" / "ensemble.h5")


# kill points drawn once from a seeded stream: inside thermalization, mid-part, right at a checkpoint
KILL_AT = sorted(np.random.default_rng(2024).integers(1, 400, size=3).tolist()) + [200]


@pytest.mark.parametrize("kill_at", KILL_AT)
def test_killed_run_resumes_bit_identical(tmp_path, reference, kill_at):
    job = write_job(tmp_path, checkpoint_every=100)
    proc = hpc_rg("simulate", job, env={"HPC_RG_FAULT": f"kill@{kill_at}"}, check=False)
    assert proc.returncode == -signal.SIGKILL
    run = tmp_path / "driver"
    assert not (run / "ensemble.h5").exists()            # never a half-written file under the final name
    hpc_rg("simulate", job, "--resume", ranks=2 if kill_at % 2 else 1)
    assert_same_ensemble(reference, run / "ensemble.h5")
    with h5py.File(run / "ensemble.h5") as f:             # no sample lost or duplicated
        assert not np.isnan(f["energy"][()]).any() and f["spins"].shape[2] == 60
        assert (np.abs(f["spins"][()]) == 1).all()


def test_sigterm_checkpoints_and_exits_3_then_resumes(tmp_path):
    """What Slurm sends before the time limit: the run checkpoints, exits 3, and resumes bit for bit."""
    kw = dict(name="long", samples=4000, thin=5, checkpoint_every=1000)
    job = write_job(tmp_path, **kw)
    p = subprocess.Popen([str(BIN / "hpc-rg"), "simulate", str(job)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not (tmp_path / "long" / "checkpoint" / "latest.json").exists() and time.time() < deadline:
        time.sleep(0.02)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 3, err
    assert "resume with --resume" in err
    assert "in progress or stopped" in hpc_rg("status", tmp_path / "long").stdout
    hpc_rg("simulate", job, "--resume")
    ref = tmp_path / "ref"
    ref.mkdir()
    hpc_rg("simulate", write_job(ref, **kw))
    assert_same_ensemble(ref / "long" / "ensemble.h5", tmp_path / "long" / "ensemble.h5")


def test_raising_samples_extends_a_finished_run(tmp_path):
    short = write_job(tmp_path, samples=40)
    hpc_rg("simulate", short)
    longer = write_job(tmp_path, samples=60)        # same name and folder, more samples
    hpc_rg("simulate", longer, "--resume")
    ref_dir = tmp_path / "ref"
    ref_dir.mkdir()
    hpc_rg("simulate", write_job(ref_dir, samples=60))
    assert_same_ensemble(ref_dir / "driver" / "ensemble.h5", tmp_path / "driver" / "ensemble.h5")


def test_resume_with_changed_physics_is_refused(tmp_path):
    job = write_job(tmp_path, samples=10)
    hpc_rg("simulate", job)
    changed = write_job(tmp_path, samples=10, thin=7)
    proc = hpc_rg("simulate", changed, "--resume", check=False)
    assert proc.returncode == 2
    assert "simulate.thin differs" in proc.stderr


def test_exception_on_one_rank_ends_the_job_quickly(tmp_path):
    job = write_job(tmp_path, samples=100000)
    t0 = time.time()
    proc = hpc_rg("simulate", job, ranks=2, env={"HPC_RG_FAULT": "raise@50:rank=1"}, check=False, timeout=60)
    assert proc.returncode != 0
    assert time.time() - t0 < 30
    assert "injected failure" in proc.stderr


def test_without_exchange_ranks_do_not_talk_and_agree(tmp_path):
    job = write_job(tmp_path, name="plain", replica_exchange="false", chains=3)
    hpc_rg("simulate", job)
    ref = tmp_path / "plain" / "ensemble.h5"
    other = tmp_path / "o"
    other.mkdir()
    hpc_rg("simulate", write_job(other, name="plain", replica_exchange="false", chains=3), ranks=2)
    assert_same_ensemble(ref, other / "plain" / "ensemble.h5", exchange=False)


def test_tuned_ladder_is_recorded_and_rank_invariant(tmp_path):
    kw = dict(name="tuned", L=8, temperatures="[1.8, 2.0, 2.2, 3.5]", ladder="tune", samples=20, thermalize=50)
    hpc_rg("simulate", write_job(tmp_path, **kw))
    other = tmp_path / "o"
    other.mkdir()
    hpc_rg("simulate", write_job(other, **kw), ranks=2)
    import json
    ladder = json.loads((tmp_path / "tuned" / "ladder.json").read_text())
    assert len(ladder["rounds"]) > 1 and ladder["temperatures"][0] == 1.8
    with h5py.File(tmp_path / "tuned" / "ensemble.h5") as f:
        assert np.allclose(f["temperatures"][()], ladder["temperatures"])
    assert_same_ensemble(tmp_path / "tuned" / "ensemble.h5", other / "tuned" / "ensemble.h5")


def test_bits_storage_killed_and_resumed_on_2_ranks_is_the_int8_run_packed(tmp_path, reference):
    """simulate.spin_storage = "bits": killed mid-run, resumed on 2 ranks, the stored bytes are exactly the
    uninterrupted int8 run's spins packed 8 per byte (so bit-identical to an uninterrupted bits run), every
    other dataset is identical, and the file reads back as the int8 one. Resuming with int8 is refused."""
    from hpc_rg.io.ensemble import Ensemble
    job = write_job(tmp_path, checkpoint_every=100, spin_storage="bits")
    proc = hpc_rg("simulate", job, env={"HPC_RG_FAULT": "kill@250"}, check=False)
    assert proc.returncode == -signal.SIGKILL
    refused = hpc_rg("simulate", write_job(tmp_path, checkpoint_every=100, spin_storage="int8"), "--resume",
                     check=False)
    assert refused.returncode == 2 and "simulate.spin_storage" in refused.stderr, refused.stderr
    hpc_rg("simulate", write_job(tmp_path, checkpoint_every=100, spin_storage="bits"), "--resume", ranks=2)
    run = tmp_path / "driver" / "ensemble.h5"
    with h5py.File(reference) as fa, h5py.File(run) as fb:
        int8 = fa["spins"][()]
        assert fb["spins"].dtype == np.uint8 and fb["spins"].attrs["spin_storage"] == "bits"
        np.testing.assert_array_equal(fb["spins"][()], np.packbits(int8 > 0, axis=-1))
        for k in ("energy", "magnetization", "timeseries/energy", "timeseries/magnetization",
                  "exchange/slot_history"):
            np.testing.assert_array_equal(fa[k][()], fb[k][()])
    with Ensemble(run) as e:
        np.testing.assert_array_equal(e.spins[()], int8)

"""Issue 16, item 1: a checkpoint is exactly the files its commit record names.

A 3-rank run is killed at every phase of a checkpoint (HPC_RG_CKPT_FAULT), resumed on 2 ranks and stopped
there by a SIGTERM so that the next checkpoint gets the same number at another update count (the case in
which a stale replica file of rank 2 used to override the committed state), then finished on 1 rank: the
ensemble must be bit-identical to an uninterrupted run. The ranks are started by mpiexec from here, as
tests/mc/test_driver.py does."""
from __future__ import annotations

import json

import pytest

from hpc_rg.io.checkpoint import PHASES
from tests.mc.driver_helpers import assert_same_ensemble, hpc_rg, write_job

# updates = 20 + 12 * 5 = 80; checkpoints at 20, 40, 60 (numbers 0, 1, 2) and at the end
KW = dict(L=6, samples=12, thin=5, thermalize=20, checkpoint_every=20, checkpoint_seconds=0)
KILLED = 1                                       # the checkpoint (number) the 3-rank run dies in


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ref")
    hpc_rg("simulate", write_job(folder, **KW))
    return folder / "driver" / "ensemble.h5"


@pytest.mark.slow
@pytest.mark.parametrize("phase", PHASES)
def test_kill_in_every_checkpoint_phase_on_3_ranks_resume_on_2_then_1(tmp_path, reference, phase):
    job = write_job(tmp_path, **KW)
    run = tmp_path / "driver"
    # replica files are written by every rank (kill the highest, whose stale file matters); the commit by 0
    rank = 2 if phase in ("part_closed", "replica_tmp", "replica_written") else 0
    proc = hpc_rg("simulate", job, ranks=3, env={"HPC_RG_CKPT_FAULT": f"{phase}@{KILLED}:rank={rank}"},
                  check=False, timeout=120)
    assert proc.returncode != 0, proc.stderr
    assert not (run / "ensemble.h5").exists()

    # 2 ranks: resumes from checkpoint 0 (or 1, if it was committed) and is stopped by a SIGTERM on rank 1
    # at update 25 (or 45): its checkpoint, numbered 1 (or 2), falls at another update count than the
    # 3-rank run's checkpoint 1
    proc = hpc_rg("simulate", job, "--resume", ranks=2, env={"HPC_RG_FAULT": "term@21:rank=1"}, check=False,
                  timeout=120)
    assert proc.returncode == 3, proc.stderr
    assert "stopped by SIGTERM at update" in proc.stderr and "SIGTERM received by rank 1 of 2" in proc.stderr
    record = json.loads((run / "checkpoint" / "latest.json").read_text())
    assert record["t"] in (25, 45) and record["ranks"] == 2
    # only the files the record names are left
    assert sorted(p.name for p in (run / "checkpoint").glob("c*")) == sorted(record["files"])

    hpc_rg("simulate", job, "--resume")
    assert_same_ensemble(reference, run / "ensemble.h5")


def test_bits_run_killed_in_a_checkpoint_resumes_bit_identical(tmp_path, reference):
    """simulate.spin_storage = "bits": killed by rank 1 right after its replica file (checkpoint 1), resumed on
    1 rank: the stored bytes are the uninterrupted run's spins packed, everything else identical."""
    import h5py
    import numpy as np
    job = write_job(tmp_path, spin_storage="bits", **KW)
    proc = hpc_rg("simulate", job, ranks=2, env={"HPC_RG_CKPT_FAULT": f"replica_written@{KILLED}:rank=1"},
                  check=False, timeout=120)
    assert proc.returncode != 0
    hpc_rg("simulate", job, "--resume")
    with h5py.File(reference) as fa, h5py.File(tmp_path / "driver" / "ensemble.h5") as fb:
        assert fb["spins"].attrs["spin_storage"] == "bits"
        np.testing.assert_array_equal(fb["spins"][()], np.packbits(fa["spins"][()] > 0, axis=-1))
        for k in ("energy", "magnetization", "timeseries/energy", "exchange/slot_history"):
            np.testing.assert_array_equal(fa[k][()], fb[k][()])

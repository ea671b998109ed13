"""A job whose time limit is shorter than its run: Slurm signals it (--signal=B:TERM), hpc-rg checkpoints
and exits 3, the template requeues it (same job id, bounded), and the finished ensemble equals an
uninterrupted run bit for bit.

Slurm checks time limits every 30 s and sends the --signal warning up to that much early, so with
--time=1 and --signal=B:TERM@59 every attempt is signalled within about 30 s of its start: a run of a
minute or so of compute takes two or more attempts. The uninterrupted reference runs beside it."""
from __future__ import annotations

import re

import pytest

from slurm_jobs import SLURM_DIR, assert_same_ensemble, run_local, sbatch, wait_done, write_job

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

# About 40 s of one core on the 2-core test machine (exchange every 10 sweeps, 20 chains of 16x16).
LONG = dict(samples=100, thin=600, thermalize=200)


def test_time_limit_checkpoint_requeue_bit_identical(slurm_env, tmp_path):
    job = write_job(tmp_path / "long.toml", "long", "run", **LONG)
    env = dict(slurm_env, HPC_RG_MAX_REQUEUES="8")
    job_id = sbatch(env, "--ntasks=1", "--time=1", "--signal=B:TERM@59", f"--chdir={tmp_path}",
                    "--output=slurm-%j.out", str(SLURM_DIR / "simulate.sbatch"), str(job), cwd=tmp_path)
    ref = write_job(tmp_path / "ref.toml", "long", "ref", **LONG)
    run_local(ref, "simulate", timeout=600)
    rec = wait_done(env, job_id, timeout=600)[0]
    log = (tmp_path / f"slurm-{job_id}.out").read_text()
    assert rec["JobState"] == "COMPLETED", log
    restarts = int(rec["Restarts"])
    assert 1 <= restarts <= 8, log
    # At least one attempt was stopped by the signal after installing its handler: it wrote a checkpoint
    # and exited 3, and a later attempt resumed from it.
    assert re.search(r"stopped by SIGTERM at update \d+ of \d+; checkpoint written", log), log
    assert "exited with 3" in log, log
    assert log.rstrip().endswith("exited with 0"), log
    assert_same_ensemble(tmp_path / "run" / "ensemble.h5", tmp_path / "ref" / "ensemble.h5")

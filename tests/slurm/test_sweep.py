"""slurm/sweep.sbatch as an array job: a 3-point sweep in L, each task one job file."""
from __future__ import annotations

import h5py
import pytest

from slurm_jobs import SLURM_DIR, sbatch, wait_done, write_job

pytestmark = pytest.mark.slurm

SIZES = (8, 12, 16)


def test_array_job_runs_three_point_sweep(slurm_env, tmp_path):
    jobs = [write_job(tmp_path / f"L{L}.toml", f"sweep-L{L}", f"L{L}", L=L, chains=2, samples=20)
            for L in SIZES]
    listing = tmp_path / "jobs.txt"
    listing.write_text("# one job file a line\n" + "".join(f"{j}\n" for j in jobs))
    array_id = sbatch(slurm_env, "--array=0-2", "--ntasks=1", "--time=5", f"--chdir={tmp_path}",
                      "--output=%x-%A_%a.out", str(SLURM_DIR / "sweep.sbatch"), f"@{listing}", cwd=tmp_path)
    recs = wait_done(slurm_env, array_id, timeout=180, count=3)
    logs = "\n".join(f.read_text() for f in tmp_path.glob("*.out"))
    assert sorted(int(r["ArrayTaskId"]) for r in recs) == [0, 1, 2], logs
    assert all(r["JobState"] == "COMPLETED" for r in recs), logs
    for L in SIZES:
        with h5py.File(tmp_path / f"L{L}" / "ensemble.h5", "r") as f:
            assert f["spins"].shape == (5, 2, 20, L, L)
            assert f.attrs["job_toml"].count(f"L = {L}\n") == 1

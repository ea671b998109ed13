"""slurm/tune.sbatch as an array job: task 0 runs the search (and retrains the best setting), task 1 joins
the study as an extra asynchronous worker; together they spend the trial budget once."""
from __future__ import annotations

import csv

import pytest

from slurm_jobs import SLURM_DIR, run_local, sbatch, wait_done, write_job

pytestmark = pytest.mark.slurm

TUNE = """
[train.cnn]
kind = "coarse_cnn"
block = 2
n_train = 300
n_test = 100
epochs = 2
batch_size = 20
repeats = 2

[tune.cnn]
trials = 10
batch = 2
space.lr = {log = [1e-3, 3e-2]}
space.epochs = {int = [1, 3]}
"""


def test_array_task_joins_the_study_as_a_worker(slurm_env, tmp_path):
    job = write_job(tmp_path / "tune.toml", "tune-array", "run", temperatures="[2.269185]", replica_exchange=False,
                    chains=2, samples=100, extra=TUNE)
    run_local(job, "simulate")
    array_id = sbatch(slurm_env, "--array=0-1", "--ntasks=1", "--time=5", f"--chdir={tmp_path}",
                      "--output=%x-%A_%a.out", str(SLURM_DIR / "tune.sbatch"), str(job), cwd=tmp_path)
    recs = wait_done(slurm_env, array_id, timeout=300, count=2)
    logs = "\n".join(f.read_text() for f in tmp_path.glob("*.out"))
    assert all(r["JobState"] == "COMPLETED" for r in recs), logs
    assert "as an extra worker" in logs and "NOT reproducible" in logs, logs
    with open(tmp_path / "run" / "tune" / "cnn.trials.csv") as f:
        rows = list(csv.DictReader(f))
    assert 10 <= len(rows) <= 11, rows          # the budget, at most one trial over from the race to ask
    assert (tmp_path / "run" / "models" / "cnn.tuned.toml").exists()
    assert (tmp_path / "run" / "models" / "cnn.tuned.pt").exists()

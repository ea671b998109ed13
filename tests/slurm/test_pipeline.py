"""slurm/pipeline.sh chains the stages of a quick job with --dependency=afterok; each stage runs under
`srun --mpi=pmi2` on two ranks, and the ensemble equals a plain one-rank run bit for bit."""
from __future__ import annotations

import importlib.util
import subprocess

import pytest

from slurm_jobs import SLURM_DIR, assert_same_ensemble, job_records, run_local, wait_done, write_job

pytestmark = pytest.mark.slurm

TRAIN_ANALYZE = """
[train.rbm]
kind = "rbm"
n_hidden = 8
epochs = 2
batch_size = 50
ais_runs = 0

[analyze.observables]
n_blocks = 4
"""


def test_pipeline_completes_quick_job(slurm_env, tmp_path):
    job = write_job(tmp_path / "quick.toml", "quick", "run", extra=TRAIN_ANALYZE)
    stages = "simulate,train,analyze"
    if importlib.util.find_spec("hpc_rg.report.stage") is not None:
        stages += ",report"
    p = subprocess.run([str(SLURM_DIR / "pipeline.sh"), "--stages", stages, "--ntasks=2", "--cpus-per-task=1", "--time=10",
                        f"--chdir={tmp_path}", "--output=%x-%j.out", str(job)],
                       env=slurm_env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    submitted = dict(line.split() for line in p.stdout.splitlines())
    assert list(submitted) == stages.split(",")
    ids = list(submitted.values())
    # Each stage waits for the previous one: the dependency is recorded by Slurm.
    for prev, nxt in zip(ids, ids[1:]):
        assert f"afterok:{prev}" in job_records(slurm_env, nxt)[0].get("Dependency", "") or \
            job_records(slurm_env, nxt)[0].get("JobState") != "PENDING"
    for stage, job_id in submitted.items():
        rec = wait_done(slurm_env, job_id, timeout=240)[0]
        logs = "\n".join(f.read_text() for f in tmp_path.glob("*.out"))
        assert rec["JobState"] == "COMPLETED", f"{stage} {rec['JobState']}\n{logs}"
    run = tmp_path / "run"
    assert (run / "ensemble.h5").exists() and (run / "results.h5").exists()
    assert any((run / "models").iterdir())
    if "report" in submitted:
        assert (run / "report.md").exists()
    # The same job run plainly on one rank gives the same ensemble (rank-count invariance under srun).
    ref = write_job(tmp_path / "ref.toml", "quick", "ref", extra=TRAIN_ANALYZE)
    run_local(ref, "simulate")
    assert_same_ensemble(run / "ensemble.h5", tmp_path / "ref" / "ensemble.h5")

"""`mpirun -n 64` on a 2-core machine must still work: the quick job on 16 oversubscribed ranks (most of
them owning a single chain, some with replica-exchange neighbours elsewhere) gives the same ensemble as one
rank, bit for bit. Serial test: it spawns `.venv/bin/mpiexec` itself (no pytest-mpi)."""
from __future__ import annotations

import pytest

from slurm_jobs import assert_same_ensemble, run_local, venv, write_job

pytestmark = pytest.mark.slow


def test_sixteen_ranks_match_one_rank(tmp_path):
    if not (venv() / "bin" / "mpiexec").exists():
        pytest.skip("no mpiexec in the virtual environment")
    one = write_job(tmp_path / "one.toml", "ranks", "one")
    many = write_job(tmp_path / "many.toml", "ranks", "many")
    run_local(one, "simulate")
    p = run_local(many, "simulate", ranks=16, timeout=120)
    assert "on 16 rank(s)" in p.stdout + p.stderr
    assert_same_ensemble(tmp_path / "one" / "ensemble.h5", tmp_path / "many" / "ensemble.h5")

"""`mpirun -n 64` on a 2-core machine must still work: a quick job of 3 ladders x 4 temperatures = 12
chains on 16 oversubscribed ranks (12 ranks own one chain each, with replica-exchange neighbours on other
ranks; 4 ranks own nothing and must still join every collective step) gives the same ensemble as one rank,
bit for bit. Serial test: it spawns `.venv/bin/mpiexec` itself (no pytest-mpi)."""
from __future__ import annotations

import pytest

from slurm_jobs import assert_same_ensemble, run_local, venv, write_job

pytestmark = pytest.mark.slow


def test_sixteen_ranks_match_one_rank(tmp_path):
    if not (venv() / "bin" / "mpiexec").exists():
        pytest.skip("no mpiexec in the virtual environment")
    small = dict(chains=3, temperatures="[2.1, 2.269185, 2.4, 2.6]")
    one = write_job(tmp_path / "one.toml", "ranks", "one", **small)
    many = write_job(tmp_path / "many.toml", "ranks", "many", **small)
    run_local(one, "simulate")
    p = run_local(many, "simulate", ranks=16, timeout=120)
    assert "on 16 rank(s)" in p.stdout + p.stderr
    assert_same_ensemble(tmp_path / "one" / "ensemble.h5", tmp_path / "many" / "ensemble.h5")

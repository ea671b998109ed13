"""MPI plumbing, run under `mpiexec -n 2` and `-n 4` with `pytest --only-mpi`."""
from __future__ import annotations

import tempfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from hpc_rg.parallel import World, deal, owner, seed_sequence, world


@pytest.mark.mpi(min_size=2)
def test_chain_assignment_covers_every_chain_exactly_once():
    w = world()
    for n_items in (1, w.size - 1, w.size, 7, 64, 1001):
        mine = list(deal(n_items, w.size, w.rank))
        assert all(owner(i, n_items, w.size) == w.rank for i in mine)
        everyone = [i for part in w.allgather(mine) for i in part]
        assert sorted(everyone) == list(range(n_items))


@pytest.mark.mpi(min_size=2)
def test_seed_streams_do_not_depend_on_rank():
    w = world()
    draws = np.random.default_rng(seed_sequence(5, 3, 1, purpose="chain")).integers(0, 2**62, size=4)
    gathered = w.allgather(draws)
    assert all(np.array_equal(g, gathered[0]) for g in gathered)
    other = np.random.default_rng(seed_sequence(5, 3, 1, purpose="exchange")).integers(0, 2**62, size=4)
    assert not np.array_equal(draws, other)


@pytest.mark.mpi(min_size=2)
def test_simulation_in_the_world_equals_the_serial_run():
    from hpc_rg.config import loads
    from hpc_rg.mc.stage import run as run_simulate
    w = world()
    folder = Path(w.bcast(tempfile.mkdtemp(prefix="hpc_rg_mpi_") if w.is_root else None))
    text = ('[job]\nname = "m"\nseed = 3\nout = "{out}"\n[simulate]\nmodel = "ising2d"\nL = 8\n'
            'temperatures = [2.0, 2.3, 2.6]\nchains = 3\nthermalize = 50\nsamples = 20\nthin = 3\n'
            'replica_exchange = true\nexchange_every = 4\n')
    cfg = loads(text.format(out=folder / "par"), folder / "job.toml")
    assert run_simulate(cfg, w) == 0
    if w.is_root:
        serial = loads(text.format(out=folder / "ser"), folder / "job.toml")
        assert run_simulate(serial, World(None, 0, 1)) == 0
        with h5py.File(folder / "par" / "ensemble.h5") as a, h5py.File(folder / "ser" / "ensemble.h5") as b:
            for k in ("spins", "energy", "timeseries/energy", "exchange/slot_history"):
                assert np.array_equal(a[k][()], b[k][()]), k
    w.barrier()


@pytest.mark.mpi(min_size=2)
def test_torch_distributed_initialises_from_mpi_and_all_reduces():
    import torch
    import torch.distributed as dist
    from hpc_rg.parallel import init_torch_distributed, shutdown_torch_distributed
    w = world()
    assert init_torch_distributed()
    try:
        x = torch.tensor([float(w.rank + 1), 1.0])
        dist.all_reduce(x)
        n = w.size
        assert x.tolist() == [n * (n + 1) / 2, float(n)]
    finally:
        shutdown_torch_distributed()

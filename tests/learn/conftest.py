"""Small Ising ensembles for the learning tests, generated once per session with the reference
checkerboard Metropolis and written with hpc_rg.io.ensemble.write_ensemble."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from hpc_rg.io.ensemble import write_ensemble
from hpc_rg.lattice.nearest import NearestNeighbour
from hpc_rg.mc.metropolis import CheckerboardMetropolis

T_C = 2.0 / math.log(1.0 + math.sqrt(2.0))

# the models here are tiny: extra threads only fight over the shared cores
torch.set_num_threads(1)


def make_ensemble(path: Path, L: int, temperatures, chains: int, samples: int, thin: int, thermalize: int,
                  seed: int = 7) -> Path:
    lattice = NearestNeighbour((L, L))
    spins = np.empty((len(temperatures), chains, samples, L, L), dtype=np.int8)
    for t, T in enumerate(temperatures):
        for c in range(chains):
            s = CheckerboardMetropolis(lattice, 1.0 / T, [np.random.SeedSequence(seed, spawn_key=(t, c))])
            e = np.empty((1, thermalize))
            s.run(thermalize, e, e.copy(), thermalize)
            buf = np.empty((1, 1))
            for k in range(samples):
                s.run(thin, buf, buf.copy(), thin)
                spins[t, c, k] = s.configurations()[0]
    return write_ensemble(path, temperatures, spins, attrs={"model": "ising2d", "J": 1.0, "h": 0.0})


@pytest.fixture(scope="session")
def critical_ensemble(tmp_path_factory) -> Path:
    """27x27 at T_c: 4 chains x 250 samples (thin 20 sweeps)."""
    return make_ensemble(tmp_path_factory.mktemp("learn") / "critical.h5", 27, [T_C], 4, 250, 20, 2000)


@pytest.fixture(scope="session")
def ladder_ensemble(tmp_path_factory) -> Path:
    """16x16 at T = 1.5, T_c, 4.0: 2 chains x 100 samples."""
    return make_ensemble(tmp_path_factory.mktemp("learn") / "ladder.h5", 16, [1.5, T_C, 4.0], 2, 100, 10, 1000)


@pytest.fixture(scope="session")
def ensemble_factory():
    """make_ensemble itself, for tests that must control who writes (MPI tests)."""
    return make_ensemble

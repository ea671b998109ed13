"""Session-cached test ensembles (generated here, never committed), and every declared reduction's function."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from ising_data import T_C, make_chain_ensemble, make_ensemble  # noqa: E402

from hpc_rg.parallel import World  # noqa: E402
from hpc_rg.reduce import registry  # noqa: E402

# the models here are tiny: extra threads only fight over the shared cores
torch.set_num_threads(1)


@pytest.fixture
def reductions():
    """{name: reduction function} of every declared reduction (each module imported now)."""
    return {name: registry.load(name) for name in registry.declared()}


@pytest.fixture(scope="session")
def serial_world():
    return World(None, 0, 1)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("reduce_data")


@pytest.fixture(scope="session")
def critical_32(data_dir):
    """2D Ising at T_c, L = 32, 4 Wolff chains × 1000 samples."""
    return make_ensemble(data_dir / "c32.h5", (32, 32), [T_C], 4, 1000, seed=32)


@pytest.fixture(scope="session")
def critical_64(data_dir):
    return make_ensemble(data_dir / "c64.h5", (64, 64), [T_C], 4, 500, seed=64)


@pytest.fixture(scope="session")
def chain_64(data_dir):
    """Exact iid samples of a periodic chain of 64 sites at T = 1.0 and 2.0."""
    return make_chain_ensemble(data_dir / "chain.h5", 64, [1.0, 2.0], 4, 2000, seed=5)


@pytest.fixture(scope="session")
def ladders(data_dir):
    """L = 8, 16 ladders around T_c for Binder crossings (scan)."""
    temps = [2.15, 2.22, 2.27, 2.32, 2.39]
    return [make_ensemble(data_dir / f"lad{L}.h5", (L, L), temps, 2, 2000, seed=L) for L in (8, 16)]

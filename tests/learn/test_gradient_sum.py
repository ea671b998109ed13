"""The data-parallel gradient sum (`learn.gradient_sum.GradientSum`), run under `mpiexec -n 2` and `-n 4` with
`pytest --only-mpi`: the sum over ranks of every rank's contribution, the same bits on every rank, over
shared memory on one node, through MPI between (pretend) nodes, and by message passing when nodes differ."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from hpc_rg.learn.gradient_sum import GradientSum
from hpc_rg.parallel import world

pytestmark = pytest.mark.mpi(min_size=2)


def _contribution(rank: int, step: int, n: int, dtype) -> torch.Tensor:
    g = np.random.default_rng([rank, step, n]).normal(size=n)
    return torch.from_numpy(g).to(dtype)


def _check_sums(gs: GradientSum, n: int, dtype, steps: int = 3) -> None:
    w = world()
    for step in range(steps):                    # the buffers are reused step after step
        gs.contribution.copy_(_contribution(w.rank, step, n, dtype))
        got = gs.reduce()
        expect = sum(_contribution(r, step, n, torch.float64) for r in range(w.size))
        assert got.dtype == dtype and got.shape == (n,)
        tol = 1e-12 if dtype == torch.float64 else 1e-5
        assert torch.allclose(got.double(), expect, rtol=tol, atol=tol)
        mine = hashlib.sha256(got.numpy().tobytes()).hexdigest()
        assert all(h == mine for h in w.allgather(mine)), "ranks hold different sums"
        assert gs.result.data_ptr() != gs.contribution.data_ptr() or not gs.shared


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n", [1, 3, 1000, 100_003])
def test_one_node_sums_through_shared_memory(n, dtype):
    gs = GradientSum(world(), n, dtype, "cpu")
    assert gs.shared                             # every rank of the test runs on this machine
    _check_sums(gs, n, dtype)
    gs.close()
    gs.close()                                   # idempotent


@pytest.mark.parametrize("per_node", [1, 2])
def test_between_nodes(per_node):
    """Pretend nodes of `per_node` ranks: slices are summed on each node, then all-reduced between nodes
    (one rank per node: plain MPI)."""
    w = world()
    if w.size % per_node:
        pytest.skip("ranks do not fill whole pretend nodes")
    gs = GradientSum(w, 5001, torch.float32, "cpu", ranks_per_node=per_node)
    assert gs.shared == (per_node > 1)
    _check_sums(gs, 5001, torch.float32)
    gs.close()


def test_uneven_nodes_fall_back_to_message_passing():
    w = world()
    if w.size < 3:
        pytest.skip("needs a node of 2 ranks beside a node of 1")
    gs = GradientSum(w, 777, torch.float64, "cpu", ranks_per_node=w.size - 1)   # nodes of size-1 and 1
    assert not gs.shared
    _check_sums(gs, 777, torch.float64)
    gs.close()

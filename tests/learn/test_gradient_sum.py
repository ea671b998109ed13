"""The data-parallel gradient sum (`learn.gradient_sum.GradientSum`), run under `mpiexec -n 2` and `-n 4` with
`pytest --only-mpi`: the sum over ranks of every rank's contribution, the same bits on every rank, over
shared memory on one node, through MPI between (pretend) nodes, and by message passing when nodes differ."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from hpc_rg.learn.gradient_sum import GradientSum, release
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


def test_a_sum_stays_valid_until_the_next_but_one_reduce():
    """Two totals are used in turn (no copy of the sum per step): the optimiser reads step k's sum while a
    faster rank already writes step k+1's."""
    w = world()
    gs = GradientSum(w, 1000, torch.float64, "cpu")
    expect = []
    got = []
    for step in range(3):
        gs.contribution.copy_(_contribution(w.rank, step, 1000, torch.float64))
        got.append(gs.reduce())
        expect.append(sum(_contribution(r, step, 1000, torch.float64) for r in range(w.size)))
        assert torch.equal(gs.result, got[-1])
        if step >= 1:      # the previous sum is untouched by this step
            assert torch.allclose(got[-2], expect[-2], rtol=1e-12, atol=1e-12)
    gs.close()


def test_pooled_windows_are_reused_between_trainings():
    """Opening shared windows costs milliseconds: a training hands its sum back and the next training over
    the same ranks gets the same windows (viewed as its own size and dtype) unless they are too small or
    still in use."""
    w = world()
    release(w)                                                  # whatever earlier tests left
    first = GradientSum.pooled(w, 1000, torch.float32, "cpu")
    _check_sums(first, 1000, torch.float32)
    busy = GradientSum.pooled(w, 300, torch.float32, "cpu")      # the first is in use: fresh windows
    assert busy is not first and busy.shared
    _check_sums(busy, 300, torch.float32)
    busy.close()
    first.give_back()
    again = GradientSum.pooled(w, 500, torch.float64, "cpu")     # 4000 bytes fit the first's page
    assert again is first
    _check_sums(again, 500, torch.float64)
    again.give_back()
    bigger = GradientSum.pooled(w, 100_003, torch.float32, "cpu")
    assert bigger is not first and not first.shared             # too small: freed by all ranks together
    _check_sums(bigger, 100_003, torch.float32)
    bigger.give_back()
    release(w)
    assert not bigger.shared


def test_a_sync_opened_beside_the_pooled_one_is_freed_on_close():
    from hpc_rg.learn.gradient_sum import GradientSync
    w = world()
    release(w)
    params = [torch.nn.Parameter(torch.zeros(30, 4)), torch.nn.Parameter(torch.zeros(4))]
    outer = GradientSync(params, w)
    inner = GradientSync(params, w)          # e.g. a nested training while the outer one is in use
    assert inner.sum is not outer.sum and inner.sum.shared
    for p in params:
        p.grad = torch.ones_like(p)
    inner.reduce()
    assert all(torch.equal(p.grad, torch.full_like(p, w.size)) for p in params)
    inner.close()
    assert not inner.sum.shared               # freed by all ranks together
    outer.close()
    assert outer.sum.shared                   # kept for the next training
    assert all(torch.equal(p.grad, torch.full_like(p, w.size)) for p in params)   # own copies
    release(w)
    assert not outer.sum.shared

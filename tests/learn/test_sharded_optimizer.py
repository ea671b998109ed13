"""The optimiser step split over the ranks of a node (run: mpiexec -n 2|3|4 python -m pytest --only-mpi
tests/learn/test_sharded_optimizer.py).

Each rank updates its slice of the parameters (slices cut through W and the biases at 3 ranks), so the
optimiser's state lives in pieces: its state_dict must still be the whole optimiser's (checkpoints do not
depend on the rank count), a training resumed from it must continue the uninterrupted one, and on several
nodes (here: runs of ranks pretending to be nodes) each node's copy of the parameters must stay equal."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hpc_rg.learn import gradient_sum
from hpc_rg.learn.data import ArraySource
from hpc_rg.learn.objectives import RBMTask
from hpc_rg.learn.rbm import RBM
from hpc_rg.learn.trainer import Options, State, fit
from hpc_rg.parallel import World, world

SINGLE = World(None, 0, 1)


def _task():
    rng = np.random.default_rng(5)
    pattern = np.where(rng.random(48) < 0.5, -1, 1)
    spins = (np.where(rng.random((360, 48)) < 0.8, 1, -1) * pattern * rng.choice([-1, 1], (360, 1))).astype(np.int8)
    torch.manual_seed(1)
    rbm = RBM(48, 12, "spin").double()
    return rbm, RBMTask(rbm, ArraySource(spins), np.arange(300), np.arange(300, 360), torch.device("cpu"), "spin",
                        dtype=torch.float64)


def _opts(optimizer, epochs):
    return Options(epochs=epochs, batch_size=30, dtype=torch.float64, optimizer=optimizer, lr=0.02,
                   momentum=0.5, l2=1e-3, job_seed=2, key=(0, 0, 0), verbose=False)


def _close(a, b, tol=1e-10):
    return torch.allclose(torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64),
                          rtol=0, atol=tol)


def _same_state(got: dict, ref: dict):
    assert [{k: v for k, v in g.items()} for g in got["param_groups"]] == ref["param_groups"]
    assert got["state"].keys() == ref["state"].keys()
    for i, st in ref["state"].items():
        assert got["state"][i].keys() == st.keys()
        for k, v in st.items():
            assert torch.as_tensor(got["state"][i][k]).shape == torch.as_tensor(v).shape, (i, k)
            assert _close(got["state"][i][k], v), (i, k)


@pytest.mark.mpi(min_size=2)
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_state_dict_is_the_whole_optimizers_and_resumes(optimizer):
    w = world()
    rbm1, task1 = _task()
    ref = fit(task1, SINGLE, _opts(optimizer, 3))
    rbm, task = _task()
    half = fit(task, w, _opts(optimizer, 2), distributed=True)
    assert gradient_sum._POOL and all(k.shared for k in gradient_sum._POOL.values())   # the sharded path ran
    mid_rbm, mid_task = _task()
    mid = fit(mid_task, SINGLE, _opts(optimizer, 2))
    _same_state(half.optimizer, mid.optimizer)          # gathered over the ranks: the one-rank optimiser's
    # continue the 2-rank run from its state on N ranks, and the one-rank run's state on N ranks too
    done = fit(task, w, _opts(optimizer, 3), state=half, distributed=True)
    fit(mid_task, w, _opts(optimizer, 3), state=mid, distributed=True)
    for name in ("W", "a", "b"):
        assert _close(getattr(rbm, name), getattr(rbm1, name)), name
        assert _close(getattr(mid_rbm, name), getattr(rbm1, name)), name
    _same_state(done.optimizer, ref.optimizer)
    torch.manual_seed(1)
    assert not _close(RBM(48, 12, "spin").double().W, rbm.W, 1e-3)       # the weights moved


@pytest.mark.mpi(min_size=4)
def test_nodes_keep_equal_copies(monkeypatch):
    """Runs of 2 ranks act as nodes: each node's rank i updates slice i of its own copy."""
    w = world()
    gradient_sum.release(w)
    real = gradient_sum.GradientSum.pooled.__func__
    monkeypatch.setattr(gradient_sum.GradientSum, "pooled",
                        classmethod(lambda cls, *a, ranks_per_node=None: real(cls, *a, ranks_per_node=2)))
    rbm1, task1 = _task()
    ref = fit(task1, SINGLE, _opts("adam", 2))
    rbm, task = _task()
    got = fit(task, w, _opts("adam", 2), distributed=True)
    sums = list(gradient_sum._POOL.values())
    assert sums and sums[0].shared and sums[0].cross.Get_size() == w.size // 2
    for name in ("W", "a", "b"):
        assert _close(getattr(rbm, name), getattr(rbm1, name)), name
        mine = getattr(rbm, name).detach().numpy()
        assert all(np.array_equal(mine, other) for other in w.allgather(mine)), name   # every node alike
    _same_state(got.optimizer, ref.optimizer)
    gradient_sum.release(w)

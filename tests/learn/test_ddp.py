"""Data parallelism under MPI (run: mpiexec -n 2 python -m pytest --only-mpi tests/learn).

N ranks sharing a global batch B (shares differing by at most one row) must reproduce one rank with batch B
(same shuffles, same Monte Carlo uniforms per sample; only float summation order differs), and `repeats`
must be dealt and gathered without loss or duplication, with results independent of the rank count."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hpc_rg.config import loads
from hpc_rg.learn import load_model
from hpc_rg.learn.data import ArraySource
from hpc_rg.learn.objectives import RBMTask
from hpc_rg.learn.rbm import RBM
from hpc_rg.learn.stage import run as run_train
from hpc_rg.learn.trainer import Options, fit
from hpc_rg.parallel import World, world

SINGLE = World(None, 0, 1)


def _train_rbm(w, distributed, persistent):
    rng = np.random.default_rng(3)
    # correlated ±1 data: a random sign per row times a noisy pattern
    pattern = np.where(rng.random(64) < 0.5, -1, 1)
    spins = (np.where(rng.random((480, 64)) < 0.8, 1, -1) * pattern * rng.choice([-1, 1], (480, 1))).astype(np.int8)
    torch.manual_seed(0)
    # float64: a CD sample is a threshold u < p that a float32 rounding difference flips now and then (the
    # runs then part by a whole spin); in float64 what remains of the ranks' summation order is ~1e-12
    rbm = RBM(64, 16, "spin").double()
    task = RBMTask(rbm, ArraySource(spins), np.arange(400), np.arange(400, 480), torch.device("cpu"), "spin",
                   cd_k=2, persistent=persistent, l1=1e-3, dtype=torch.float64)
    opts = Options(epochs=3, batch_size=42, dtype=torch.float64,   # 42: uneven shares on 4 ranks
                   optimizer="sgd", lr=0.05, momentum=0.5, l2=1e-3, job_seed=1, key=(0, 0, 0))
    state = fit(task, w, opts, distributed=distributed)
    return rbm, state


@pytest.mark.mpi(min_size=2)
@pytest.mark.parametrize("persistent", [False, True])
def test_ddp_equals_one_rank_with_global_batch(persistent):
    w = world()
    ref, ref_state = _train_rbm(SINGLE, False, persistent)
    ddp, ddp_state = _train_rbm(w, True, persistent)
    for name in ("W", "a", "b"):
        assert torch.allclose(getattr(ddp, name), getattr(ref, name), atol=1e-5), name
    # the weights moved (the comparison is not trivially between two initial states)
    torch.manual_seed(0)
    assert not torch.allclose(RBM(64, 16, "spin").W.double(), ddp.W, atol=1e-3)
    for h_ref, h_ddp in zip(ref_state.history, ddp_state.history):
        assert h_ddp.keys() == h_ref.keys()
        for k in ("test_free_energy", "test_reconstruction", "train_reconstruction"):
            if k not in h_ref:   # persistent CD reports no training reconstruction
                continue
            assert h_ddp[k] == pytest.approx(h_ref[k], rel=1e-4, abs=1e-5), k


@pytest.mark.mpi(min_size=2)
def test_trainings_share_the_gradient_windows_and_keep_their_grads(monkeypatch):
    """Successive data-parallel trainings over the same ranks reuse one set of shared windows (opening them
    costs as much as tens of steps), and a finished model's .grad is its own memory: the next training's
    sums do not show through it."""
    from hpc_rg.learn import gradient_sum
    w = world()
    gradient_sum.release(w)
    opened = []
    real_open = gradient_sum.GradientSum._open_shared
    monkeypatch.setattr(gradient_sum.GradientSum, "_open_shared",
                        lambda self, *a: opened.append(1) or real_open(self, *a))
    first, _ = _train_rbm(w, True, False)
    grads = [p.grad.clone() for p in first.parameters()]
    second, _ = _train_rbm(w, True, True)
    assert len(opened) == 1
    assert not all(torch.equal(p.grad, q.grad) for p, q in zip(first.parameters(), second.parameters()))
    assert all(torch.equal(p.grad, g) for p, g in zip(first.parameters(), grads))
    gradient_sum.release(w)


@pytest.mark.mpi(min_size=2)
def test_repeats_are_dealt_and_gathered(tmp_path, ensemble_factory):
    # groups of 2 repeats ({0, 1}, {2, 3}, {4}) are dealt to the ranks: both ranks train, and each repeat's
    # result must be bit-identical to the serial run's
    from pathlib import Path
    w = world()
    folder = Path(w.bcast(str(tmp_path) if w.is_root else None))
    if w.is_root:  # one writer (and one numba compile)
        ensemble_factory(folder / "crit.h5", 18, [2.269185314213022], 2, 60, 5, 200)
    w.barrier()
    body = (f'[job]\nname = "r"\nseed = 2\nout = "OUT"\n[train.cnn]\nkind = "coarse_cnn"\nensemble = '
            f'"{folder / "crit.h5"}"\nn_train = 200\nn_test = 100\nepochs = 2\nrepeats = 5\ngroup = 2\n')
    cfg = loads(body.replace("OUT", str(folder / "par")), folder / "job.toml")
    run_train(cfg, w, resume=False)
    if w.is_root:
        _, meta = load_model(folder / "par" / "models" / "cnn.pt")
        assert [r["repeat"] for r in meta["repeats"]] == [0, 1, 2, 3, 4]
        serial = loads(body.replace("OUT", str(folder / "ser")), folder / "job.toml")
        run_train(serial, SINGLE, resume=False)
        _, ref = load_model(folder / "ser" / "models" / "cnn.pt")
        acc = [r["metrics"]["test_accuracy"] for r in meta["repeats"]]
        assert acc == [r["metrics"]["test_accuracy"] for r in ref["repeats"]]
        assert all(np.array_equal(a["kernel"], b["kernel"]) for a, b in zip(meta["repeats"], ref["repeats"]))
        assert len(set(np.round(acc, 6))) > 1 or len(set(map(str, (r["kernel"] for r in meta["repeats"])))) == 5
    w.barrier()

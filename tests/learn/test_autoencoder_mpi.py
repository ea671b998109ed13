"""Seed 003's pretraining + fine-tuning and seed 001's weight averaging under DDP (run: mpiexec -n 2 python -m
pytest --only-mpi tests/learn/test_autoencoder_mpi.py): N ranks with local batch B/N reproduce one rank with
batch B (only float summation order differs)."""
from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from hpc_rg.learn.autoencoder import Autoencoder
from hpc_rg.learn.data import ArraySource
from hpc_rg.learn.objectives import RBMTask, autoencoder_tasks
from hpc_rg.learn.rbm import RBM
from hpc_rg.learn.trainer import Options, fit
from hpc_rg.parallel import World, init_torch_distributed, shutdown_torch_distributed, world

SINGLE = World(None, 0, 1)
pytestmark = pytest.mark.mpi(min_size=2)


def _spins():
    rng = np.random.default_rng(3)
    pattern = np.where(rng.random(64) < 0.5, -1, 1)
    return (np.where(rng.random((480, 64)) < 0.8, 1, -1) * pattern * rng.choice([-1, 1], (480, 1))).astype(np.int8)


def _autoencoder(w, distributed):
    torch.manual_seed(0)
    ae = Autoencoder((64, 16, 4), pretraining="rbm", init="truncated_normal", learn_sigma=True)
    spec = SimpleNamespace(pretraining="rbm", pretrain_epochs=2, pretrain_lr=0.01, pretrain_cd_k=1, l1=5e-4,
                           l1_placement="encoder", l1_target="weights+biases", loss="rmse")
    tasks = autoencoder_tasks(ae, spec, ArraySource(_spins()), np.arange(400), np.arange(400, 480),
                              torch.device("cpu"))
    for i, task in enumerate(tasks):
        opts = Options(epochs=2, batch_size=40, optimizer="sgd", lr=0.01, momentum=0.9, job_seed=1, key=(0, 0, i))
        fit(task, w, dataclasses.replace(opts, **getattr(task, "options", {})), distributed=distributed)
    return ae


def _averaged_rbm(w, distributed):
    torch.manual_seed(0)
    rbm = RBM(64, 16, "spin")
    task = RBMTask(rbm, ArraySource(_spins()), np.arange(400), np.arange(400, 480), torch.device("cpu"), "spin",
                   average_last=2)
    fit(task, w, Options(epochs=3, batch_size=40, optimizer="sgd", lr=0.05, momentum=0.5, job_seed=1,
                         key=(0, 0, 0)), distributed=distributed)
    return rbm


@pytest.mark.parametrize("train", [_autoencoder, _averaged_rbm])
def test_ddp_equals_one_rank_with_global_batch(train):
    w = world()
    assert init_torch_distributed()
    try:
        ref = train(SINGLE, False)
        ddp = train(w, True)
    finally:
        shutdown_torch_distributed()
    for (name, a), (_, b) in zip(ref.state_dict().items(), ddp.state_dict().items()):
        # float32 throughout: the ranks' summation order differs, and fine-tuning with momentum 0.9 grows that
        # to 0.2-4.2e-5 at 4 ranks (measured over 4 seeds, before and after per-row noise streams); the exact
        # rank-count invariance is tested in float64 by test_any_ranks.py
        assert torch.allclose(a.float(), b.float(), atol=1e-4), name

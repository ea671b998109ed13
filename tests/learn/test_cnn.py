"""Seed 000's coarse-graining CNN on a small critical ensemble: it separates correlated from scrambled
patches, cannot separate two scrambled sets (leak check), and `frozen` keeps the boundary-average kernel."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hpc_rg.learn.coarse_cnn import boundary_average_kernel
from hpc_rg.learn.data import EnsembleSource, patch_dataset
from hpc_rg.learn.specs import CoarseCNNSpec
from hpc_rg.learn.stage import SINGLE, _model_and_tasks, _options
from hpc_rg.learn.trainer import fit

N_TRAIN, N_TEST = 2000, 1000


def train(ensemble, control=False, frozen=False, repeat=0, epochs=15):
    spec = CoarseCNNSpec(n_train=N_TRAIN, n_test=N_TEST, epochs=epochs, control=control, frozen=frozen)
    src = EnsembleSource(ensemble)
    data = patch_dataset(src, spec.n_train, spec.n_test, spec.block, np.random.SeedSequence(21), control)
    src.close()
    model, tasks = _model_and_tasks("coarse_cnn", spec, data, torch.device("cpu"), 3, 0, repeat)
    state = fit(tasks[0], SINGLE, _options(spec, 3, 0, repeat, 0, "cnn", {}))
    return model, state.history[-1]["test_accuracy"]


def test_cnn_separates_correlated_from_scrambled(critical_ensemble):
    _, acc = train(critical_ensemble)
    assert acc > 0.85


def test_scrambled_vs_scrambled_is_chance(critical_ensemble):
    _, acc = train(critical_ensemble, control=True, epochs=8)
    # binomial error of an accuracy on N_TEST balanced patches at chance: sqrt(0.25 / N_TEST) ~ 0.016
    assert abs(acc - 0.5) < 4 * np.sqrt(0.25 / N_TEST)


def test_frozen_kernel_is_boundary_average_and_learns(critical_ensemble):
    model, acc = train(critical_ensemble, frozen=True, epochs=8)
    k = model.kernel()[0]
    assert torch.equal(k, boundary_average_kernel(3))
    assert float(k[1, 1]) == 0.0 and float(k[0, 1]) == pytest.approx(1 / 8)
    assert acc > 0.75

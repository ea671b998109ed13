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


def negative_block_patches(n: int, seed: int) -> dict:
    """Balanced patches on which every block's boundary average is negative: 0-3 of a block's 8 boundary
    spins are +1 (average -1, -3/4, -1/2 or -1/4), the centres are random. Label 1 when the top-left
    block's average is -1 or -3/4, 0 when it is -1/2 or -1/4: the classes differ only in how negative a
    coarse spin is, which a ReLU on the coarse image maps to 0 in both classes."""
    rng = np.random.default_rng(seed)
    boundary = boundary_average_kernel(3).numpy() > 0
    x = np.empty((n, 9, 9), dtype=np.int8)
    y = np.arange(n) % 2
    for i in range(n):
        for bi in range(3):
            for bj in range(3):
                n_plus = rng.integers(0, 4) if (bi, bj) != (0, 0) else rng.integers(0, 2) + 2 * (1 - y[i])
                ring = -np.ones(8, dtype=np.int8)
                ring[rng.permutation(8)[:n_plus]] = 1
                blk = np.empty((3, 3), dtype=np.int8)
                blk[boundary] = ring
                blk[1, 1] = rng.choice([-1, 1])
                x[i, 3 * bi:3 * bi + 3, 3 * bj:3 * bj + 3] = blk
    return x, y.astype(np.float32)


@pytest.mark.parametrize("head, separates", [("dense_input", True), ("relu_on_coarse", False)])
def test_frozen_model_sees_the_sign_of_negative_blocks(head, separates):
    """The default (paper's Keras-style) MLP keeps the coarse spins' sign: with the frozen boundary-average
    kernel it separates patches that differ only in the value of a negative coarse spin; the earlier
    relu_on_coarse head maps every negative coarse spin to 0 and must sit at chance."""
    x_train, y_train = negative_block_patches(600, 1)
    x_test, y_test = negative_block_patches(400, 2)
    spec = CoarseCNNSpec(n_train=600, n_test=400, epochs=20, frozen=True, head=head)
    data = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    model, tasks = _model_and_tasks("coarse_cnn", spec, data, torch.device("cpu"), 3, 0, 0)
    acc = fit(tasks[0], SINGLE, _options(spec, 3, 0, 0, 0, "cnn", {})).history[-1]["test_accuracy"]
    if separates:
        assert acc > 0.95
    else:   # constant output on identical features: exactly the balanced share
        assert acc == pytest.approx(0.5, abs=1e-9)
    assert model.args()["head"] == head


def test_model_files_without_head_load_as_relu_on_coarse():
    """Files written before the `head` option carry args without it; they were trained with relu_on_coarse."""
    from hpc_rg.learn.modelfile import build
    old = build("coarse_cnn", {"block": 3, "channels": 1, "hidden": 10, "frozen": False})
    assert old.head == "relu_on_coarse" and "mlp.2.weight" in old.state_dict()
    assert build("coarse_cnn", {"block": 3, "channels": 1, "hidden": 10, "frozen": False,
                                "head": "dense_input"}).head == "dense_input"
    assert CoarseCNNSpec().head == "dense_input"

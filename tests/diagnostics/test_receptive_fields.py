"""Receptive fields and locality of hand-built stacks with known local weights (seed 001 App. B)."""
import numpy as np
import pytest
import torch

from diag_helpers import block_indicator, context, save, spec_of
from hpc_rg.learn.dbn import DBN
from hpc_rg.reduce import receptive_fields as rf


def _dbn(L=16, b=2, noise=0.0, seed=0):
    """16×16 -> 8×8 -> 4×4 with 2×2 block-indicator weights per layer (plus optional dense noise)."""
    dbn = DBN([L * L, (L // b) ** 2, (L // b // b) ** 2], units="spin").double()
    g = np.random.default_rng(seed)
    with torch.no_grad():
        for rbm, n in zip(dbn.rbms, (L, L // b)):
            W = block_indicator(n, b) + noise * g.standard_normal((n * n, (n // b) ** 2))
            rbm.W.copy_(torch.as_tensor(W))
    return dbn


def test_block_radii_exact():
    # a b×b block of equal weights: R_g² = 2 (b² − 1) / 12, all mass in one b×b window
    for b in (1, 2, 3, 4):
        f = np.zeros((1, 12, 12))
        f[0, 5:5 + b, 3:3 + b] = -0.7
        assert rf.radius_of_gyration(f)[0] == pytest.approx(np.sqrt(2 * (b * b - 1) / 12), abs=1e-12)
        assert rf.window_fraction(f, b)[0] == pytest.approx(1.0)
        if b > 1:
            assert rf.window_fraction(f, b - 1)[0] < 1.0


def test_periodic_wrap():
    # the same 2×2 block across the torus corner has the same radius (minimum image, circular centre)
    f = np.zeros((2, 10, 10))
    f[0, 4:6, 4:6] = 1
    f[1][np.ix_([9, 0], [9, 0])] = 1
    r = rf.radius_of_gyration(f)
    assert r[0] == pytest.approx(np.sqrt(0.5)) and r[1] == pytest.approx(np.sqrt(0.5))
    assert rf.window_fraction(f, 2) == pytest.approx([1.0, 1.0])


def test_uniform_reference():
    f = np.ones((1, 8, 8))
    assert rf.radius_of_gyration(f)[0] == pytest.approx(rf.uniform_radius((8, 8)))
    assert rf.uniform_radius((8, 8)) == pytest.approx(np.sqrt(2 * (64 - 1) / 12))
    assert rf.window_fraction(f, 2)[0] == pytest.approx(4 / 64)


def test_stack_receptive_fields_local_and_growing(tmp_path, registered):
    save(tmp_path, "dbn", "dbn", _dbn(), (16, 16))
    res = registered["receptive_fields"](spec_of("receptive_fields", model="dbn"), context(tmp_path))
    assert list(res.axes["window"]) == [2, 4]           # blocking factors sqrt(256/64), sqrt(256/16)
    r1, r2 = res.values["radius_layer1"][0], res.values["radius_layer2"][0]
    assert r1 == pytest.approx(np.full(64, np.sqrt(0.5)))          # 2×2 blocks
    assert r2 == pytest.approx(np.full(16, np.sqrt(2.5)))          # r^(2) = W1 W2: 4×4 blocks
    assert res.values["window_fraction_layer1"][0] == pytest.approx(np.ones(64))
    assert res.values["window_fraction_layer2"][0] == pytest.approx(np.ones(16))
    # r^(2) is exactly the 4×4 indicator
    f2 = res.values["fields_layer2"][0][0]
    assert np.array_equal(f2 != 0, np.pad(np.ones((4, 4)), ((0, 12), (0, 12))) != 0)
    v, e = res.values["radius_mean"]
    assert v[1] > v[0] and e[0] == pytest.approx(0.0)


def test_dense_weights_are_not_local(tmp_path, registered):
    # a stack with O(1) dense random weights must come out delocalised: the measure can fail
    save(tmp_path, "noisy", "dbn", _dbn(noise=1.0), (16, 16))
    res = registered["receptive_fields"](spec_of("receptive_fields", model="noisy"), context(tmp_path))
    wf = res.values["window_fraction_mean"][0]
    assert wf[0] < 0.2 and wf[1] < 0.3
    assert res.values["radius_mean"][0][0] > 0.6 * rf.uniform_radius((16, 16))


def test_locality_is_judged_against_shuffled_sites(tmp_path, registered):
    """Local fields beat the same weights on permuted sites by many standard errors; dense random fields do
    not (their best window exceeds b²/N by chance, which the b²/N reference would call local)."""
    save(tmp_path, "dbn", "dbn", _dbn(), (16, 16))
    save(tmp_path, "noisy", "dbn", _dbn(noise=1.0), (16, 16))
    local = registered["receptive_fields"](spec_of("receptive_fields", model="dbn"), context(tmp_path))
    noisy = registered["receptive_fields"](spec_of("receptive_fields", model="noisy"), context(tmp_path))
    wf, _ = local.values["window_fraction_mean"]
    sw, se = local.values["shuffled_window_fraction_mean"]
    assert np.all(wf - sw > 4 * np.maximum(se, 1e-3))
    wf, we = noisy.values["window_fraction_mean"]
    sw, se = noisy.values["shuffled_window_fraction_mean"]
    assert np.all(np.abs(wf - sw) < 4 * np.hypot(we, se))

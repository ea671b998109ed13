"""Receptive fields and locality of hand-built stacks with known local weights (seed 001 App. B)."""
import numpy as np
import pytest
import torch

from model_helpers import block_indicator, context, save, spec_of
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


def test_stack_receptive_fields_local_and_growing(tmp_path, reductions):
    save(tmp_path, "dbn", "dbn", _dbn(), (16, 16))
    res = reductions["receptive_fields"](spec_of("receptive_fields", model="dbn"), context(tmp_path))
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


def test_dense_weights_are_not_local(tmp_path, reductions):
    # a stack with O(1) dense random weights must come out delocalised: the measure can fail
    save(tmp_path, "noisy", "dbn", _dbn(noise=1.0), (16, 16))
    res = reductions["receptive_fields"](spec_of("receptive_fields", model="noisy"), context(tmp_path))
    wf = res.values["window_fraction_mean"][0]
    assert wf[0] < 0.2 and wf[1] < 0.3
    assert res.values["radius_mean"][0][0] > 0.6 * rf.uniform_radius((16, 16))


def test_locality_is_judged_against_shuffled_sites(tmp_path, reductions):
    """Local fields beat the same weights on permuted sites by many standard errors; dense random fields do
    not (their best window exceeds b²/N by chance, which the b²/N reference would call local)."""
    save(tmp_path, "dbn", "dbn", _dbn(), (16, 16))
    save(tmp_path, "noisy", "dbn", _dbn(noise=1.0), (16, 16))
    local = reductions["receptive_fields"](spec_of("receptive_fields", model="dbn"), context(tmp_path))
    noisy = reductions["receptive_fields"](spec_of("receptive_fields", model="noisy"), context(tmp_path))
    wf, _ = local.values["window_fraction_mean"]
    sw, se = local.values["shuffled_window_fraction_mean"]
    assert np.all(wf - sw > 4 * np.maximum(se, 1e-3))
    wf, we = noisy.values["window_fraction_mean"]
    sw, se = noisy.values["shuffled_window_fraction_mean"]
    assert np.all(np.abs(wf - sw) < 4 * np.hypot(we, se))


# ---------------------------------------------------------------- blob size: peak blob and autocorrelation
def test_peak_blob_area_of_planted_blocks_is_exact():
    """A b×b block at the maximum, a weaker separate block and a diffuse background below half the maximum:
    the blob is the b² sites of the block (R_g, dominated by the background, is far larger)."""
    g = np.random.default_rng(3)
    for b in (1, 2, 3, 5):
        f = 0.3 * g.uniform(-1, 1, (1, 20, 20))        # |background| < max/2
        f[0, 4:4 + b, 6:6 + b] = -1.0                  # the peak block (sign does not matter)
        f[0, 14:16, 14:17] = 0.8                       # a second, separate blob above max/2: not counted
        assert rf.peak_blob_area(f)[0] == b * b
        assert rf.radius_of_gyration(f)[0] > 3 * np.sqrt(2 * (b * b - 1) / 12)
    # the block across the periodic corner is one blob; an L-shaped blob counts every site
    f = np.zeros((2, 10, 10))
    f[0][np.ix_([8, 9, 0], [9, 0])] = 1.0
    f[1, 2, 2:7] = 1.0
    f[1, 3:5, 2] = 0.6
    f[1, 5, 2] = 0.4                                   # below max/2: cut off
    assert list(rf.peak_blob_area(f)) == [6, 7]


def test_autocorrelation_half_width_of_planted_blocks_is_exact():
    """A b_x × b_y box of equal weights covering the fraction f of N sites has fluctuation autocorrelation
    C(d) = ((1 − d/b) − f)/(1 − f) along an axis of side b: averaged over the axes it falls to 1/2 at
    d = (1 − f)/(1/b_x + 1/b_y), i.e. b(1 − b²/N)/2 for a square; a constant offset changes nothing (the
    mean is removed); a constant field has no structure (0)."""
    for b in (1, 2, 4, 6):
        f = np.zeros((1, 24, 24))
        f[0, 3:3 + b, 10:10 + b] = 2.5
        want = b * (1 - b * b / 576) / 2
        assert rf.autocorrelation_half_width(f)[0] == pytest.approx(want, abs=1e-12)
        assert rf.autocorrelation_half_width(f + 7.0)[0] == pytest.approx(want, abs=1e-12)
    f = np.zeros((1, 24, 24))
    f[0, 0:4, 0:8] = 1.0
    assert rf.autocorrelation_half_width(f)[0] == pytest.approx((1 - 32 / 576) / (1 / 4 + 1 / 8), abs=1e-12)
    assert rf.autocorrelation_half_width(np.ones((1, 12, 12)))[0] == 0.0
    # white noise: C(1) ~ ±1/sqrt(N), so the half-width is ~1/2, with or without an offset
    noise = np.random.default_rng(0).standard_normal((200, 32, 32))
    assert rf.autocorrelation_half_width(noise).mean() == pytest.approx(0.5, abs=0.02)
    assert rf.autocorrelation_half_width(noise + 3.0).mean() == pytest.approx(0.5, abs=0.02)
    # a plane wave along one axis: C = (cos(2πd/L) + 1)/2 averaged with the flat axis, 1/2 at d = L/4
    wave = np.cos(2 * np.pi * np.arange(32) / 32)[None, :, None] * np.ones((1, 32, 32))
    assert rf.autocorrelation_half_width(wave)[0] == pytest.approx(8.0, abs=1e-12)


def test_blob_measures_grow_with_layer_where_radius_does_not(tmp_path, reductions):
    """The block-indicator stack: blob area b² = 4 → 16 and half-width b(1 − b²/N)/2 per layer, and the
    shuffled-site null of both is the single-site value (area 1, half-width ~1/2) beside them in the result."""
    save(tmp_path, "dbn", "dbn", _dbn(), (16, 16))
    res = reductions["receptive_fields"](spec_of("receptive_fields", model="dbn"), context(tmp_path))
    assert res.values["blob_area_layer1"][0] == pytest.approx(np.full(64, 4.0))
    assert res.values["blob_area_layer2"][0] == pytest.approx(np.full(16, 16.0))
    assert res.values["half_width_layer1"][0] == pytest.approx(np.full(64, 2 * (1 - 4 / 256) / 2))
    assert res.values["half_width_layer2"][0] == pytest.approx(np.full(16, 4 * (1 - 16 / 256) / 2))
    v, e = res.values["blob_area_mean"]
    assert list(v) == [4.0, 16.0] and list(e) == [0.0, 0.0]
    assert list(res.values["half_width_median"][0]) == pytest.approx([0.984375, 1.875])
    sv, _ = res.values["shuffled_blob_area_mean"]
    assert np.all(sv < v)
    sh, _ = res.values["shuffled_half_width_mean"]
    assert np.all(sh < 0.75)

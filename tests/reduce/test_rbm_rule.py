"""The b×b rule from an RBM's first-layer fields (`rbm_rule.rbm_block_kernel`): on planted weights with a known
local pattern the kernel is that pattern (normalised), delocalised units are left out, and too few local
units are refused."""
import numpy as np
import pytest

from hpc_rg.reduce.rbm_rule import NotLocal, rbm_block_kernel


def planted(pattern: np.ndarray, L: int, n_local: int, n_flat: int, noise: float, seed: int) -> np.ndarray:
    """(L², n_local + n_flat) weights: n_local units carry ±a·pattern at random places (wrapping the periodic
    boundary included) over iid noise; n_flat units are iid noise of order one (no local structure)."""
    rng = np.random.default_rng(seed)
    b = pattern.shape[0]
    fields = noise * rng.standard_normal((n_local + n_flat, L, L))
    for j in range(n_local):
        y, x = rng.integers(L, size=2)
        if j == 0:
            y, x = L - 1, L - 1                  # a blob split over the four corners
        amp = rng.choice([-1, 1]) * rng.uniform(0.5, 2.0)
        fields[j][np.ix_((y + np.arange(b)) % L, (x + np.arange(b)) % L)] += amp * pattern
    fields[n_local:] = rng.standard_normal((n_flat, L, L))
    return fields.reshape(len(fields), -1).T


@pytest.mark.parametrize("b", [2, 3])
def test_planted_blob_gives_its_pattern(b):
    rng = np.random.default_rng(b)
    pattern = rng.uniform(0.2, 1.0, (b, b)) * np.where(rng.random((b, b)) < 0.2, -1, 1)
    pattern[0, 0] = 1.0                           # a window sum > 0 (the sign convention)
    w = planted(pattern, 24, 12, 5, 1e-3, seed=10 + b)
    kernel, info = rbm_block_kernel(w, (24, 24), b, min_share=0.3, min_units=4)
    assert kernel.shape == (b, b)
    np.testing.assert_allclose(kernel, pattern / np.abs(pattern).sum(), atol=2e-3)
    assert info["n_units"] == 17 and info["n_qualified"] == 12       # the flat units are left out
    assert 0.5 < info["mean_share"] <= 1 and info["mean_share_all"] < info["mean_share"]
    assert info["chance_share"] == b * b / 576 and info["spread"] < 0.01


def test_rectangular_lattice_and_sign_convention():
    """Fields on a 12 × 20 lattice (row-major sites); all-negative blobs give the positive pattern."""
    pattern = np.array([[1.0, 0.5], [0.5, 1.0]])
    fields = np.zeros((6, 12, 20))
    for j in range(6):
        fields[j, j:j + 2, 3 * j:3 * j + 2] = -pattern
    kernel, info = rbm_block_kernel(fields.reshape(6, -1).T, (12, 20), 2, 0.5, 6)
    np.testing.assert_allclose(kernel, pattern / 3.0)
    assert info["n_qualified"] == 6 and info["mean_share"] == 1.0


def test_delocalised_fields_are_refused():
    w = planted(np.ones((2, 2)), 24, 3, 20, 1e-3, seed=4)
    with pytest.raises(NotLocal, match="only 3 of 23 hidden units"):
        rbm_block_kernel(w, (24, 24), 2, min_share=0.3, min_units=8)
    k, info = rbm_block_kernel(w, (24, 24), 2, min_share=0.3, min_units=3)
    np.testing.assert_allclose(k, 0.25, atol=1e-3)
    with pytest.raises(ValueError, match="do not fit"):
        rbm_block_kernel(w, (20, 20), 2, 0.3, 1)


def test_cancelling_windows_are_refused():
    """Two units with mirror patterns of zero window sum: no common pattern."""
    fields = np.zeros((2, 8, 8))
    fields[0, 2:4, 2:4] = [[1, -1], [1, -1]]
    fields[1, 5:7, 1:3] = [[-1, 1], [-1, 1]]
    with pytest.raises(NotLocal, match="cancel"):
        rbm_block_kernel(fields.reshape(2, -1).T, (8, 8), 2, 0.5, 1)

"""Datasets: lazy ensemble reads, rank shards, and seed 000's scrambled patches (same single-block statistics,
no correlations between neighbouring blocks)."""
from __future__ import annotations

import numpy as np
from scipy import stats

from hpc_rg.io.ensemble import open_ensemble
from hpc_rg.learn.data import (EnsembleSource, correlated_patches, cut, local_batches, patch_dataset,
                               scrambled_patches, split)


def block_sums(patches: np.ndarray, b: int) -> np.ndarray:
    """(n, b*k, b*k) spins -> (n, k, k) sums over b×b blocks."""
    n, ly, lx = patches.shape
    return patches.reshape(n, ly // b, b, lx // b, b).sum((2, 4), dtype=np.int64)


def test_ensemble_source_reads_any_order(ladder_ensemble):
    src = EnsembleSource(ladder_ensemble, temperatures=(4.0, 1.5))
    with open_ensemble(ladder_ensemble) as e:
        full = e.spins[()]
    flat = full[[2, 0]].reshape(-1, *full.shape[3:])
    rng = np.random.default_rng(0)
    idx = rng.integers(src.n, size=150)              # unsorted, with repeats
    assert np.array_equal(src.read(idx), flat[idx])
    assert np.array_equal(src.read(np.array([5, 3, 199, 200])), flat[[5, 3, 199, 200]])
    assert list(src.labels(np.array([0, 199, 200, 399]))) == [0, 0, 1, 1]
    assert src.temperatures == (4.0, 1.5)
    limited = EnsembleSource(ladder_ensemble, samples=30)
    assert limited.n == 90 and np.array_equal(limited.read(np.array([30])), full[1, 0, 0][None])
    src.close()
    limited.close()


def test_shards_cover_each_global_batch_exactly_once():
    train, _ = split(103, 0.0, np.random.SeedSequence(1))
    seed = np.random.SeedSequence(2)
    one = list(local_batches(train, 20, 1, 0, seed))
    two = [list(local_batches(train, 20, 2, r, seed)) for r in range(2)]
    three = [list(local_batches(train, 21, 3, r, seed)) for r in range(3)]
    assert len(one) == 5 and all(len(b) == 20 for b in one)      # incomplete last batch dropped
    for k, batch in enumerate(one):
        assert np.array_equal(np.concatenate([two[0][k], two[1][k]]), batch)
    seen = np.concatenate([b for rank in three for b in rank])
    assert len(seen) == len(np.unique(seen)) == 84


def test_cut_wraps_periodically():
    lat = np.arange(25).reshape(1, 5, 5)
    w = cut(lat, np.array([4]), np.array([3]), 3)[0]
    assert w[0].tolist() == [23, 24, 20] and w[1].tolist() == [3, 4, 0]


def _adjacent_pairs(patches, b):
    """Block sums of horizontally and vertically neighbouring b×b blocks, pooled."""
    s = block_sums(patches, b)                      # (n, b, b) block sums
    left, right = s[:, :, :-1].ravel(), s[:, :, 1:].ravel()
    up, down = s[:, :-1, :].ravel(), s[:, 1:, :].ravel()
    return np.r_[left, up], np.r_[right, down]


def _g_test(x, y):
    """G statistic of independence (2 N MI in nats) and its chi-square p-value."""
    table = np.array([[np.sum((x == a) & (y == c)) for c in np.unique(y)] for a in np.unique(x)], float)
    table = table[table.sum(1) > 0][:, table.sum(0) > 0]
    g, p, dof, _ = stats.chi2_contingency(table, lambda_="log-likelihood")
    return g, p


def test_scrambled_patches_keep_block_statistics_and_lose_correlations(critical_ensemble):
    src = EnsembleSource(critical_ensemble)
    rng = np.random.default_rng(4)
    b, n = 3, 2000
    corr = correlated_patches(src, n, b, rng)
    scr = scrambled_patches(src, n, b, rng)
    # single-block statistics: the distribution of one block's sum is the same in both sets
    # (blocks of different patches are independent draws; compare one block position per patch)
    a = block_sums(corr, b)[:, 1, 1]
    c = block_sums(scr, b)[:, 1, 1]
    values = np.union1d(a, c)
    table = np.array([[np.sum(a == v) for v in values], [np.sum(c == v) for v in values]])
    table = table[:, table.sum(0) > 0]
    assert stats.chi2_contingency(table)[1] > 1e-4
    # neighbouring blocks: strongly dependent in correlated patches, independent in scrambled ones
    # (G-test of independence on block sums; the threshold is the 1e-4 tail of the null distribution)
    g_corr, p_corr = _g_test(*_adjacent_pairs(corr, b))
    g_scr, p_scr = _g_test(*_adjacent_pairs(scr, b))
    assert p_corr < 1e-12, g_corr
    assert p_scr > 1e-4, (g_scr, p_scr)
    x, y = _adjacent_pairs(scr, b)
    assert abs(np.corrcoef(x, y)[0, 1]) < 4 / np.sqrt(len(x))
    src.close()


def test_patch_dataset_balanced_and_deterministic(critical_ensemble):
    src = EnsembleSource(critical_ensemble)
    d1 = patch_dataset(src, 300, 100, 3, np.random.SeedSequence(5))
    d2 = patch_dataset(src, 300, 100, 3, np.random.SeedSequence(5))
    assert d1["x_train"].shape == (300, 9, 9) and d1["x_test"].shape == (100, 9, 9)
    assert d1["y_train"].sum() == 150 and d1["y_test"].sum() == 50
    for k in d1:
        assert np.array_equal(d1[k], d2[k])
    src.close()

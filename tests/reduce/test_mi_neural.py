"""Neural MI lower bounds (`hpc_rg.reduce.mi_neural`) against exact MI: correlated Gaussians (−½ log(1 − ρ²)
per dimension), independent blocks (0), and neighbouring 3×3 blocks of critical 2D Ising against the
bias-corrected histogram MI of the same pairs; plus the bookkeeping (pair extraction, determinism, seeds)."""
import math

import numpy as np
import pytest
import torch

from hpc_rg.reduce import mi_neural as mn
from hpc_rg.reduce import mutual_info as mi
from hpc_rg.reduce import seeding
from ising_data import T_C, wolff_samples


# the stated gap between the InfoNCE bound and the histogram MI of neighbouring 3×3 critical blocks (bits)
GAP = 0.15


def _gaussians(n, d, rho, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 1, d))
    return x, rho * x + math.sqrt(1 - rho * rho) * rng.standard_normal((n, 1, d))


@pytest.mark.parametrize("estimator", ["infonce", "nwj"])
def test_correlated_gaussians(estimator):
    torch.set_num_threads(1)
    rho, d = 0.8, 2
    x, y = _gaussians(8000, d, rho, seed=0)
    exact = mn.gaussian_mi_bits(rho, d)     # 1.474 bits
    r = mn.estimate(x, y, mn.BoundOptions(estimator=estimator, steps=1000, batch=128), seeds=2, job_seed=1)
    err = math.hypot(r["stderr_bits"], r["spread_bits"])
    # a lower bound: not above the truth beyond its error; below it by at most the critic's approximation
    # bias, measured at 0.06-0.09 bits at these settings (1000-3000 steps, 2000 held-out pairs, σ ≈ 0.04)
    assert r["bits"] < exact + 3 * err, (r["bits"], exact, err)
    assert r["bits"] > exact - 0.10 - 3 * err, (r["bits"], exact, err)
    assert r["stderr_bits"] < 0.06 and r["spread_bits"] < 0.05


def test_independent_blocks_vanish():
    torch.set_num_threads(1)
    rng = np.random.default_rng(3)
    s = np.where(rng.random((1500, 12, 12)) < 0.5, -1, 1).astype(np.int8)
    x, y = mn.neighbour_block_pairs(s, 3)
    for estimator in ("infonce", "nwj"):
        r = mn.estimate(x, y, mn.BoundOptions(estimator=estimator, steps=400, batch=128), seeds=2, job_seed=2)
        err = math.hypot(r["stderr_bits"], r["spread_bits"])
        assert abs(r["bits"]) < 3 * err + 0.01, (estimator, r)


def test_pairs_match_histogram_pairs():
    """The neural estimator sees exactly the (a, b) pairs that `mutual_info.neighbour_pairs` counts."""
    rng = np.random.default_rng(4)
    s = np.where(rng.random((3, 12, 12)) < 0.5, -1, 1).astype(np.int8)
    x, y = mn.neighbour_block_pairs(s, 3)
    a, b = mi.neighbour_pairs(mi.block_codes(s, 3))
    w = np.int64(1) << np.arange(9)
    xa, yb = ((x > 0).astype(np.int64) @ w), ((y > 0).astype(np.int64) @ w)
    ours = sorted(zip(xa.ravel().tolist(), yb.ravel().tolist()))
    theirs = sorted(zip(a.tolist(), b.tolist()))
    assert ours == theirs
    with pytest.raises(ValueError):
        mn.neighbour_block_pairs(s[:, :10, :10], 3)


def test_environment_pairs_match_shell_codes():
    rng = np.random.default_rng(5)
    s = np.where(rng.random((2, 12, 12)) < 0.5, -1, 1).astype(np.int8)
    v, e = mn.block_environment_pairs(s, 2, buffer=0, shell=1)
    blk, env = mi.shell_codes(s, 2, 1)
    assert v.shape == (2, 36, 4) and e.shape == (2, 36, 12)
    # same block contents at the same tiles; the environment is the same set of sites (bit order aside)
    vb = (v > 0).astype(np.int64)
    assert np.array_equal(vb.sum(-1).ravel(), np.array([bin(c).count("1") for c in blk]))
    assert np.array_equal((e > 0).sum(-1).ravel(), np.array([bin(c).count("1") for c in env]))
    v2, e2 = mn.block_environment_pairs(s, 2, buffer=1, shell=2)
    assert e2.shape[-1] == (2 + 6) ** 2 - (2 + 2) ** 2


def test_deterministic_and_rank_independent():
    """Same seeds, same numbers; every seed is a function of (job seed, key, seed index) alone, so a rank
    that is dealt seed s alone computes what one rank computes for it (the MPI test runs the deal)."""
    torch.set_num_threads(1)
    x, y = _gaussians(600, 1, 0.6, seed=7)
    opts = mn.BoundOptions(steps=60, batch=32)
    a = mn.estimate(x, y, opts, seeds=3, job_seed=5, key=(1,))
    b = mn.estimate(x, y, opts, seeds=3, job_seed=5, key=(1,))
    assert a["bits"] == b["bits"] and a["spread_bits"] == b["spread_bits"]

    per = [mn.fit_bound(x, y, *mn.split_configurations(600, 0.25, seeding.sequence(5, 1, 1 << 20)),
                        opts, seeding.sequence(5, 1, s))["bits"] for s in range(3)]
    assert np.allclose([p["bits"] for p in a["per_seed"]], per, rtol=0, atol=0)


def test_critical_ising_blocks_below_histogram():
    """Two neighbouring 3×3 blocks of critical 2D Ising (L = 36, 1600 configurations): the InfoNCE bound on
    held-out configurations approaches the bias-corrected histogram MI of the same pairs from below."""
    torch.set_num_threads(1)
    s = np.concatenate([wolff_samples((36, 36), T_C, 800, 1.0, seed=s0) for s0 in (11, 12)])
    codes = mi.block_codes(s, 3)
    h = mi.JointHistogram()
    for blk, part in enumerate(np.array_split(np.arange(len(s)), 16)):
        h.add(*mi.neighbour_pairs(codes[part]), blk)
    # Grassberger's correction: at 2^18 joint states and ~5e5 pairs Miller-Madow still sits ~0.03 bits higher
    # (both fall as the sample grows: measured 0.98 / 0.90 / 0.84 / 0.80 (MM) at 72k / 144k / 288k / 576k pairs)
    hist, hist_err = mi.mi_with_error(h, "grassberger", 100, seed=1)
    x, y = mn.neighbour_block_pairs(s, 3)
    r = mn.estimate(x, y, mn.BoundOptions(steps=1000, batch=256), seeds=2, job_seed=3)
    print(f"neural {r['bits']:.4f} ± {r['stderr_bits']:.4f} (spread {r['spread_bits']:.4f}), histogram {hist:.4f} ± {hist_err:.4f}")
    err = math.hypot(hist_err, r["stderr_bits"], r["spread_bits"])
    # from below (up to the errors) and within the stated gap GAP: measured at L = 36 with 2000 configurations,
    # InfoNCE gives 0.68-0.69 bits with every critic tried (separable 16/64, 32/128, concat) against the
    # histogram's 0.776 (Grassberger), whose own value still falls with the sample size: most of the gap is
    # the histogram's residual upward bias (the 0.70 bits at 81×81 on a larger ensemble)
    assert r["bits"] < hist + 3 * err, (r["bits"], hist, err)
    assert r["bits"] > hist - GAP - 3 * err, (r["bits"], hist, err)





@pytest.mark.mpi(min_size=2)
def test_seeds_dealt_over_ranks_give_the_serial_numbers():
    """Run: mpiexec -n 2 (or 4) python -m pytest --only-mpi tests/reduce/test_mi_neural.py"""
    from hpc_rg.parallel import World, world
    torch.set_num_threads(1)
    x, y = _gaussians(600, 1, 0.6, seed=7)
    opts = mn.BoundOptions(steps=60, batch=32)
    par = mn.estimate(x, y, opts, seeds=3, job_seed=5, key=(1,), world=world())
    ser = mn.estimate(x, y, opts, seeds=3, job_seed=5, key=(1,), world=World(None, 0, 1))
    assert [p["bits"] for p in par["per_seed"]] == [p["bits"] for p in ser["per_seed"]]
    assert par["bits"] == ser["bits"] and par["spread_bits"] == ser["spread_bits"]

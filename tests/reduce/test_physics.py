"""Reductions against exact results: 1D chain correlator and decimation flow, two-spin MI, independent-block
MI, and 2D Ising at T_c (MCRG exponents, Δ_s from ⟨m²⟩ across L, Binder cumulant, Binder crossing)."""
import numpy as np
import pytest

from hpc_rg.io.ensemble import open_ensemble
from hpc_rg.reduce import correlators as corr, mutual_info as mi, observables as obs, rg, scaling
from hpc_rg.reduce.blocks import block_means
from ising_data import T_C


def test_chain_correlator_exact(chain_64, serial_world):
    with open_ensemble(chain_64) as ens:
        lat = corr.lattice_from_attrs(ens.attrs, ens.lattice_shape)
        for t, T in enumerate(ens.temperatures):
            c = corr.correlators(corr.correlator_blocks(ens, t, serial_world, lat, n_blocks=20))
            r = np.arange(33)
            exact = corr.exact_chain_correlation(64, 1.0 / T, r)
            v, e = c["G_s"]
            # 33 distances: 4σ Bonferroni-aware (≈ 4.1σ for 33 tests at 5e-5 each side)
            assert np.all(np.abs(v[1:] - exact[1:]) < 4.5 * e[1:] + 1e-12), (T, v - exact, e)
            # correlation length from the fit window: ξ = −1/ln tanh K on the infinite chain
            xi_fit = -1.0 / np.polyfit(r[1:6], np.log(v[1:6]), 1)[0]
            assert abs(xi_fit / (-1.0 / np.log(np.tanh(1.0 / T))) - 1) < 0.05


def test_decimation_flow_exact(chain_64, serial_world):
    with open_ensemble(chain_64) as ens:
        for t, T in enumerate(ens.temperatures):
            bm, _ = block_means(ens, t, lambda x, w: rg.decimation_primaries(x, 3), serial_world, n_blocks=20)
            from hpc_rg.reduce.stats import jackknife_blocks
            K, Ke = jackknife_blocks(lambda m: np.array([rg.chain_coupling(c, 64 // 2 ** n) for n, c in enumerate(m)]), bm)
            exact = rg.exact_decimation_flow(1.0 / T, 3)
            assert np.all(np.abs(K - exact) < 4 * Ke), (K, exact, Ke)


def test_two_spin_mi_exact(chain_64):
    with open_ensemble(chain_64) as ens:
        T = ens.temperatures[0]
        x = ens.spins[0].reshape(-1, 64)
        h = mi.JointHistogram()
        for blk in range(16):
            part = x[blk::16]
            h.add((part > 0).ravel().astype(np.int64), (np.roll(part, -1, axis=1) > 0).ravel().astype(np.int64), blk)
        v, e = mi.mi_with_error(h, "miller_madow", n_boot=200, seed=1)
        exact = mi.exact_pair_mi(float(corr.exact_chain_correlation(64, 1.0 / T, np.array([1]))[0]))
        assert abs(v - exact) < 4 * e, (v, exact, e)


def test_independent_blocks_mi_vanishes():
    rng = np.random.default_rng(0)
    s = np.where(rng.random((400, 16, 16)) < 0.5, -1, 1).astype(np.int8)
    for method in ("miller_madow", "grassberger"):
        h = mi.JointHistogram()
        for blk in range(16):
            a, b = mi.neighbour_pairs(mi.block_codes(s[blk::16], 2))
            h.add(a, b, blk)
        v, e = mi.mi_with_error(h, method, n_boot=100, seed=2)
        plug = mi.mutual_information(*[h.matrix()[0], h.matrix()[1].sum(0)], method="plugin")
        assert abs(v) < 4 * e + 0.002, (method, v, e)
        assert plug > v  # the plug-in bias is positive and the correction removes most of it


def test_kernel_levels():
    assert mi.kernel_levels("average", 3).max() == 9
    maj = mi.kernel_levels("majority", 3)
    states = mi.all_block_states(3)
    assert np.array_equal(maj, (states.sum(axis=(1, 2)) > 0).astype(int))
    w = np.ones((3, 3))
    assert np.unique(mi.kernel_levels(w, 3)).size == 10


def test_block_transforms():
    rng = np.random.default_rng(1)
    s = np.where(rng.random((3, 8, 8)) < 0.5, -1, 1).astype(np.int8)
    maj = rg.block(s, 2, "majority", np.random.default_rng(0))
    tot = s.reshape(3, 4, 2, 4, 2).sum(axis=(2, 4))
    assert np.all((maj == np.sign(tot)) | (tot == 0))
    assert np.array_equal(rg.block(s, 2, "decimation"), s[:, ::2, ::2])
    assert np.allclose(rg.block(s, 2, "average"), tot / 4)
    assert np.array_equal(rg.block(s, 2, np.ones((2, 2)), np.random.default_rng(0)), maj)
    assert [l.shape[-1] for l in rg.block_levels(s, 2, 2)] == [8, 4, 2]


def test_mcrg_critical(critical_64, serial_world):
    """L = 64 at T_c, 2×2 majority: y_h at level pair 1 → 2 within 4σ + 1% of 15/8, y_t within 4σ + 5% of 1
    (finite-size and truncation corrections at these sizes are a few % for y_t, < 0.5% for y_h)."""
    with open_ensemble(critical_64) as ens:
        fn = lambda x, w: rg.mcrg_primaries(rg.block_levels(x, 2, 3, "majority", seed=w[1] * 7919 + w[2]))
        bm, _ = block_means(ens, 0, fn, serial_world, n_blocks=20, batch=50)
    y, e = rg.mcrg_exponents(bm, 2)
    assert abs(y[1, 1] - 15 / 8) < 4 * e[1, 1] + 0.01875, (y, e)
    assert abs(y[1, 0] - 1.0) < 4 * e[1, 0] + 0.05, (y, e)


def test_delta_s_from_m2_and_binder(critical_32, critical_64, serial_world):
    """⟨m²⟩ ∝ L^{-1/4} (Δ_s = 1/8, corrections O(L^{-7/4}) negligible here) and U(T_c) ≈ 0.61069."""
    rows = []
    for path in (critical_32, critical_64):
        with open_ensemble(path) as ens:
            d = obs.observables(ens.energy[0], ens.magnetization[0], 32 * 32 if ens.lattice_shape[0] == 32 else 64 * 64,
                                T_C, 20)
            rows.append((ens.lattice_shape[0], *d["m2"]))
            U, Ue = d["binder"]
            assert abs(U - 0.61069) < 4 * Ue + 0.005, (U, Ue)
    L, m2, m2e = map(np.array, zip(*rows))
    f = scaling.fss_fit(L, m2, m2e)
    assert abs(f["delta"] - 0.125) < 4 * f["delta_err"], f


def test_binder_crossing(ladders):
    data = []
    for p in ladders:
        with open_ensemble(p) as ens:
            data.append({"temperatures": ens.temperatures, "e": ens.energy, "m": ens.magnetization,
                         "n_sites": int(np.prod(ens.lattice_shape))})
    grid = np.linspace(2.15, 2.39, 121)
    tc, te, uc, ue = obs.binder_crossing(data[0], data[1], grid, n_blocks=8)
    # 8/16 crossing sits within ~1% of T_c (corrections to scaling); error bar from the jackknife
    assert abs(tc - T_C) < 4 * te + 0.02 * T_C, (tc, te)
    assert 0.0 < te < 0.05


def test_energy_matches_kaufman(critical_32, critical_64):
    """Observables' ⟨e⟩ at T_c (and so the Wolff test data) against Kaufman's exact finite-torus energy,
    with both error estimates (block jackknife, Γ-method) agreeing."""
    pytest.importorskip("mpmath")
    from ising_data import kaufman_energy
    from hpc_rg.reduce.stats import mean_error
    for path in (critical_32, critical_64):
        with open_ensemble(path) as ens:
            L = ens.lattice_shape[0]
            v, e = obs.observables(ens.energy[0], ens.magnetization[0], L * L, T_C, 20)["energy"]
            _, e_gamma, _ = mean_error(ens.energy[0], axis_chains=True)
            exact = kaufman_energy(L, T_C)
            assert abs(v - exact) < 4 * e, (v, exact, e)
            assert 0.6 < e / e_gamma < 1.6


def test_two_spin_mi_2d_kaufman(critical_32):
    """2D torus at T_c: MI of neighbouring spins against ⟨s_0 s_1⟩ = −e(L)/2 from Kaufman's exact energy."""
    pytest.importorskip("mpmath")
    from ising_data import kaufman_energy
    with open_ensemble(critical_32) as ens:
        h = mi.JointHistogram()
        for c in range(ens.n_chains):
            for blk in range(4):
                x = (ens.spins[0, c, blk * 250:(blk + 1) * 250] > 0).astype(np.int64)
                h.add(x.ravel(), np.roll(x, -1, axis=2).ravel(), 4 * c + blk)
        v, e = mi.mi_with_error(h, "miller_madow", n_boot=200, seed=5)
    exact = mi.exact_pair_mi(-kaufman_energy(32, T_C) / 2)
    assert abs(v - exact) < 4 * e, (v, exact, e)


def test_reweighting(ladders):
    """Reweighting to the sampling temperature is the identity; reweighting from the neighbour ladder point
    agrees with the direct estimate within 4σ (jackknife errors of both, added in quadrature)."""
    with open_ensemble(ladders[1]) as ens:
        T, e, m, n = ens.temperatures, ens.energy, ens.magnetization, int(np.prod(ens.lattice_shape))
    same = obs.reweight(e[2], m[2], n, T[2], np.array([T[2]]))[0]
    direct = obs.observables(e[2], m[2], n, T[2], 16)
    assert np.allclose(same, [direct[k][0] for k in obs.NAMES])
    moved = obs.reweight(e[1], m[1], n, T[1], np.array([T[2]]))[0]
    source = obs.observables(e[1], m[1], n, T[1], 16)
    for q in ("energy", "binder"):
        i = obs.NAMES.index(q)
        # the reweighted estimate's error is at least the source's; both data sets are independent
        sigma = np.hypot(direct[q][1], source[q][1])
        assert abs(moved[i] - direct[q][0]) < 4 * sigma, (q, moved[i], direct[q])


def test_energy_density_coupling_table_path():
    """ε_i via a coupling table J(d) (the long-range path, FFT convolution) equals the nearest-neighbour rolls
    when the table holds the four nearest neighbours."""
    from hpc_rg.lattice.nearest import NearestNeighbour
    rng = np.random.default_rng(2)
    s = np.where(rng.random((3, 12, 10)) < 0.5, -1, 1).astype(np.int8)
    lat = NearestNeighbour((12, 10), J=0.7)
    table = np.zeros((12, 10))
    table[1, 0] = table[-1, 0] = table[0, 1] = table[0, -1] = 0.7
    a = corr.energy_density(s, lat)
    b = corr.energy_density(s, lat, np.fft.rfftn(table))
    assert np.allclose(a, b)
    assert np.allclose(a.sum(axis=(1, 2)) / 2, -lat.energy_per_site(s) * 120)

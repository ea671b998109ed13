"""Validation of the reductions on 2D Ising at T_c with L up to 256 (too slow for CI): prints one JSON line
per check with the estimate, its error and the exact value.

  Δ_s, Δ_ε  plain and chord fits at each L (window [2, L/4]); finite-size estimators across L
            (⟨m²⟩ ∝ L^{-2Δ_s}; mean G over r/L ∈ [1/8, 1/4] ∝ L^{-2Δ})
  y_t, y_h  MCRG, 2×2 majority, every level pair
  MI        3×3 neighbouring blocks and their majority / average images (seed 000 Table 2), two neighbouring
            spins against the exact ⟨s_0 s_1⟩ = −e_Kaufman(L)/2, independent blocks ≈ 0
  1D        correlation length of the periodic chain and the decimation flow against exact results

Data: Wolff samples from tests/reduce/ising_data.py (cached in --cache).
usage: python benchmarks/reduce_validation.py [--sizes 32 64 128 256] [--samples 8000] [--cache DIR]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "reduce"))
from ising_data import T_C, kaufman_energy, make_chain_ensemble, make_ensemble  # noqa: E402

from hpc_rg.io.ensemble import open_ensemble  # noqa: E402
from hpc_rg.parallel import world  # noqa: E402
from hpc_rg.reduce import correlators as corr, mutual_info as mi, rg, scaling  # noqa: E402
from hpc_rg.reduce.blocks import block_means, iter_segment, segments  # noqa: E402
from hpc_rg.reduce.stats import jackknife_blocks, jackknife_replicas  # noqa: E402


def emit(**row):
    print(json.dumps({k: (round(v, 5) if isinstance(v, float) else v) for k, v in row.items()}), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128, 256])
    ap.add_argument("--samples", type=int, default=8000)
    ap.add_argument("--cache", default="/tmp/hpc_rg_validation")
    ap.add_argument("--only", choices=("all", "binder"), default="all")
    args = ap.parse_args()
    w = world()
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    if w.is_root:
        binder_checks(cache)
    if args.only == "binder":
        return
    fss = {}
    for L in args.sizes:
        n = args.samples if L <= 128 else args.samples // 2
        path = cache / f"ising_L{L}_n{n}.h5"
        if not path.exists() and w.is_root:
            t0 = time.time()
            make_ensemble(path, (L, L), [T_C], 4, n // 4, seed=L)
            emit(check="generate", L=L, samples=n, seconds=time.time() - t0)
        w.barrier()
        with open_ensemble(path) as ens:
            lat = corr.lattice_from_attrs(ens.attrs, ens.lattice_shape)
            t0 = time.time()
            bm = corr.correlator_blocks(ens, 0, w, lat, n_blocks=40, batch=32)
            t_corr = time.time() - t0
            c = corr.correlators(bm)
            r = np.arange(L // 2 + 1)
            for q, exact in (("G_s", 0.125), ("G_eps", 1.0)):
                _, loo = jackknife_replicas(lambda x: corr.split(x)[q], bm)
                for form in ("plain", "chord"):
                    f = scaling.fit_dimension(r, *c[q], np.array(loo), L, (2, L // 4), form)
                    emit(check=f"delta_{q[2:]}_{form}", L=L, value=f["delta"], error=f["delta_err"], exact=exact,
                         chi2_dof=f["chi2_dof"], window=f["window"])
            sel = slice(L // 8, L // 4 + 1)
            fss[L] = {"m2": c["m2"],
                      "G_s": jackknife_blocks(lambda x: corr.split(x)["G_s"][sel].mean(), bm),
                      "G_eps": jackknife_blocks(lambda x: corr.split(x)["G_eps"][sel].mean(), bm),
                      "G_eps_half": (c["G_eps"][0][L // 2], c["G_eps"][1][L // 2])}
            emit(check="correlator_throughput", L=L, samples_per_s=ens.n_chains * ens.n_samples / t_corr)
            levels = int(np.log2(L // 8))
            t0 = time.time()
            fn = lambda x, k: rg.mcrg_primaries(rg.block_levels(x, 2, levels, "majority", seed=k[1] * 100003 + k[2]))
            mb, _ = block_means(ens, 0, fn, w, n_blocks=40, batch=32)
            y, e = rg.mcrg_exponents(mb, 2)
            for lev in range(levels):
                emit(check="mcrg", L=L, level=f"{lev}->{lev + 1}", y_t=float(y[lev, 0]), y_t_err=float(e[lev, 0]),
                     y_h=float(y[lev, 1]), y_h_err=float(e[lev, 1]), exact_y_t=1.0, exact_y_h=1.875)
            emit(check="mcrg_throughput", L=L, samples_per_s=ens.n_chains * ens.n_samples / (time.time() - t0))
            if L == max(l for l in args.sizes if l <= 128):
                mi_checks(ens, w)
    Ls = np.array(sorted(fss))
    for k, fac in (("m2", "delta_s_fss_m2"), ("G_s", "delta_s_fss_G"), ("G_eps", "delta_eps_fss_G"),
                   ("G_eps_half", "delta_eps_fss_G_half")):
        for lo in range(0, len(Ls) - 1):
            sub = Ls[lo:]
            f = scaling.fss_fit(sub, [float(fss[L][k][0]) for L in sub], [float(fss[L][k][1]) for L in sub])
            emit(check=fac, sizes=[int(x) for x in sub], value=f["delta"], error=f["delta_err"],
                 exact=0.125 if "delta_s" in fac else 1.0, chi2_dof=f["chi2_dof"])
    chain_checks(cache, w)


def mi_checks(ens, w):
    b = 3
    names = ("blocks", "majority", "average")
    tabs = {"majority": mi.kernel_levels("majority", b, seed=1), "average": mi.kernel_levels("average", b)}
    hists = {k: mi.JointHistogram() for k in names + ("pair",)}
    segs = segments(ens.n_chains, ens.n_samples, 16)
    t0 = time.time()
    for i, seg in enumerate(segs):
        for _, x in iter_segment(ens.spins, 0, seg, 64):
            x = np.asarray(x)
            a, c = mi.neighbour_pairs(mi.block_codes(x, b))
            hists["blocks"].add(a, c, i)
            for k in ("majority", "average"):
                hists[k].add(tabs[k][a], tabs[k][c], i)
            s = (x > 0).astype(np.int64)
            hists["pair"].add(s.ravel(), np.roll(s, -1, axis=2).ravel(), i)
    dt = time.time() - t0
    L = ens.lattice_shape[0]
    for k in names:
        for est in ("plugin", "miller_madow", "grassberger"):
            v, e = mi.mi_with_error(hists[k], est, 100, seed=3)
            emit(check=f"mi_{k}_3x3", L=L, estimator=est, value=v, error=e,
                 seed000_table2={"blocks": 0.743, "average": 0.602}.get(k))
    v, e = mi.mi_with_error(hists["pair"], "miller_madow", 100, seed=3)
    # ⟨s_0 s_1⟩ = −e/2 on the torus (x and y bonds are equivalent): exact from Kaufman's energy
    emit(check="mi_two_spins", L=L, value=v, error=e, exact=mi.exact_pair_mi(-kaufman_energy(L, T_C) / 2),
         exact_infinite_L=mi.exact_pair_mi(2 ** -0.5))
    emit(check="mi_throughput", L=L, samples_per_s=ens.n_chains * ens.n_samples / dt)
    rng = np.random.default_rng(0)
    h = mi.JointHistogram()
    for i in range(16):
        s = np.where(rng.random((500, L, L)) < 0.5, -1, 1).astype(np.int8)[:, :48, :48]
        h.add(*mi.neighbour_pairs(mi.block_codes(s, 2)), i)
    for est in ("plugin", "miller_madow", "grassberger"):
        v, e = mi.mi_with_error(h, est, 100, seed=4)
        emit(check="mi_independent_2x2", estimator=est, value=v, error=e, exact=0.0)


def chain_checks(cache, w):
    path = cache / "chain.h5"
    if not path.exists() and w.is_root:
        make_chain_ensemble(path, 256, [1.0, 1.5], 4, 5000, seed=11)
    w.barrier()
    with open_ensemble(path) as ens:
        lat = corr.lattice_from_attrs(ens.attrs, ens.lattice_shape)
        for t, T in enumerate(ens.temperatures):
            c = corr.correlators(corr.correlator_blocks(ens, t, w, lat, n_blocks=40))
            v, e = c["G_s"]
            xi = -1.0 / np.log(np.tanh(1.0 / T))
            r = np.arange(1, int(3 * xi) + 1)
            wts = v[r] / e[r]
            slope = np.polyfit(r, np.log(v[r]), 1, w=wts)[0]
            _, loo = jackknife_replicas(lambda x: corr.split(x)["G_s"], corr.correlator_blocks(ens, t, w, lat, 40))
            reps = [-1 / np.polyfit(r, np.log(np.clip(g[r], 1e-12, None)), 1, w=wts)[0] for g in loo]
            n = len(reps)
            emit(check="chain_correlation_length", T=float(T), value=-1 / slope,
                 error=float(np.sqrt((n - 1) / n * np.sum((np.array(reps) - np.mean(reps)) ** 2))), exact=xi)
            bm, _ = block_means(ens, t, lambda x, k: rg.decimation_primaries(x, 4), w, n_blocks=40, batch=500)
            K, Ke = jackknife_blocks(lambda m: np.array([rg.chain_coupling(c, 256 // 2 ** n) for n, c in enumerate(m)]), bm)
            emit(check="decimation_flow", T=float(T), K=[float(x) for x in K], K_err=[float(x) for x in Ke],
                 exact=[float(x) for x in rg.exact_decimation_flow(1.0 / T, 4)])


def binder_checks(cache, sizes=(16, 32, 64), samples=2000):
    """T_c from Binder crossings of successive L (reweighted, jackknife errors)."""
    from hpc_rg.reduce import observables as obs
    temps = [2.22, 2.25, 2.27, 2.29, 2.32]
    data = []
    for L in sizes:
        path = cache / f"ladder_L{L}.h5"
        if not path.exists():
            make_ensemble(path, (L, L), temps, 4, samples // 4, seed=7 * L)
        with open_ensemble(path) as ens:
            data.append({"temperatures": ens.temperatures, "e": ens.energy, "m": ens.magnetization,
                         "n_sites": L * L})
    grid = np.linspace(temps[0], temps[-1], 241)
    for (La, a), (Lb, b) in zip(zip(sizes, data), zip(sizes[1:], data[1:])):
        tc, te, uc, ue = obs.binder_crossing(a, b, grid, n_blocks=16)
        emit(check="binder_crossing", sizes=[La, Lb], T_c=tc, T_c_err=te, U=uc, U_err=ue, exact_T_c=T_C,
             exact_U_star=0.61069)


if __name__ == "__main__":
    main()

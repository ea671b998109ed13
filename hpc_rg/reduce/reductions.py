"""The reductions of ensembles alone (no trained models), declared in PLUGINS (see `hpc_rg.reduce.registry`).

Each runs on all ranks: temperatures or sample stretches are dealt out, partial sums combined by allreduce
(`blocks.block_means`), so every rank ends with the same numbers; rank 0 writes them.
"""
from __future__ import annotations

import numpy as np

from hpc_rg.io.ensemble import open_ensemble
from hpc_rg.parallel import deal
from hpc_rg.plugins import Plugin
from hpc_rg.reduce import correlators as corr
from hpc_rg.reduce import observables as obs, rg, scaling
from hpc_rg.reduce import mutual_info as mi
from hpc_rg.reduce.blocks import block_means, iter_segment, segments, t_indices
from hpc_rg.reduce.registry import Context, Result
from hpc_rg.reduce.seeding import seed_for
from hpc_rg.reduce.stats import jackknife_blocks, jackknife_replicas, tau_int_warning

PLUGINS = (
    Plugin("reduction", "observables", "run_observables",
           spec="hpc_rg.reduce.specs:ObservablesSpec", needs=("files",),
           doc="E, |m|, <m²>, χ, C, U per temperature and L, jackknife errors"),
    Plugin("reduction", "binder_crossing", "run_binder_crossing",
           spec="hpc_rg.reduce.specs:BinderCrossingSpec", needs=("files",),
           doc="T_c where the Binder cumulants of successive L cross"),
    Plugin("reduction", "correlators", "run_correlators",
           spec="hpc_rg.reduce.specs:CorrelatorsSpec", needs=("ensemble",),
           doc="spin and energy-density correlators G(r)"),
    Plugin("reduction", "scaling_dimensions", "run_scaling_dimensions",
           spec="hpc_rg.reduce.specs:ScalingDimensionsSpec", needs=("ensemble", "files"),
           doc="Δ_s, Δ_ε from power-law fits and finite-size scaling"),
    Plugin("reduction", "mutual_information", "run_mutual_information",
           spec="hpc_rg.reduce.specs:MutualInformationSpec", needs=("ensemble",),
           doc="histogram MI of neighbouring blocks, their images and block-shell"),
    Plugin("reduction", "block_rg", "run_block_rg",
           spec="hpc_rg.reduce.specs:BlockRGSpec", needs=("ensemble",),
           doc="observables of repeated block-spin transforms"),
    Plugin("reduction", "mcrg", "run_mcrg",
           spec="hpc_rg.reduce.specs:MCRGSpec", needs=("ensemble",),
           doc="Swendsen MCRG exponents y_t, y_h"),
    Plugin("reduction", "decimation_1d", "run_decimation_1d",
           spec="hpc_rg.reduce.specs:Decimation1DSpec", needs=("ensemble",),
           doc="decimation of sampled chains vs the exact flow"),
)


def _scalar_data(path):
    with open_ensemble(path) as ens:
        return {"temperatures": ens.temperatures, "e": ens.energy, "m": ens.magnetization,
                "n_sites": int(np.prod(ens.lattice_shape)), "L": int(ens.lattice_shape[-1])}



def run_observables(spec, ctx: Context) -> Result:
    """E, |m|, ⟨m²⟩, χ, C, U per temperature (and file/L), jackknife errors; optional reweighted curves."""
    res = Result(attrs={"method": "block jackknife over chain stretches; tau_int by Γ-method"})
    paths = ctx.resolve(spec.files)
    Ls, warnings = [], []
    for i, path in enumerate(paths):
        d = _scalar_data(path)
        mine = deal(len(d["temperatures"]), ctx.world.size, ctx.world.rank)
        part = {int(t): obs.observables(d["e"][t], d["m"][t], d["n_sites"], float(d["temperatures"][t]),
                                        spec.n_blocks) for t in mine}
        merged = {}
        for p in ctx.world.allgather(part):
            merged.update(p)
        names = list(obs.NAMES) + ["tau_int_energy", "tau_int_abs_m"]
        tag = f"L{d['L']}" if len(paths) > 1 else ""
        sfx = f"_{tag}" if tag else ""
        for q in names:
            val = [merged[t][q][0] for t in range(len(d["temperatures"]))]
            err = [merged[t][q][1] for t in range(len(d["temperatures"]))]
            res.put(q + sfx, val, None if q.startswith("tau") else err)
        res.axes["temperatures" + sfx] = d["temperatures"]
        tau = np.maximum([merged[t]["tau_int_energy"][0] for t in range(len(d["temperatures"]))],
                         [merged[t]["tau_int_abs_m"][0] for t in range(len(d["temperatures"]))])
        note = tau_int_warning(d["e"].shape[-1], tau, d["temperatures"], "E, |m|")
        if note:
            warnings.append(f"L = {d['L']}: {note}" if tag else note)
        if spec.reweight_points and len(d["temperatures"]) > 1:
            grid = np.linspace(d["temperatures"][0], d["temperatures"][-1], spec.reweight_points)
            curve = obs.reweighted_curve(d["temperatures"], d["e"], d["m"], d["n_sites"], grid)
            res.axes["reweight_T" + sfx] = grid
            for k, q in enumerate(obs.NAMES):
                res.axes[f"reweighted_{q}{sfx}"] = curve[:, k]
        Ls.append(d["L"])
    res.axes["L"] = np.array(Ls)
    # '' when every chain holds >= 50 τ (emcee's rule); the stage logs it, `hpc-rg info` and the report show it
    res.attrs["tau_int_warning"] = "; ".join(warnings)
    res.record_sources(paths)
    return res



def run_binder_crossing(spec, ctx: Context) -> Result:
    """T_c from U_L(T) = U_L'(T) for successive sizes (reweighted), jackknife over both ensembles."""
    data = sorted((_scalar_data(p) for p in ctx.resolve(spec.files)), key=lambda d: d["L"])
    lo = max(d["temperatures"][0] for d in data)
    hi = min(d["temperatures"][-1] for d in data)
    grid = np.linspace(lo, hi, spec.n_grid)
    pairs = list(zip(data[:-1], data[1:]))
    mine = deal(len(pairs), ctx.world.size, ctx.world.rank)
    part = {i: obs.binder_crossing(*pairs[i], grid, spec.n_blocks, spec.reweighting) for i in mine}
    merged = {}
    for p in ctx.world.allgather(part):
        merged.update(p)
    rows = np.array([merged[i] for i in range(len(pairs))])
    res = Result(attrs={"method": ("single-histogram reweighting" if spec.reweighting else "linear interpolation")
                        + "; jackknife errors summed over the independent ensembles"})
    res.axes["L_small"] = np.array([a["L"] for a, _ in pairs])
    res.axes["L_large"] = np.array([b["L"] for _, b in pairs])
    res.put("T_c", rows[:, 0], rows[:, 1])
    res.put("U_cross", rows[:, 2], rows[:, 3])
    res.axes["grid"] = grid
    for d in data:
        res.axes[f"U_L{d['L']}"] = obs.reweighted_curve(d["temperatures"], d["e"], d["m"], d["n_sites"], grid)[:, 5]
    res.record_sources(ctx.resolve(spec.files))
    return res


def _profiles(ctx, path, spec, temperatures):
    """{t index: block means of correlator primaries} for one ensemble, and the ensemble's facts."""
    with open_ensemble(path) as ens:
        lat = corr.lattice_from_attrs(ens.attrs, ens.lattice_shape)
        out = {t: corr.correlator_blocks(ens, t, ctx.world, lat, spec.n_blocks, spec.batch, spec.mode,
                                         spec.max_samples) for t in t_indices(ens, temperatures)}
        return out, ens.temperatures, int(ens.lattice_shape[-1])



def run_correlators(spec, ctx: Context) -> Result:
    """G_s(r) and G_ε(r) per temperature (FFT over all pairs), with jackknife errors."""
    blocks, temps, L = _profiles(ctx, ctx.ensemble_path, spec, spec.temperatures)
    res = Result(attrs={"method": "FFT all-pairs, translation+sample average, block jackknife",
                        "distance": spec.mode})
    ts = sorted(blocks)
    res.axes["temperatures"] = temps[ts]
    parts = [corr.correlators(blocks[t]) for t in ts]
    # the distances the profiles hold (on an Ly x L lattice the shorter side bounds them, not L // 2 + 1)
    res.axes["r"] = np.arange(np.shape(parts[0]["G_s"][0])[-1]) if parts else np.arange(L // 2 + 1)
    for q in ("G_s", "G_eps", "eps", "m2", "abs_m"):
        res.put(q, [p[q][0] for p in parts], [p[q][1] for p in parts])
    with open_ensemble(ctx.ensemble_path) as ens:
        res.record_sources([ctx.ensemble_path], ens)
    return res



def run_scaling_dimensions(spec, ctx: Context) -> Result:
    """Δ_s, Δ_ε per temperature from plain and chord power-law fits; finite-size estimators across L
    (⟨m²⟩ ∝ L^{-2Δ_s}, mean G over r/L ∈ fss_r_over_L ∝ L^{-2Δ}); seed 002's T where Δ_ε = 1."""
    blocks, temps, L = _profiles(ctx, ctx.ensemble_path, spec, spec.temperatures)
    ts = sorted(blocks)
    r = np.arange(L // 2 + 1)
    res = Result(attrs={"method": "weighted fits B r^{-2Δ} (diagonal errors, χ²/dof reported); "
                                  "Δ errors by refitting each leave-one-block-out replica"})
    res.axes["temperatures"] = temps[ts]
    for q, key, window in (("G_s", "spin", spec.window_spin), ("G_eps", "energy", spec.window_energy)):
        win = (window[0], window[1] or L // 4)
        res.attrs[f"window_{key}"] = np.array(win)
        for form in ("plain", "chord"):
            fits = []
            for t in ts:
                g, ge = jackknife_blocks(lambda x: corr.split(x)[q], blocks[t])
                _, loo = jackknife_replicas(lambda x: corr.split(x)[q], blocks[t])
                fits.append(scaling.fit_dimension(r, g, ge, np.array(loo), L, win, form))
            name = f"delta_{'s' if key == 'spin' else 'eps'}_{form}"
            res.put(name, [f["delta"] for f in fits], [f["delta_err"] for f in fits])
            res.put(name + "_chi2_dof", [f["chi2_dof"] for f in fits])
            if key == "energy":
                res.put(f"T_delta_eps_1_{form}", scaling.delta_eps_crossing(temps[ts], [f["delta"] for f in fits]))
    if spec.files:
        _fss(spec, ctx, res, temps[ts])
    with open_ensemble(ctx.ensemble_path) as ens:
        res.record_sources([ctx.ensemble_path] + ctx.resolve(spec.files), ens)
    return res


def _fss(spec, ctx, res: Result, temps: np.ndarray) -> None:
    """Finite-size estimators at each reduced temperature (nearest ladder point of every file)."""
    per_L = {}
    for path in [ctx.ensemble_path] + [p for p in ctx.resolve(spec.files) if p != ctx.ensemble_path]:
        blocks, T_all, L = _profiles(ctx, path, spec, tuple(temps))
        per_L[L] = (blocks, T_all)
    Ls = np.array(sorted(per_L))
    res.axes["fss_L"] = Ls
    lo, hi = spec.fss_r_over_L
    out = {k: [] for k in ("m2", "G_s", "G_eps")}
    for T in temps:
        rows = {k: ([], []) for k in out}
        for L in Ls:
            blocks, T_all = per_L[L]
            t = min(blocks, key=lambda i: abs(T_all[i] - T))
            sel = slice(int(round(lo * L)), int(round(hi * L)) + 1)
            for k, fn in (("m2", lambda x: corr.split(x)["m2"]),
                          ("G_s", lambda x: corr.split(x)["G_s"][..., sel].mean(axis=-1)),
                          ("G_eps", lambda x: corr.split(x)["G_eps"][..., sel].mean(axis=-1))):
                v, e = jackknife_blocks(fn, blocks[t])
                rows[k][0].append(float(v))
                rows[k][1].append(float(e))
        for k in out:
            out[k].append(scaling.fss_fit(Ls, *rows[k]))
            res.put(f"fss_{k}_by_L_T{T:.6g}", rows[k][0], rows[k][1])
    res.put("delta_s_fss_m2", [f["delta"] for f in out["m2"]], [f["delta_err"] for f in out["m2"]])
    res.put("delta_s_fss_G", [f["delta"] for f in out["G_s"]], [f["delta_err"] for f in out["G_s"]])
    res.put("delta_eps_fss_G", [f["delta"] for f in out["G_eps"]], [f["delta_err"] for f in out["G_eps"]])
    res.put("delta_eps_fss_chi2_dof", [f["chi2_dof"] for f in out["G_eps"]])
    res.put("T_delta_eps_1_fss", scaling.delta_eps_crossing(temps, [f["delta"] for f in out["G_eps"]]))



def run_mutual_information(spec, ctx: Context) -> Result:
    """I(A;B) (bits) of neighbouring b×b blocks, of their kernel images, and block–shell, with bootstrap errors."""
    b = spec.block
    res = Result(attrs={"estimator": spec.estimator, "block": b, "error": "bootstrap over sample blocks",
                        "pairs": "all horizontally and vertically adjacent tiles of the b×b tiling"})
    tables = {}
    for k in spec.kernels:
        kern = np.array(spec.weights).reshape(b, b) if k == "weights" else k
        tables[k] = mi.kernel_levels(kern, b, spec.levels, seed=seed_for(ctx.seed, "mutual_information", "kernel", k))
    with open_ensemble(ctx.ensemble_path) as ens:
        if len(ens.lattice_shape) != 2:
            raise ValueError("mutual_information needs a 2D lattice")
        ts = t_indices(ens, spec.temperatures)
        res.axes["temperatures"] = ens.temperatures[ts]
        names = ["blocks"] + [f"image_{k}" for k in spec.kernels] + (["block_shell"] if spec.shell else [])
        vals = {n: ([], []) for n in names}
        n_s = ens.n_samples if spec.max_samples <= 0 else min(spec.max_samples, ens.n_samples)
        segs = segments(ens.n_chains, n_s, spec.n_blocks)
        for t in ts:
            hists = {n: mi.JointHistogram() for n in names}
            for i in deal(len(segs), ctx.world.size, ctx.world.rank):
                for _, x in iter_segment(ens.spins, t, segs[i], spec.batch):
                    codes = mi.block_codes(np.asarray(x), b)
                    a, c = mi.neighbour_pairs(codes)
                    hists["blocks"].add(a, c, i)
                    for k in spec.kernels:
                        hists[f"image_{k}"].add(tables[k][a], tables[k][c], i)
                    if spec.shell:
                        hists["block_shell"].add(*mi.shell_codes(np.asarray(x), b, spec.shell), i)
            # ranks hold disjoint sample blocks: gather them into one histogram list on every rank
            for n in names:
                h = mi.JointHistogram()
                for part in ctx.world.allgather(hists[n].blocks):
                    h.blocks += [blk for blk in part if blk[0].size]
                v, e = mi.mi_with_error(h, spec.estimator, spec.n_boot,
                                        seed=seed_for(ctx.seed, "mutual_information", "boot", n, t))
                vals[n][0].append(v)
                vals[n][1].append(e)
        for n in names:
            res.put(f"I_{n}", *vals[n])
        res.record_sources([ctx.ensemble_path], ens)
    return res


def _kernel(spec):
    return np.array(spec.weights).reshape(spec.block, spec.block) if spec.kernel == "weights" else spec.kernel



def run_block_rg(spec, ctx: Context) -> Result:
    """Repeated block-spin transforms: ⟨|m|⟩, ⟨m²⟩, nn correlation and U at every level, per temperature."""
    res = Result(attrs={"kernel": spec.kernel, "block": spec.block, "levels": spec.levels})
    with open_ensemble(ctx.ensemble_path) as ens:
        ts = t_indices(ens, spec.temperatures)
        res.axes["temperatures"] = ens.temperatures[ts]
        kern = _kernel(spec)
        out = {q: ([], []) for q in ("abs_m", "m2", "nn", "binder")}
        for t in ts:
            def fn(x, where):
                return rg.level_observables(rg.block_levels(np.asarray(x), spec.block, spec.levels, kern,
                                                            seed=seed_for(ctx.seed, "block_rg", *where)))
            bm, _ = block_means(ens, t, fn, ctx.world, spec.n_blocks, spec.batch)
            for j, q in enumerate(("abs_m", "m2", "nn")):
                v, e = jackknife_blocks(lambda x, j=j: x[:, j], bm)
                out[q][0].append(v)
                out[q][1].append(e)
            v, e = jackknife_blocks(lambda x: 1 - x[:, 3] / (3 * x[:, 1] ** 2), bm)
            out["binder"][0].append(v)
            out["binder"][1].append(e)
        for q in out:
            res.put(q, *out[q])
        res.axes["level"] = np.arange(spec.levels + 1)
        res.record_sources([ctx.ensemble_path], ens)
    return res



def run_mcrg(spec, ctx: Context) -> Result:
    """Swendsen MCRG: y_t (even operators) and y_h (odd) for each successive level pair."""
    res = Result(attrs={"kernel": spec.kernel, "block": spec.block, "n_even": spec.n_even, "n_odd": spec.n_odd,
                        "operators_even": ",".join(rg.EVEN[:spec.n_even]),
                        "operators_odd": ",".join(rg.ODD[:spec.n_odd]),
                        "method": "T = B^-1 A per level pair, y = ln λmax / ln b, jackknife errors"})
    with open_ensemble(ctx.ensemble_path) as ens:
        if len(ens.lattice_shape) != 2:
            raise ValueError("mcrg needs a 2D lattice")
        L = min(ens.lattice_shape)
        levels = spec.levels_on(L)
        ts = t_indices(ens, spec.temperatures)
        res.axes["temperatures"] = ens.temperatures[ts]
        res.axes["level_from"] = np.arange(levels)
        kern = _kernel(spec)
        yt, yh, et, eh = [], [], [], []
        for t in ts:
            def fn(x, where):
                return rg.mcrg_primaries(rg.block_levels(np.asarray(x), spec.block, levels, kern,
                                                         seed=seed_for(ctx.seed, "mcrg", *where)))
            bm, _ = block_means(ens, t, fn, ctx.world, spec.n_blocks, spec.batch)
            y, e = rg.mcrg_exponents(bm, spec.block, spec.n_even, spec.n_odd)
            yt.append(y[:, 0]); et.append(e[:, 0]); yh.append(y[:, 1]); eh.append(e[:, 1])
        res.put("y_t", yt, et)
        res.put("y_h", yh, eh)
        res.record_sources([ctx.ensemble_path], ens)
    return res



def run_decimation_1d(spec, ctx: Context) -> Result:
    """Numerical decimation of sampled chains vs the exact flow tanh K' = tanh² K."""
    res = Result(attrs={"b": 2, "method": "K_n from the decimated chain's nn correlation (finite periodic chain)"})
    with open_ensemble(ctx.ensemble_path) as ens:
        if len(ens.lattice_shape) != 1:
            raise ValueError("decimation_1d needs a chain (model ising1d)")
        L = ens.lattice_shape[0]
        J = float(ens.attrs.get("J", 1.0))
        ts = t_indices(ens, spec.temperatures)
        res.axes["temperatures"] = ens.temperatures[ts]
        res.axes["step"] = np.arange(spec.steps + 1)
        K, Ke, Kx = [], [], []
        for t in ts:
            bm, _ = block_means(ens, t, lambda x, w: rg.decimation_primaries(np.asarray(x), spec.steps),
                                ctx.world, spec.n_blocks, spec.batch)
            f = lambda m: np.array([rg.chain_coupling(c, L // 2 ** n) for n, c in enumerate(m)])
            v, e = jackknife_blocks(f, bm)
            K.append(v); Ke.append(e)
            Kx.append(rg.exact_decimation_flow(J / ens.temperatures[t], spec.steps))
        res.put("K", K, Ke)
        res.put("K_exact", Kx)
        res.record_sources([ctx.ensemble_path], ens)
    return res

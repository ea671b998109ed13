"""RBM flows (seed 002 §I C, §II A): v^(1) → h^(1) → v^(2) → h^(2) → … with a trained RBM.

Each initial configuration (the ensemble's samples at a chosen temperature) is flowed independently by
alternate Gibbs sampling, h ~ p(h | v), v ~ p(v | h), for up to max(lengths) steps; after n steps we record
v^(n+1) (n = 0: the data). On the recorded sets we measure, with the reduction stage's machinery
(`correlators`, `scaling`), the spin and energy-density correlators and fitted scaling dimensions Δ_s, Δ_ε
(plain power law over a window, as seed 002), ⟨|m|⟩, ⟨m²⟩, and, with a trained thermometer, the average
probability over its temperatures (the paper's Figs. 3–5 c), its peak temperature `T_peak` (the paper's
read-out) and the posterior-mean temperature `T_thermo` beside it.

Fixed point: the flow is a Markov chain whose stationary law is the RBM's marginal p(v), so long flows
converge to p(v) whatever the start (the test uses an RBM whose marginal is an exact Ising chain).
Errors: flows of different initial configurations are independent given the initial set, so the block
jackknife over chain stretches of the initial set is honest. Noise is keyed by (temperature, chain,
first sample) of each batch, so any rank count gives identical flows.
"""
from __future__ import annotations

import numpy as np

from hpc_rg.io.ensemble import open_ensemble
from hpc_rg.plugins import Plugin
from hpc_rg.reduce import correlators as corr
from hpc_rg.reduce import trained_models as tm
from hpc_rg.reduce import scaling
from hpc_rg.reduce.blocks import block_means, t_indices
from hpc_rg.reduce.registry import Context, Result
from hpc_rg.reduce.seeding import torch_generator
from hpc_rg.reduce.stats import jackknife_blocks, jackknife_replicas
from hpc_rg.schema import ConfigError

PLUGINS = (Plugin("reduction", "rbm_flow", "run_rbm_flow",
                  spec="hpc_rg.reduce.model_specs:RBMFlowSpec", needs=("ensemble", "models"),
                  doc="RBM flows v->h->v: scaling dimensions and thermometer along the flow"),)


def correlator_primaries(s: np.ndarray, lattice, J_hat, mode: str) -> np.ndarray:
    """Per-sample [G_s profile, ⟨ε_0 ε_r⟩ profile, ε̄, m², |m|] (the `correlators.correlator_blocks` layout)."""
    s = np.asarray(s, dtype=np.float64)
    eps = corr.energy_density(s, lattice, J_hat)
    axes = tuple(range(1, s.ndim))
    m = s.mean(axis=axes)
    return np.concatenate([corr.profile(corr.translation_average(s), mode),
                           corr.profile(corr.translation_average(eps), mode),
                           eps.mean(axis=axes)[:, None], (m * m)[:, None], np.abs(m)[:, None]], axis=1)


def flow(rbm, v0, lengths, noise) -> list:
    """Spin-valued visible sets after each recorded number of steps (torch tensors (k, n_visible))."""
    units = rbm.units
    v = tm.to_units(v0, units)
    out = []
    for n in range(max(lengths) + 1):
        if n in lengths:
            out.append(tm.to_spin(v, units))
        if n < max(lengths):
            v = rbm.gibbs(v, 1, noise)
    return out


def fit_dimensions(blocks: np.ndarray, L: int, windows, mode: str = "axes") -> dict:
    """Δ_s, Δ_ε (plain fits, jackknife errors) and the correlators from correlator block means (n_b, C)."""
    R1 = (blocks.shape[-1] - 3) // 2
    r = np.arange(R1)
    out = {}
    for q, key, win in (("G_s", "s", windows[0]), ("G_eps", "eps", windows[1])):
        g, ge = jackknife_blocks(lambda x: corr.split(x)[q], blocks)
        _, loo = jackknife_replicas(lambda x: corr.split(x)[q], blocks)
        w = (win[0], win[1] or max(win[0] + 1, L // 4))
        f = scaling.fit_dimension(r, g, ge, np.array(loo), L, w, "plain")
        out[f"delta_{key}"] = (f["delta"], f["delta_err"])
        out[f"chi2_{key}"] = f["chi2_dof"]
        out[q] = (g, ge)
    for q in ("abs_m", "m2"):
        out[q] = jackknife_blocks(lambda x: corr.split(x)[q], blocks)
    return out


def run_rbm_flow(spec, ctx: Context) -> Result:
    import torch
    rbm, meta = tm.load(ctx, spec.model, "analyze.rbm_flow.model", ("rbm",))
    thermo = None
    if spec.thermometer:
        thermo, _ = tm.load(ctx, spec.thermometer, "analyze.rbm_flow.thermometer", ("thermometer",))
    lengths = tuple(int(n) for n in spec.lengths)
    res = Result(attrs={"model_name": spec.model, "units": rbm.units, "lengths_max": max(lengths),
                        "method": "independent Gibbs flows v->h->v per initial configuration; plain power-law "
                                  "fits of G_s, G_eps (window attrs); block jackknife over the initial set",
                        "thermometer": spec.thermometer})
    with open_ensemble(ctx.ensemble_path) as ens:
        shape = tuple(ens.lattice_shape)
        N = int(np.prod(shape))
        if N != rbm.n_visible:
            raise ConfigError(getattr(ctx.cfg, "file", ""), "analyze.rbm_flow.model", spec.model,
                              f"an RBM with {N} visible units (the ensemble lattice {list(shape)})")
        lat = corr.lattice_from_attrs(ens.attrs, shape)
        table = corr.coupling_table(lat)
        J_hat = None if table is None else np.fft.rfftn(table)
        use_thermo = thermo is not None and len(shape) == 2
        ts = t_indices(ens, spec.temperatures)
        C = 2 * (min(shape) // 2 + 1) + 3

        def fn(x, where):
            t, c, s0 = where
            k = x.shape[0]
            gen = torch_generator(ctx.seed, "rbm_flow", t, c, s0)
            with torch.no_grad():
                sets = flow(rbm, torch.as_tensor(x.reshape(k, -1), dtype=torch.float64), lengths,
                            tm.noise_fn(gen, k))
            rows = []
            for v in sets:
                s = v.numpy().reshape((k,) + shape)
                prim = correlator_primaries(s, lat, J_hat, spec.mode)
                if use_thermo:
                    # the thermometer reads ±1 lattices: spin-valued sets already are
                    p, T = tm.thermometer_read(thermo, s)
                    prim = np.concatenate([prim, T[:, None], p], axis=1)
                rows.append(prim)
            return np.stack(rows, axis=1)

        out = {q: ([], []) for q in ("delta_s", "delta_eps", "abs_m", "m2", "G_s", "G_eps", "T_thermo", "p_thermo",
                                     "T_peak")}
        chi = {"chi2_s": [], "chi2_eps": []}
        windows = (tuple(spec.window_spin), tuple(spec.window_energy))
        for t in ts:
            bm, _ = block_means(ens, t, fn, ctx.world, spec.n_blocks, spec.batch, spec.max_samples)
            per = [fit_dimensions(bm[:, j, :C], min(shape), windows, spec.mode) for j in range(len(lengths))]
            for q in ("delta_s", "delta_eps", "abs_m", "m2", "G_s", "G_eps"):
                out[q][0].append([p[q][0] for p in per])
                out[q][1].append([p[q][1] for p in per])
            for q in chi:
                chi[q].append([p[q] for p in per])
            if use_thermo:
                v, e = jackknife_blocks(lambda m: m[:, C], bm)
                out["T_thermo"][0].append(v); out["T_thermo"][1].append(e)
                v, e = jackknife_blocks(lambda m: m[:, C + 1:], bm)
                out["p_thermo"][0].append(v); out["p_thermo"][1].append(e)
                Tk = thermo.temperatures.numpy()
                v, e = jackknife_blocks(lambda m: tm.thermometer_peak(m[:, C + 1:], Tk), bm)
                out["T_peak"][0].append(v); out["T_peak"][1].append(e)
        for q, (v, e) in out.items():
            if v:
                res.put(q, v, e)
        for q, v in chi.items():
            res.put(q + "_dof", v)
        res.axes["temperatures"] = ens.temperatures[ts]
        res.axes["length"] = np.array(lengths)
        res.axes["r"] = np.arange(min(shape) // 2 + 1)
        if use_thermo:
            res.axes["thermometer_temperatures"] = thermo.temperatures.numpy()
        res.attrs["window_spin"] = np.array(windows[0])
        res.attrs["window_energy"] = np.array(windows[1])
        res.record_sources([ctx.ensemble_path], ens,
                           {"model": tm.model_path(ctx, spec.model, "analyze.rbm_flow.model")})
    return res

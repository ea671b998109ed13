"""⟨v_i h_a⟩ correlators between the original spins and coarse variables (seed 002 §II B, Figs. 6–8).

Coarse variables: (a) block spins after n = 1..rg_steps block-spin RG steps (kernel "average": Kadanoff's
block mean, seed 002 Fig. 1; or majority / decimation), (b) the hidden units of each layer l of a stacked
RBM (DBN), taken as conditional means E[h | v] up the stack (E[v_i h_a] = E[v_i E[h_a | v]], so means give
the same correlator as sampled hidden configurations with less noise). Everything is in spin units (±1;
{0,1} units mapped by 2x − 1). For h = 0 ensembles ⟨v⟩ = 0, so ⟨v h⟩ is already connected.

Per coarse variable a the map c_a(i) = ⟨v_i h_a⟩ is an L×L image; its locality score is the radius of
gyration and the b×b window fraction of |c_a| (`receptive_fields`), with b = block^n for RG step n and the
blocking factor sqrt(N_v / N_l) for layer l. Errors: block jackknife over chain stretches. The maps of all
units are too big to keep per block, so the jackknife takes two passes: the totals, then each block's
leave-one-out maps, reduced to the scores at once (memory: two sets of N_v × Σ N_l maps).
With a thermometer, the temperature read from the configurations after each RG step and from sampled
hidden configurations of each layer (square layers only), as in seed 002 Fig. 8: the peak of the average
probability vector (`*_T_peak`, the paper's read-out) and the posterior mean (`*_T_thermo`). The RG lattices
it reads (`thermometer_rg`): "kernel" (default) = the blocks of `kernel` themselves, i.e. for "average"
Kadanoff's block means ("the average value of the red spins becomes the value of the new centre blue
spin", seed 002 §I B), real values in [-1, 1]; "majority" = the earlier choice, majority-rule blocks with
seeded coin-flip ties, so the thermometer only ever sees ±1.
"""
from __future__ import annotations

import numpy as np

from hpc_rg.io.ensemble import open_ensemble
from hpc_rg.parallel import deal
from hpc_rg.plugins import Plugin
from hpc_rg.reduce import trained_models as tm
from hpc_rg.reduce import rg
from hpc_rg.reduce.blocks import iter_segment, segments, t_indices
from hpc_rg.reduce.receptive_fields import block_side, radius_of_gyration, window_fraction
from hpc_rg.reduce.registry import Context, Result
from hpc_rg.reduce.seeding import seed_for, torch_generator
from hpc_rg.reduce.stats import jackknife_error
from hpc_rg.schema import ConfigError

PLUGINS = (Plugin("reduction", "vh_correlators", "run_vh_correlators",
                  spec="hpc_rg.reduce.model_specs:VHCorrelatorsSpec", needs=("ensemble", "models"),
                  doc="<v h> maps of block-spin RG steps and DBN layers, their locality"),)


def scores(maps: np.ndarray, shape, b: int) -> np.ndarray:
    """[mean R_g, mean window fraction] over the units of maps (N_v, N_h)."""
    f = maps.T.reshape((maps.shape[1],) + tuple(shape))
    return np.array([radius_of_gyration(f).mean(), window_fraction(f, b).mean()])


class _Levels:
    """Coarse variables and thermometer read-outs of one batch."""

    def __init__(self, spec, ctx, shape, dbn, thermo):
        self.spec, self.ctx, self.shape, self.dbn, self.thermo = spec, ctx, shape, dbn, thermo
        n_layers = dbn.n_layers if dbn is not None else 0
        self.names = [f"rg{n}" for n in range(1, spec.rg_steps + 1)] + [f"layer{l}" for l in range(1, n_layers + 1)]
        N = int(np.prod(shape))
        self.windows = [spec.block ** n for n in range(1, spec.rg_steps + 1)]
        if dbn is not None:
            self.windows += [block_side(N, n, len(shape)) for n in dbn.sizes[1:]]
        self.thermo_rg = thermo is not None
        self.thermo_layers = [l for l in range(1, n_layers + 1) if thermo is not None and tm.square_side(dbn.sizes[l])]

    def __call__(self, x: np.ndarray, where) -> tuple[list, np.ndarray]:
        """([h of every level (k, N_level) float64], small per-sample read-outs (k, P))."""
        import torch
        t, c, s0 = where
        k = x.shape[0]
        spec = self.spec
        lv = rg.block_levels(np.asarray(x), spec.block, spec.rg_steps, spec.kernel,
                             seed=seed_for(self.ctx.seed, "vh_correlators", "coin", t, c, s0))
        hs = [np.asarray(l, dtype=np.float64).reshape(k, -1) for l in lv[1:]]
        small = []
        if self.dbn is not None:
            v = tm.to_units(torch.as_tensor(x.reshape(k, -1), dtype=torch.float64), self.dbn.units)
            with torch.no_grad():
                hs += [tm.to_spin(h, self.dbn.units).numpy() for h in self.dbn.up(v)]
                if self.thermo_layers:
                    gen = torch_generator(self.ctx.seed, "vh_correlators", "hidden", t, c, s0)
                    samp = self.dbn.up(v, sample=True, noise=tm.noise_fn(gen, k))
        if self.thermo_rg:
            kern = "majority" if spec.thermometer_rg == "majority" else spec.kernel
            tl = rg.block_levels(np.asarray(x), spec.block, spec.rg_steps, kern,
                                 seed=seed_for(self.ctx.seed, "vh_correlators", "thermometer_coin", t, c, s0))
            for s in tl:
                p, T = tm.thermometer_read(self.thermo, s)
                small += [T[:, None], p]
            for l in self.thermo_layers:
                side = tm.square_side(self.dbn.sizes[l])
                s = tm.to_spin(samp[l - 1], self.dbn.units).numpy().reshape(k, side, side)
                p, T = tm.thermometer_read(self.thermo, s)
                small += [T[:, None], p]
        return hs, (np.concatenate(small, axis=1) if small else np.zeros((k, 0)))


def _segment_sums(ens, t, seg, levels, batch):
    S, n, small = None, 0, None
    for s0, x in iter_segment(ens.spins, t, seg, batch):
        x = np.asarray(x)
        hs, sm = levels(x, (t, seg[0], s0))
        v = x.reshape(x.shape[0], -1).astype(np.float64)
        part = [v.T @ h for h in hs]
        S = part if S is None else [a + b for a, b in zip(S, part)]
        small = sm.sum(axis=0) if small is None else small + sm.sum(axis=0)
        n += x.shape[0]
    return S, n, small


def run_vh_correlators(spec, ctx: Context) -> Result:
    dbn = thermo = None
    files = {}
    if spec.model:
        dbn, _ = tm.load(ctx, spec.model, "analyze.vh_correlators.model", ("dbn",))
        files["model"] = tm.model_path(ctx, spec.model, "analyze.vh_correlators.model")
    if spec.thermometer:
        thermo, _ = tm.load(ctx, spec.thermometer, "analyze.vh_correlators.thermometer", ("thermometer",))
    res = Result(attrs={"kernel": spec.kernel, "block": spec.block, "rg_steps": spec.rg_steps,
                        "thermometer_rg": spec.thermometer_rg,
                        "model_name": spec.model, "thermometer": spec.thermometer,
                        "method": "<v_i h_a> over samples (spin units), hidden = E[h|v] up the stack; locality "
                                  "= mean over units of R_g and b×b window fraction of |map|; two-pass block "
                                  "jackknife"})
    with open_ensemble(ctx.ensemble_path) as ens:
        shape = tuple(ens.lattice_shape)
        if len(shape) != 2:
            raise ValueError("vh_correlators needs a 2D lattice")
        if dbn is not None and dbn.sizes[0] != int(np.prod(shape)):
            raise ConfigError(getattr(ctx.cfg, "file", ""), "analyze.vh_correlators.model", spec.model,
                              f"a DBN with {int(np.prod(shape))} visible units")
        levels = _Levels(spec, ctx, shape, dbn, thermo)
        n_lv = len(levels.names)
        ts = t_indices(ens, spec.temperatures)
        n_s = ens.n_samples if spec.max_samples <= 0 else min(spec.max_samples, ens.n_samples)
        segs = segments(ens.n_chains, n_s, spec.n_blocks)
        mine = deal(len(segs), ctx.world.size, ctx.world.rank)
        sc_v, sc_e, th_v, th_e, pk_v, pk_e, maps_keep = [], [], [], [], [], [], {}
        nT = len(thermo.temperatures) if thermo is not None else 0

        def peaks(row):
            """Peak temperature of each read level's average probability vector in one read-out row."""
            levels_p = row.reshape(-1, nT + 1)[:, 1:]
            return tm.thermometer_peak(levels_p, thermo.temperatures.numpy())
        for t in ts:
            # pass 1: totals (maps) and per-segment sums of the small read-outs
            S_tot, n_seg, small = None, np.zeros(len(segs)), None
            for i in mine:
                S, n, sm = _segment_sums(ens, t, segs[i], levels, spec.batch)
                S_tot = S if S_tot is None else [a + b for a, b in zip(S_tot, S)]
                if small is None:
                    small = np.zeros((len(segs), sm.size))
                small[i] = sm
                n_seg[i] = n
            widths = ctx.world.allgather(None if S_tot is None else [s.shape for s in S_tot])
            shapes = next(w for w in widths if w is not None)
            S_tot = [np.zeros(s) for s in shapes] if S_tot is None else S_tot
            S_tot = [ctx.world.allreduce(np.ascontiguousarray(s), op="sum") for s in S_tot]
            n_seg = ctx.world.allreduce(n_seg, op="sum")
            P = next(w for w in ctx.world.allgather(None if small is None else small.shape[1]) if w is not None)
            small = ctx.world.allreduce(np.zeros((len(segs), P)) if small is None else small, op="sum")
            n_tot = n_seg.sum()
            full = [s / n_tot for s in S_tot]
            full_scores = np.array([scores(m, shape, b) for m, b in zip(full, levels.windows)])
            # pass 2: leave-one-segment-out scores
            loo = np.zeros((len(segs), n_lv, 2))
            for i in mine:
                S, n, _ = _segment_sums(ens, t, segs[i], levels, spec.batch)
                loo[i] = [scores((a - b) / (n_tot - n), shape, w) for a, b, w in zip(S_tot, S, levels.windows)]
            loo = ctx.world.allreduce(loo, op="sum")
            sc_v.append(full_scores)
            sc_e.append(jackknife_error(loo))
            if P:
                tot = small.sum(axis=0) / n_tot
                loo_m = (small.sum(axis=0)[None] - small) / (n_tot - n_seg)[:, None]
                th_v.append(tot)
                th_e.append(jackknife_error(loo_m))
                pk_v.append(peaks(tot))
                pk_e.append(jackknife_error(np.array([peaks(r) for r in loo_m])))
            for name, m in zip(levels.names, full):
                units = np.unique(np.linspace(0, m.shape[1] - 1, spec.show).astype(int))
                maps_keep.setdefault(name, []).append(m[:, units].T.reshape((len(units),) + shape))
        sc_v, sc_e = np.array(sc_v), np.array(sc_e)
        n_rg = spec.rg_steps
        for j, q in enumerate(("radius", "window_fraction")):
            if n_rg:
                res.put(f"rg_{q}", sc_v[:, :n_rg, j], sc_e[:, :n_rg, j])
            if n_lv > n_rg:
                res.put(f"rbm_{q}", sc_v[:, n_rg:, j], sc_e[:, n_rg:, j])
        for name, ms in maps_keep.items():
            res.put(f"map_{name}", np.array(ms))
        if th_v:
            th_v, th_e = np.array(th_v), np.array(th_e)
            nT = len(thermo.temperatures)
            stride = nT + 1
            n_rg_read = n_rg + 1
            res.put("rg_T_thermo", th_v[:, 0:n_rg_read * stride:stride], th_e[:, 0:n_rg_read * stride:stride])
            pk_v, pk_e = np.array(pk_v), np.array(pk_e)
            res.put("rg_T_peak", pk_v[:, :n_rg_read], pk_e[:, :n_rg_read])
            res.put("rg_p_thermo", np.stack([th_v[:, i * stride + 1:(i + 1) * stride] for i in range(n_rg_read)], 1),
                    np.stack([th_e[:, i * stride + 1:(i + 1) * stride] for i in range(n_rg_read)], 1))
            if levels.thermo_layers:
                base = n_rg_read * stride
                idx = [base + i * stride for i in range(len(levels.thermo_layers))]
                res.put("rbm_T_thermo", th_v[:, idx], th_e[:, idx])
                res.put("rbm_T_peak", pk_v[:, n_rg_read:], pk_e[:, n_rg_read:])
                res.put("rbm_p_thermo", np.stack([th_v[:, i + 1:i + stride] for i in idx], 1),
                        np.stack([th_e[:, i + 1:i + stride] for i in idx], 1))
                res.axes["thermo_layer"] = np.array(levels.thermo_layers)
            res.axes["thermometer_temperatures"] = thermo.temperatures.numpy()
        res.axes["temperatures"] = ens.temperatures[ts]
        res.axes["rg_step"] = np.arange(1, n_rg + 1)
        res.axes["layer"] = np.arange(1, n_lv - n_rg + 1)
        res.axes["window"] = np.array(levels.windows)
        res.attrs["levels"] = ",".join(levels.names)
        res.record_sources([ctx.ensemble_path], ens, files)
    return res

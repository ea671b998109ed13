"""Reconstructions through a trained stack (seed 001 Fig. 3E, seed 003 Fig. 2) and their error per layer.

Depth d: the data go up d layers as conditional means E[h | v] and back down through the transposed
weights (`DBN.reconstruct`, the deterministic reconstruction of Hinton & Salakhutdinov used by seed 001);
an RBM has d = 1; an autoencoder reconstructs through its full depth only (its decoder is trained for
that path alone). In spin units (±1) per site: mse = ⟨(s − ŝ)²⟩ (0 perfect, 1 for ŝ ≡ 0, i.e. no
information) and mismatch = fraction of sites with sign(ŝ) ≠ s. Errors: block jackknife over chain
stretches (deterministic, so identical on any number of ranks).
"""
from __future__ import annotations

import numpy as np

from hpc_rg.io.ensemble import open_ensemble
from hpc_rg.reduce import diagnostics_common as dc
from hpc_rg.reduce.blocks import block_means
from hpc_rg.reduce.registry import Context, Result, reduction
from hpc_rg.reduce.stats import jackknife_blocks


def depths(model, kind: str) -> list[int]:
    if kind == "rbm":
        return [1]
    if kind == "autoencoder":
        return [len(model.sizes) - 1]
    return list(range(1, model.n_layers + 1))


def reconstruct(model, kind: str, spins: np.ndarray, depth: int) -> np.ndarray:
    """Spin-valued reconstructions (k, N) of ±1 configurations (k, N) through `depth` layers."""
    import torch
    x = torch.as_tensor(np.asarray(spins, dtype=np.float64))
    with torch.no_grad():
        if kind == "autoencoder":
            return model(x).numpy()
        if kind == "rbm":
            v = dc.to_units(x, model.units)
            return dc.to_spin(model.p_v_given_h(model.p_h_given_v(v)), model.units).numpy()
        v = dc.to_units(x, model.units)
        return dc.to_spin(model.reconstruct(v, depth), model.units).numpy()


@reduction("reconstructions")
def run_reconstructions(spec, ctx: Context) -> Result:
    model, meta = dc.load(ctx, spec.model, "analyze.reconstructions.model", ("dbn", "rbm", "autoencoder"))
    kind = meta["kind"]
    ds = depths(model, kind)
    res = Result(attrs={"kind": kind, "model_name": spec.model,
                        "method": "mean-field up/down passes; spin units; block jackknife"})
    with open_ensemble(ctx.ensemble_path) as ens:
        shape = tuple(ens.lattice_shape)
        ts = dc.t_indices(ens, spec.temperatures)

        def fn(x, where):
            s = x.reshape(x.shape[0], -1).astype(np.float64)
            cols = []
            for d in ds:
                r = reconstruct(model, kind, s, d)
                cols += [((s - r) ** 2).mean(axis=1), (np.sign(r) != s).mean(axis=1)]
            return np.stack(cols, axis=1)

        mse, mse_e, mis, mis_e = [], [], [], []
        for t in ts:
            bm, _ = block_means(ens, t, fn, ctx.world, spec.n_blocks, spec.batch, spec.max_samples)
            v, e = jackknife_blocks(lambda m: m, bm)
            mse.append(v[0::2]); mse_e.append(e[0::2])
            mis.append(v[1::2]); mis_e.append(e[1::2])
            x = np.asarray(ens.spins[t, 0, :min(spec.show, ens.n_samples)]).reshape(-1, int(np.prod(shape)))
            rows = [x.astype(np.float64)] + [reconstruct(model, kind, x, d) for d in ds]
            res.put(f"examples_T{len(mse) - 1}", np.stack(rows, axis=1).reshape((len(x), len(rows)) + shape))
        res.put("mse", mse, mse_e)
        res.put("mismatch", mis, mis_e)
        res.axes["temperatures"] = ens.temperatures[ts]
        res.axes["depth"] = np.array(ds)
        dc.provenance(res, ctx, ens, {"model": dc.model_path(ctx, spec.model, "analyze.reconstructions.model")})
    from hpc_rg.reduce import diagnostics_figures as dfig
    res.plot = dfig.plot_reconstructions
    return res

"""Reconstructions through a trained stack (seed 001 Fig. 3E, seed 003 Fig. 2) and their error per layer.

Depth d: the data go up d layers as conditional means E[h | v] and back down through the transposed
weights (`DBN.reconstruct`, the deterministic reconstruction of Hinton & Salakhutdinov used by seed 001);
an RBM has d = 1; an autoencoder reconstructs through its full depth only (its decoder is trained for
that path alone). In spin units (±1) per site: mse = ⟨(s − ŝ)²⟩ (0 perfect, 1 for ŝ ≡ 0, i.e. no
information) and mismatch = fraction of sites with sign(ŝ) ≠ s. Errors: block jackknife over chain
stretches (deterministic, so identical on any number of ranks).

Baselines (`pca` components listed, or always for an autoencoder): what a reconstruction must beat to show
more than trivial structure, on the same configurations and with the same errors:
  magnetization   every site = the configuration's magnetization m: MSE = 1 − m² (the best output that
                  knows m only; seed 003's SmallNet sits there)
  pca<k>          the projection on the top-k principal components (scikit-learn PCA), fitted on the other
                  half of the chains (even chains reconstruct with the fit to odd chains and vice versa: no
                  configuration is reconstructed by a fit that saw it; one chain: in-sample fit)
"""
from __future__ import annotations

import numpy as np

from hpc_rg.io.ensemble import open_ensemble
from hpc_rg.plugins import Plugin
from hpc_rg.reduce import trained_models as tm
from hpc_rg.reduce.blocks import block_means, t_indices
from hpc_rg.reduce.registry import Context, Result
from hpc_rg.reduce.stats import jackknife_blocks


PLUGINS = (Plugin("reduction", "reconstructions", "run_reconstructions",
                  spec="hpc_rg.reduce.model_specs:ReconstructionsSpec",
                  needs=("ensemble", "models"), imports=("torch", "sklearn"),
                  doc="reconstruction error through a trained stack per depth, with baselines"),)


def depths(model, kind: str) -> list[int]:
    if kind == "rbm":
        return [1]
    if kind == "autoencoder":
        return [len(model.sizes) - 1]
    return list(range(1, model.n_layers + 1))


def magnetization_only(spins: np.ndarray) -> np.ndarray:
    """Reconstructions (k, N) of ±1 configurations (k, N) by their own magnetization at every site."""
    s = np.asarray(spins, dtype=np.float64)
    return np.repeat(s.mean(axis=1, keepdims=True), s.shape[1], axis=1)


def fit_pca(spins: np.ndarray, k: int):
    """scikit-learn PCA with k components fitted to ±1 configurations (rows); deterministic (full SVD)."""
    from sklearn.decomposition import PCA
    return PCA(n_components=k, svd_solver="full").fit(np.asarray(spins, dtype=np.float64))


def pca_reconstruct(pca, spins: np.ndarray) -> np.ndarray:
    return pca.inverse_transform(pca.transform(np.asarray(spins, dtype=np.float64)))


def pca_folds(ens, t: int, k: int, max_fit: int) -> list:
    """PCA-k fitted to the even chains' and to the odd chains' configurations at temperature index t (at most
    `max_fit` each, the first samples of every chain); one fit to all when there is a single chain."""
    groups = [list(range(0, ens.n_chains, 2)), list(range(1, ens.n_chains, 2))] if ens.n_chains > 1 \
        else [[0]]
    fits = []
    for chains in groups:
        per = max(1, max_fit // len(chains))
        n_sites = int(np.prod(ens.lattice_shape))
        x = np.concatenate([np.asarray(ens.spins[t, c, :min(per, ens.n_samples)]).reshape(-1, n_sites)
                            for c in chains])
        fits.append(fit_pca(x, min(k, *x.shape)))
    return fits


def reconstruct(model, kind: str, spins: np.ndarray, depth: int) -> np.ndarray:
    """Spin-valued reconstructions (k, N) of ±1 configurations (k, N) through `depth` layers."""
    import torch
    x = torch.as_tensor(np.asarray(spins, dtype=np.float64))
    with torch.no_grad():
        if kind == "autoencoder":
            return model(x).numpy()
        if kind == "rbm":
            v = tm.to_units(x, model.units)
            return tm.to_spin(model.p_v_given_h(model.p_h_given_v(v)), model.units).numpy()
        v = tm.to_units(x, model.units)
        return tm.to_spin(model.reconstruct(v, depth), model.units).numpy()


def run_reconstructions(spec, ctx: Context) -> Result:
    model, meta = tm.load(ctx, spec.model, "analyze.reconstructions.model", ("dbn", "rbm", "autoencoder"))
    kind = meta["kind"]
    ds = depths(model, kind)
    res = Result(attrs={"kind": kind, "model_name": spec.model,
                        "method": "mean-field up/down passes; spin units; block jackknife"})
    with open_ensemble(ctx.ensemble_path) as ens:
        shape = tuple(ens.lattice_shape)
        ts = t_indices(ens, spec.temperatures)

        pcs = sorted(set(int(k) for k in spec.pca)) or ([25] if kind == "autoencoder" else [])
        names = (["magnetization"] + [f"pca{k}" for k in pcs]) if (pcs or kind == "autoencoder") else []

        def fn(x, where, folds=None):
            s = x.reshape(x.shape[0], -1).astype(np.float64)
            cols = []
            recs = [reconstruct(model, kind, s, d) for d in ds]
            if names:
                recs.append(magnetization_only(s))
                fold = [] if folds is None else (folds[1 - where[1] % 2] if len(folds) > 1 else folds[0])
                recs += [pca_reconstruct(p, s) for p in fold]
            for r in recs:
                cols += [((s - r) ** 2).mean(axis=1), (np.sign(r) != s).mean(axis=1)]
            return np.stack(cols, axis=1)

        mse, mse_e, mis, mis_e = [], [], [], []
        bmse, bmse_e, bmis, bmis_e = [], [], [], []
        for t in ts:
            # every rank fits the same PCA (same data, full SVD), so no broadcast is needed
            fits = [pca_folds(ens, t, k, spec.pca_fit_samples) for k in pcs]
            folds = [[f[i] for f in fits] for i in range(len(fits[0]))] if fits else None
            bm, _ = block_means(ens, t, lambda x, w: fn(x, w, folds), ctx.world, spec.n_blocks, spec.batch,
                                spec.max_samples)
            v, e = jackknife_blocks(lambda m: m, bm)
            nd = len(ds)
            mse.append(v[0:2 * nd:2]); mse_e.append(e[0:2 * nd:2])
            mis.append(v[1:2 * nd:2]); mis_e.append(e[1:2 * nd:2])
            if names:
                bmse.append(v[2 * nd::2]); bmse_e.append(e[2 * nd::2])
                bmis.append(v[2 * nd + 1::2]); bmis_e.append(e[2 * nd + 1::2])
            x = np.asarray(ens.spins[t, 0, :min(spec.show, ens.n_samples)]).reshape(-1, int(np.prod(shape)))
            rows = [x.astype(np.float64)] + [reconstruct(model, kind, x, d) for d in ds]
            res.put(f"examples_T{len(mse) - 1}", np.stack(rows, axis=1).reshape((len(x), len(rows)) + shape))
        if names:
            res.put("baseline_mse", bmse, bmse_e)
            res.put("baseline_mismatch", bmis, bmis_e)
            res.attrs["baselines"] = ",".join(names)     # the columns of baseline_mse, in order
            res.attrs["baseline_method"] = ("magnetization: every site = m; pca<k>: scikit-learn PCA fitted to the "
                                            "other half of the chains (even/odd), at most pca_fit_samples each")
        res.put("mse", mse, mse_e)
        res.put("mismatch", mis, mis_e)
        res.axes["temperatures"] = ens.temperatures[ts]
        res.axes["depth"] = np.array(ds)
        res.record_sources([ctx.ensemble_path], ens,
                           {"model": tm.model_path(ctx, spec.model, "analyze.reconstructions.model")})
    return res

"""Effective receptive fields of stacked networks (seed 001 App. B, seed 003 Fig. 3) and locality measures.

r^(1) = W^(1), r^(l) = r^(l−1) W^(l): column a of r^(l) (an L×L image) is how hidden unit a of layer l
reaches the visible spins. Locality of a field r over the periodic lattice, from its weight mass
w_i = |r_i| / Σ_j |r_j| (lengths in lattice spacings):
  radius of gyration  R_g = sqrt(Σ_i w_i |d(i, c)|²), d the minimum-image displacement, c the circular
                      (periodic) mean position of w along each axis; a b×b block of equal weights has
                      R_g² = 2 (b² − 1)/12, a uniform field sqrt(Σ_axes (L² − 1)/12)
  window fraction     the largest Σ w over any (periodic) b×b window; 1 for a field inside one window,
                      b²/N for a uniform field.
"Receptive fields grow with depth" becomes R_g (and the window needed) growing with the layer.
"""
from __future__ import annotations

import numpy as np

from hpc_rg.reduce import diagnostics_common as dc
from hpc_rg.reduce.registry import Context, Result, reduction


def weight_mass(fields: np.ndarray) -> np.ndarray:
    """|r| normalised to unit sum per field; fields (n, *shape)."""
    a = np.abs(np.asarray(fields, dtype=np.float64))
    tot = a.reshape(a.shape[0], -1).sum(axis=1)
    return a / np.where(tot > 0, tot, 1.0).reshape((-1,) + (1,) * (a.ndim - 1))


def periodic_centre(w: np.ndarray) -> np.ndarray:
    """Circular mean position (n, dim) of weight maps w (n, *shape) on the torus."""
    out = []
    for ax, L in enumerate(w.shape[1:]):
        marg = w.sum(axis=tuple(a + 1 for a in range(w.ndim - 1) if a != ax))
        th = 2 * np.pi * np.arange(L) / L
        sn, cs = marg @ np.sin(th), marg @ np.cos(th)
        ang = np.mod(np.arctan2(sn, cs), 2 * np.pi) * L / (2 * np.pi)
        # no preferred position (e.g. uniform weight): take the lattice middle, a definite convention
        out.append(np.where(np.hypot(sn, cs) < 1e-9 * marg.sum(axis=1), (L - 1) / 2, ang))
    return np.stack(out, axis=1)


def radius_of_gyration(fields: np.ndarray) -> np.ndarray:
    """R_g (n,) of each field's weight mass about its periodic centre (minimum-image distances)."""
    w = weight_mass(fields)
    c = periodic_centre(w)
    r2 = np.zeros(w.shape[0])
    for ax, L in enumerate(w.shape[1:]):
        marg = w.sum(axis=tuple(a + 1 for a in range(w.ndim - 1) if a != ax))
        d = np.mod(np.arange(L)[None, :] - c[:, ax:ax + 1] + L / 2, L) - L / 2
        r2 += (marg * d * d).sum(axis=1)
    return np.sqrt(r2)


def window_fraction(fields: np.ndarray, b: int) -> np.ndarray:
    """Largest weight mass inside any periodic b×...×b window, per field (n,)."""
    w = weight_mass(fields)
    box = w.copy()
    for ax in range(1, w.ndim):
        acc = np.zeros_like(box)
        for s in range(min(b, w.shape[ax])):
            acc += np.roll(box, -s, axis=ax)
        box = acc
    return box.reshape(w.shape[0], -1).max(axis=1)


def uniform_radius(shape) -> float:
    """R_g of a field of equal weights everywhere (the fully delocalised reference): Σ_axes (L² − 1)/12."""
    return float(np.sqrt(sum((L * L - 1) / 12 for L in shape)))


def block_side(n_visible: int, n_hidden: int, dim: int = 2) -> int:
    """The blocking factor b with n_hidden · b^dim ≈ n_visible (at least 1)."""
    return max(1, int(round((n_visible / max(n_hidden, 1)) ** (1.0 / dim))))


def layer_fields(model, kind: str, layer: int):
    """r^(layer) as an (n_visible, n_hidden) numpy array."""
    import torch
    with torch.no_grad():
        if kind == "rbm":
            return model.W.detach().numpy()
        return model.receptive_fields(layer).detach().numpy()


def locality_summary(fields: np.ndarray, b: int) -> dict:
    """Per-unit R_g and window fraction, with mean ± standard error over units and the median."""
    rg = radius_of_gyration(fields)
    wf = window_fraction(fields, b)
    n = len(rg)
    se = (lambda x: float(x.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0)
    return {"radius": rg, "window_fraction": wf, "radius_mean": (float(rg.mean()), se(rg)),
            "window_fraction_mean": (float(wf.mean()), se(wf)), "radius_median": float(np.median(rg)),
            "window_fraction_median": float(np.median(wf))}


@reduction("receptive_fields")
def run_receptive_fields(spec, ctx: Context) -> Result:
    """Receptive fields per layer (images) and their locality distributions; every rank computes the same
    (the products of a few weight matrices are cheap), rank 0 writes them."""
    model, meta = dc.load(ctx, spec.model, "analyze.receptive_fields.model", ("dbn", "autoencoder", "rbm"))
    kind = meta["kind"]
    sizes = [model.n_visible, model.n_hidden] if kind == "rbm" else list(model.sizes)
    shape = tuple(meta.get("data", {}).get("lattice_shape") or ())
    if int(np.prod(shape or (0,))) != sizes[0]:
        side = dc.square_side(sizes[0])
        shape = (side, side) if side else (sizes[0],)
    n_layers = len(sizes) - 1
    layers = list(spec.layers) or list(range(1, n_layers + 1))
    if max(layers) > n_layers:
        from hpc_rg.config import ConfigError
        raise ConfigError(getattr(ctx.cfg, "file", ""), "analyze.receptive_fields.layers", list(spec.layers),
                          f"layers 1..{n_layers}")
    res = Result(attrs={"kind": kind, "model_name": spec.model, "sizes": np.array(sizes),
                        "method": "r^(l) = W^(1)...W^(l); weight mass |r|/Σ|r|; periodic centre and windows; "
                                  "errors: standard error over the layer's units"})
    wins, rm, re_, wm, we, med_r, med_w, uf = [], [], [], [], [], [], [], []
    srm, sre, swm, swe = [], [], [], []
    from hpc_rg.parallel import seed_sequence
    for i, l in enumerate(layers):
        r = layer_fields(model, kind, l)
        fields = r.T.reshape((r.shape[1],) + shape)
        b = int(spec.window[i] if i < len(spec.window) else block_side(sizes[0], sizes[l], len(shape)))
        s = locality_summary(fields, b)
        res.put(f"fields_layer{l}", fields[:spec.show])
        res.put(f"radius_layer{l}", s["radius"])
        res.put(f"window_fraction_layer{l}", s["window_fraction"])
        wins.append(b)
        rm.append(s["radius_mean"][0]); re_.append(s["radius_mean"][1])
        wm.append(s["window_fraction_mean"][0]); we.append(s["window_fraction_mean"][1])
        med_r.append(s["radius_median"]); med_w.append(s["window_fraction_median"])
        uf.append(b ** len(shape) / sizes[0])
        # Null model: the same weights on randomly permuted sites. The best b×b window of a random field
        # holds more than b²/N by chance, so "local" means "more local than the shuffled fields".
        perm = np.random.default_rng(seed_sequence(ctx.seed, l, purpose="analysis")).permutation(sizes[0])
        null = locality_summary(fields.reshape(len(fields), -1)[:, perm].reshape(fields.shape), b)
        srm.append(null["radius_mean"][0]); sre.append(null["radius_mean"][1])
        swm.append(null["window_fraction_mean"][0]); swe.append(null["window_fraction_mean"][1])
    res.put("radius_mean", rm, re_)
    res.put("window_fraction_mean", wm, we)
    res.put("radius_median", med_r)
    res.put("window_fraction_median", med_w)
    res.put("uniform_window_fraction", uf)
    res.put("shuffled_radius_mean", srm, sre)
    res.put("shuffled_window_fraction_mean", swm, swe)
    res.put("uniform_radius", uniform_radius(shape))
    res.axes["layer"] = np.array(layers)
    res.axes["window"] = np.array(wins)
    res.attrs["lattice_shape"] = np.array(shape)
    res.attrs["bins"] = spec.bins
    res.attrs["model_file"] = str(dc.model_path(ctx, spec.model, "analyze.receptive_fields.model"))
    from hpc_rg.reduce import diagnostics_figures as dfig
    res.plot = dfig.plot_receptive_fields
    return res

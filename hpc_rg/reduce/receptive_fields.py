"""Effective receptive fields of stacked networks (seed 001 App. B, seed 003 Fig. 3) and locality measures.

r^(1) = W^(1), r^(l) = r^(l−1) W^(l): column a of r^(l) (an L×L image) is how hidden unit a of layer l
reaches the visible spins. Locality of a field r over the periodic lattice, from its weight mass
w_i = |r_i| / Σ_j |r_j| (lengths in lattice spacings):
  radius of gyration  R_g = sqrt(Σ_i w_i |d(i, c)|²), d the minimum-image displacement, c the circular
                      (periodic) mean position of w along each axis; a b×b block of equal weights has
                      R_g² = 2 (b² − 1)/12, a uniform field sqrt(Σ_axes (L² − 1)/12)
  window fraction     the largest Σ w over any (periodic) b×b window; 1 for a field inside one window,
                      b²/N for a uniform field.
  peak blob area      the number of sites of the connected (nearest-neighbour, periodic) component of
                      {|r_i| >= max|r| / 2} that holds the maximum: the size of the one block a unit sees,
                      blind to the diffuse background that dominates R_g; b² for a b×b block of equal weights
  autocorrelation     half-width: the lag d (lattice spacings, linear interpolation between integer lags)
  half-width          where the periodic autocorrelation of the field's fluctuation δr = r − mean(r),
                      C(d) = Σ_i δr_i δr_{i+d} / Σ_i δr_i², averaged over the axis directions, first falls to
                      1/2; b(1 − b²/N)/2 for a b×b block of equal weights on N sites (b/2 on a large lattice),
                      ~1/2 for uncorrelated noise, L/2 (the largest lag, a cap) when it never falls to 1/2, 0
                      for a constant field. The mean is removed so that a uniform offset (which shuffling the
                      sites keeps) does not read as a large smooth structure.
"Receptive fields grow with depth" becomes R_g (and the window needed) growing with the layer; R_g of |r|
measures how spread a field's weight is (several small patches far apart give a large R_g), the blob
area and the autocorrelation half-width measure the size of the block a unit responds to.
"""
from __future__ import annotations

import numpy as np

from hpc_rg.plugins import Plugin
from hpc_rg.reduce import trained_models as tm
from hpc_rg.reduce.registry import Context, Result
from hpc_rg.reduce.seeding import rng_for
from hpc_rg.schema import ConfigError


PLUGINS = (Plugin("reduction", "receptive_fields", "run_receptive_fields",
                  spec="hpc_rg.reduce.model_specs:ReceptiveFieldsSpec", needs=("models",),
                  doc="receptive fields of a trained rbm/dbn/autoencoder per layer and their locality"),)


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


def _find(parent: np.ndarray, i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def peak_blob_area(fields: np.ndarray, level: float = 0.5) -> np.ndarray:
    """Sites (n,) in the connected component of {|r| >= level·max|r|} that holds the maximum of |r|; nearest-
    neighbour connectivity on the periodic lattice (labels of scipy.ndimage joined across the boundaries)."""
    from scipy import ndimage
    a = np.abs(np.asarray(fields, dtype=np.float64))
    out = np.zeros(a.shape[0], dtype=np.int64)
    for k, f in enumerate(a):
        top = f.max()
        if top <= 0:
            continue
        lab, n = ndimage.label(f >= level * top)
        parent = np.arange(n + 1)
        for ax in range(f.ndim):      # periodic boundaries: a component touching both faces is one blob
            lo, hi = np.take(lab, 0, axis=ax).ravel(), np.take(lab, -1, axis=ax).ravel()
            for u, v in zip(lo[(lo > 0) & (hi > 0)], hi[(lo > 0) & (hi > 0)]):
                ru, rv = _find(parent, int(u)), _find(parent, int(v))
                if ru != rv:
                    parent[max(ru, rv)] = min(ru, rv)
        roots = np.array([_find(parent, i) for i in range(n + 1)])
        peak = roots[lab.flat[int(np.argmax(f))]]
        out[k] = int(np.count_nonzero(roots[lab] == peak))
    return out


def autocorrelation_half_width(fields: np.ndarray) -> np.ndarray:
    """Half-width (n,) of each field's periodic autocorrelation along the axes (see the module docstring)."""
    r = np.asarray(fields, dtype=np.float64)
    axes = tuple(range(1, r.ndim))
    r = r - r.mean(axis=axes, keepdims=True)
    fr = np.fft.rfftn(r, axes=axes)
    c = np.fft.irfftn(fr * np.conj(fr), s=r.shape[1:], axes=axes)
    c0 = c.reshape(len(r), -1)[:, 0]
    c = c / np.where(c0 > 0, c0, 1.0).reshape((-1,) + (1,) * len(axes))
    # C along each axis direction (C(d) = C(-d)), averaged over the axes, lags 0..min(L)/2
    lmax = min(r.shape[1:]) // 2
    prof = np.mean([_axis_line(c, ax, lmax) for ax in axes], axis=0)
    out = np.full(len(r), float(lmax))
    for k, p in enumerate(prof):
        below = np.nonzero(p <= 0.5)[0]
        if c0[k] <= 1e-24 * max(1.0, float(np.abs(fields[k]).max()) ** 2):   # constant field: no structure
            out[k] = 0.0
        elif len(below):
            d = int(below[0])
            out[k] = d - 1 + (p[d - 1] - 0.5) / (p[d - 1] - p[d])
    return out


def _axis_line(c: np.ndarray, ax: int, lmax: int) -> np.ndarray:
    """c[:, 0, ..., d, ..., 0] for d = 0..lmax along array axis `ax` (n, lmax + 1)."""
    idx = [slice(None)] + [0] * (c.ndim - 1)
    idx[ax] = slice(0, lmax + 1)
    return c[tuple(idx)]


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
    """Per-unit R_g, window fraction, peak blob area and autocorrelation half-width, each with its mean ±
    standard error over units (`<q>_mean`) and its median (`<q>_median`)."""
    per_unit = {"radius": radius_of_gyration(fields), "window_fraction": window_fraction(fields, b),
                "blob_area": peak_blob_area(fields).astype(np.float64),
                "half_width": autocorrelation_half_width(fields)}
    n = len(fields)
    se = (lambda x: float(x.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0)
    out = dict(per_unit)
    for q, x in per_unit.items():
        out[f"{q}_mean"] = (float(x.mean()), se(x))
        out[f"{q}_median"] = float(np.median(x))
    return out


# per-unit measures stored per layer (`<q>_layer<l>`), with mean ± error, median and the shuffled-site null
MEASURES = ("radius", "window_fraction", "blob_area", "half_width")


def run_receptive_fields(spec, ctx: Context) -> Result:
    """Receptive fields per layer (images) and their locality distributions; every rank computes the same
    (the products of a few weight matrices are cheap), rank 0 writes them."""
    model, meta = tm.load(ctx, spec.model, "analyze.receptive_fields.model", ("dbn", "autoencoder", "rbm"))
    kind = meta["kind"]
    sizes = [model.n_visible, model.n_hidden] if kind == "rbm" else list(model.sizes)
    shape = tuple(meta.get("data", {}).get("lattice_shape") or ())
    if int(np.prod(shape or (0,))) != sizes[0]:
        side = tm.square_side(sizes[0])
        shape = (side, side) if side else (sizes[0],)
    n_layers = len(sizes) - 1
    layers = list(spec.layers) or list(range(1, n_layers + 1))
    if max(layers) > n_layers:
        raise ConfigError(getattr(ctx.cfg, "file", ""), "analyze.receptive_fields.layers", list(spec.layers),
                          f"layers 1..{n_layers}")
    res = Result(attrs={"kind": kind, "model_name": spec.model, "sizes": np.array(sizes),
                        "method": "r^(l) = W^(1)...W^(l); weight mass |r|/Σ|r|; periodic centre and windows; "
                                  "peak blob: connected |r| >= max/2 around the maximum (sites); half-width: "
                                  "lag where the periodic autocorrelation of r falls to 1/2; "
                                  "errors: standard error over the layer's units; null: the same weights on "
                                  "shuffled sites"})
    wins, uf = [], []
    stats = {}    # "<q>_mean" / "shuffled_<q>_mean" -> ([values], [errors]); "<q>_median" -> [values]
    for i, l in enumerate(layers):
        r = layer_fields(model, kind, l)
        fields = r.T.reshape((r.shape[1],) + shape)
        b = int(spec.window[i] if i < len(spec.window) else block_side(sizes[0], sizes[l], len(shape)))
        s = locality_summary(fields, b)
        res.put(f"fields_layer{l}", fields[:spec.show])
        for q in MEASURES:
            res.put(f"{q}_layer{l}", s[q])
        wins.append(b)
        uf.append(b ** len(shape) / sizes[0])
        # Null model: the same weights on randomly permuted sites. The best b×b window of a random field
        # holds more than b²/N by chance, so "local" means "more local than the shuffled fields".
        perm = rng_for(ctx.seed, "receptive_fields", "shuffle", l).permutation(sizes[0])
        null = locality_summary(fields.reshape(len(fields), -1)[:, perm].reshape(fields.shape), b)
        for q in MEASURES:
            for key, src in ((f"{q}_mean", s), (f"shuffled_{q}_mean", null)):
                v, e = stats.setdefault(key, ([], []))
                v.append(src[f"{q}_mean"][0]); e.append(src[f"{q}_mean"][1])
            stats.setdefault(f"{q}_median", ([], None))[0].append(s[f"{q}_median"])
    for key, (v, e) in stats.items():
        if e is None:
            res.put(key, v)
        else:
            res.put(key, v, e)
    res.put("uniform_window_fraction", uf)
    res.put("uniform_radius", uniform_radius(shape))
    res.axes["layer"] = np.array(layers)
    res.axes["window"] = np.array(wins)
    res.attrs["lattice_shape"] = np.array(shape)
    res.attrs["bins"] = spec.bins
    res.attrs["model_file"] = str(tm.model_path(ctx, spec.model, "analyze.receptive_fields.model"))
    return res

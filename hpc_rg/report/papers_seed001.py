"""Seed 001 (Mehta & Schwab 2014, arXiv:1410.3831) beside our run: `rows(run_dir)` for `[report] paper = "seed001"`.

The paper's claims are mostly qualitative, so each row states what the paper shows and puts our number next
to the baseline that would contradict it:
  Fig. 3 A   architecture 1600-400-100-25 (compression 64) trained on 40x40 samples at J/T = 0.408;
             the samples themselves are checked against Kaufman's exact energy of the same finite torus.
  Fig. 3 B-D receptive fields r^(l) = W^(1)...W^(l) are local blocks whose size grows with the layer: our
             b x b window weight fraction (b = blocking factor of the layer) against the value b^2/N of a
             field spread uniformly (no locality), and three size measures per layer: the radius of gyration
             of |r| (spread of the weight, dominated by the diffuse background), the peak blob area (the
             block a unit sees) and the autocorrelation half-width (the smoothness length), each against
             the same weights on shuffled sites.
  Fig. 3 E   reconstructions "qualitatively reproduce the macroscopic features": our spin mismatch of the
             reconstruction from the top layer against 1/2 (no information kept).
  Fig. 2     1D decimation network: tanh J^(n+1) = tanh^2 J^(n) (exact); our couplings measured from each
             layer's nearest-neighbour correlation against the exact flow, with the pull.
Pulls are |ours - paper| / combined error for numbers the paper (or exact theory) states; '' otherwise.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from hpc_rg.report.papers import pull, verdict, row as _row, results_of as _results, value_error as _val
from hpc_rg.summary import _fmt

PAPER_LAYERS = (1600, 400, 100, 25)
PAPER_K = 0.408


def _energy_rows(run: Path, res: dict) -> list[dict]:
    obs = res.get("observables")
    ens = run / "ensemble.h5"
    if obs is None or not ens.exists() or "temperatures" not in obs["axes"]:
        return []
    from hpc_rg.io.ensemble import open_ensemble
    with open_ensemble(ens) as e:
        shape = tuple(int(x) for x in e.lattice_shape)
        model = e.attrs.get("model")
        J = float(e.attrs.get("J", 1.0))
    if model != "ising2d" or len(shape) != 2:
        return []
    from hpc_rg.exact.kaufman import energy as kaufman_energy
    out = []
    T = np.asarray(obs["axes"]["temperatures"], dtype=float)
    E, dE = _val(obs, "energy")
    for i, t in enumerate(T):
        exact = float(kaufman_energy(shape, float(t), J))
        p = pull(float(E.reshape(len(T), -1)[i, 0]), float(dE.reshape(len(T), -1)[i, 0]), exact)
        out.append(_row(f"energy per site, {shape[0]}x{shape[1]} at J/T = {J / t:.4g}",
                        _fmt(float(E.reshape(len(T), -1)[i, 0]), float(dE.reshape(len(T), -1)[i, 0])),
                        f"{exact:.6f} (Kaufman, exact)", p,
                        "checks the training samples (the paper used 'standard equilibrium Monte Carlo'): "
                        + verdict(p, "under-thermalised or biased sampler")))
    if abs(J / T[0] - PAPER_K) > 1e-3 or shape != (40, 40):
        out.append(_row("lattice and coupling", f"{shape[0]}x{shape[1]}, J/T = {J / T[0]:.4g}",
                        "40x40, J/T = 0.408", "", "scaled-down (quick) job: not the paper's lattice"))
    return out


def _receptive_rows(res: dict) -> list[dict]:
    rf = res.get("receptive_fields")
    if rf is None:
        return []
    sizes = [int(x) for x in np.asarray(rf["attrs"].get("sizes", []))]
    out = []
    if sizes:
        same = tuple(sizes) == PAPER_LAYERS
        out.append(_row("architecture (compression N_v / N_top)", f"{'-'.join(map(str, sizes))} ({sizes[0] // sizes[-1]})",
                        "1600-400-100-25 (64)", "",
                        "as in the paper" if same else "each layer keeps 1/4 of the units as in the paper; "
                        "fewer units because the lattice is smaller"))
    layers = np.asarray(rf["axes"]["layer"]).astype(int)
    windows = np.asarray(rf["axes"]["window"]).astype(int)
    wf, wfe = _val(rf, "window_fraction_mean")
    uni = np.asarray(rf["uniform_window_fraction"], dtype=float).reshape(-1)
    rad, rade = _val(rf, "radius_mean")
    ur = float(np.asarray(rf["uniform_radius"]).reshape(-1)[0])
    # the null: each field's own weights on shuffled sites (the best-window statistic of a non-local field
    # exceeds the uniform b^2/N because it takes a maximum over windows); uniform when the run predates it
    if "shuffled_window_fraction_mean" in rf:
        nf, nfe = _val(rf, "shuffled_window_fraction_mean")
        nr, _ = _val(rf, "shuffled_radius_mean")
        null_name = "the same weights on shuffled sites"
    else:
        nf, nfe, nr, null_name = uni, np.zeros_like(uni), np.full_like(rad, ur), "uniform"
    for i, l in enumerate(layers):
        err = math.hypot(wfe[i], nfe[i])
        sig = (wf[i] - nf[i]) / err if err > 0 else math.inf
        local = sig > 4
        out.append(_row(f"receptive fields, layer {l}: weight fraction in the best {windows[i]}x{windows[i]} window",
                        _fmt(wf[i], wfe[i]), f"local blocks (Fig. 3B-C); no locality ({null_name}) = "
                        + (f"{_fmt(nf[i], nfe[i])} (uniform {uni[i]:.4f})" if nfe[i] > 0 else f"{nf[i]:.4f}"), "",
                        f"{wf[i] / nf[i]:.2f}x the non-local value ({sig:.0f}σ above it): "
                        + ("local, as in the paper" if local else "NOT local: under-trained (too few epochs) or "
                           "L1 too weak to break all-to-all coupling")))
    grows = bool(np.all(np.diff(rad) > -2 * np.hypot(rade[1:], rade[:-1])))
    out.append(_row("receptive-field radius of gyration by layer",
                    "; ".join(_fmt(r, e) for r, e in zip(rad, rade)),
                    "grows with layer (Fig. 3D); "
                    + (f"{null_name}: " + "; ".join(f"{x:.2f}" for x in nr) + "; " if nfe.any() else "")
                    + f"uniform = {ur:.3f}", "",
                    ("grows (non-decreasing within 2σ), as in the paper" if grows else
                     "does NOT grow with depth: every layer's fields are more compact than their shuffled sites, and "
                     "deeper fields more so (single blobs), while first-layer fields are several small patches spread "
                     "over the lattice (radius near the null); the radius of |r| measures spread, not the block "
                     "size a unit sees")
                    + "; the radius is bounded by the uniform value on a torus"))
    out += _blob_rows(rf, layers)
    return out


# What each size measure sees (the rows say it, so a reader does not take one for another):
BLOB_MEANING = {
    "blob_area": ("receptive-field peak blob area by layer (sites with |r| >= max/2 connected to the maximum)",
                  "the size of the one block a unit sees (Fig. 3D's visual block size), blind to the diffuse "
                  "background"),
    "half_width": ("receptive-field autocorrelation half-width by layer (lattice spacings)",
                   "the length over which a field's fluctuation is smooth (a b x b block: ~b/2; noise: 1/2), whatever the "
                   "number of blobs"),
}


def _blob_rows(rf: dict, layers) -> list[dict]:
    """Peak blob area and autocorrelation half-width per layer against the shuffled-site null (absent in
    results written before these measures existed)."""
    out = []
    for q, (label, meaning) in BLOB_MEANING.items():
        if f"{q}_mean" not in rf:
            continue
        v, e = _val(rf, f"{q}_mean")
        nv, ne = _val(rf, f"shuffled_{q}_mean")
        med = np.asarray(rf.get(f"{q}_median", v), dtype=float).reshape(-1)
        grows = bool(np.all(np.diff(v) > 2 * np.hypot(e[1:], e[:-1])))
        above = bool(np.all(v - nv > 4 * np.hypot(e, ne)))
        out.append(_row(label, "; ".join(f"{_fmt(a, b)} (median {m:.4g})" for a, b, m in zip(v, e, med)),
                        "grows with layer (Fig. 3D); the same weights on shuffled sites: "
                        + "; ".join(_fmt(a, b) for a, b in zip(nv, ne)), "",
                        ("grows with the layer" if grows else "does NOT grow with the layer")
                        + (", every layer above the shuffled null (> 4σ)" if above else
                           ", NOT above the shuffled null in every layer") + f"; measures {meaning}"))
    return out


def _reconstruction_rows(res: dict) -> list[dict]:
    rc = res.get("reconstructions")
    if rc is None:
        return []
    mis, mise = _val(rc, "mismatch")
    mse, msee = _val(rc, "mse")
    depth = np.asarray(rc["axes"]["depth"]).astype(int)
    out = []
    for j, d in enumerate(depth):
        m, e = float(mis[0, j]), float(mise[0, j])
        out.append(_row(f"reconstruction from layer {d}: fraction of spins wrong",
                        _fmt(m, e), "qualitative reproduction (Fig. 3E); chance = 0.5", "",
                        f"mean squared error {_fmt(float(mse[0, j]), float(msee[0, j]))}; "
                        + ("keeps the large-scale pattern (well below chance)" if m + 4 * e < 0.5 else
                           "no better than chance")))
    return out


def _decimation_rows(res: dict) -> list[dict]:
    dn = res.get("decimation_network")
    if dn is None:
        return []
    K, Ke = _val(dn, "K_network")
    Kx = np.asarray(dn["K_exact"], dtype=float)
    T = np.asarray(dn["axes"]["temperatures"], dtype=float)
    Ls = np.asarray(dn["axes"]["chain_length"]).astype(int)
    out = []
    worst = []
    for i, t in enumerate(T):
        for n in range(1, K.shape[1]):
            p = pull(K[i, n], Ke[i, n], Kx[i, n])
            worst.append(float(p[:-1]) if p else 0.0)
            out.append(_row(f"1D decimation net: K^({n}) from K^(0) = {1 / t:.4g} (chain of {Ls[n]})",
                            _fmt(K[i, n], Ke[i, n]), f"{Kx[i, n]:.5f} (tanh K' = tanh² K)", p,
                            verdict(p, "the input samples' own deviation (layer-0 row) is carried up the network; "
                                       "jackknife errors from few blocks are themselves uncertain")))
        p0 = pull(K[i, 0], Ke[i, 0], Kx[i, 0])
        out.append(_row(f"1D chain samples: K^(0) from the nn correlation at K = {1 / t:.4g}",
                        _fmt(K[i, 0], Ke[i, 0]), f"{Kx[i, 0]:.5f} (input)", p0,
                        "checks the chain sampler itself: " + verdict(p0, "sampler bias or an underestimated error")))
    n_test = len(worst)
    if n_test:
        out.append(_row("1D decimation net: largest pull over all layers and couplings", f"{max(worst):.1f}σ",
                        "0 (exact mapping)", "",
                        f"{n_test} comparisons; Bonferroni 4σ-equivalent threshold "
                        f"{_bonferroni(n_test):.1f}σ"))
    return out


def _bonferroni(n: int, z: float = 4.0) -> float:
    from scipy.stats import norm
    return float(norm.isf(norm.sf(z) / max(n, 1)))


def rows(run_dir) -> list[dict]:
    run = Path(run_dir)
    res = _results(run)
    if not res:
        return [_row("(no results.h5)", "", "seed001", "", "run the analyze stage first")]
    out = _energy_rows(run, res) + _receptive_rows(res) + _reconstruction_rows(res) + _decimation_rows(res)
    return out or [_row("(nothing to compare)", "", "seed001", "",
                        "the job has none of observables, receptive_fields, reconstructions, decimation_network")]

"""Two-point functions as functions of distance, all pairs by FFT, averaged over translations and samples.

Spin:            G_s(r) = ⟨s_0 s_r⟩   (h = 0: ⟨s⟩ = 0 on a finite lattice, so this is already connected)
Energy density:  ε_i = s_i Σ_j J_ij s_j,   G_ε(r) = ⟨ε_0 ε_r⟩ − ⟨ε⟩²      (seed 002 eqs 4–5)
J_ij comes from the lattice object: nearest neighbours, or the long-range table `LongRange(...).couplings`
(J(d) over the L×L displacements, J(0) = 0; symmetric J(d) = J(−d), as the FFT convolution computes
Σ_j J(i − j) s_j).  Distances: r = 0..L/2 along the lattice axes (the x and y
profiles are averaged), or binned Euclidean minimum-image distance ("radial").
Per sample the translation average is irfft(|fft(x)|²)/N; memory stays bounded by one batch.
"""
from __future__ import annotations

import numpy as np

from hpc_rg.reduce.blocks import block_means
from hpc_rg.reduce.stats import jackknife_blocks


def lattice_from_attrs(attrs: dict, shape: tuple[int, ...]):
    """The lattice object an ensemble was sampled from (nearest-neighbour or long-range), from its attrs."""
    model = str(attrs.get("model", "ising2d"))
    J = float(attrs.get("J", 1.0))
    h = float(attrs.get("h", 0.0))
    if model == "longrange2d":
        from hpc_rg.lattice.longrange import LongRange
        images = attrs.get("images", "ewald")
        return LongRange(shape=tuple(shape), J=J, alpha=float(attrs.get("alpha", 3.0)), h=h, images=str(images))
    from hpc_rg.lattice.nearest import NearestNeighbour
    return NearestNeighbour(shape=tuple(shape), J=J, h=h)


def coupling_table(lattice) -> np.ndarray | None:
    """J(d) over displacements (shape of the lattice), or None for nearest neighbours (done by rolls)."""
    table = getattr(lattice, "couplings", None)
    return None if table is None else np.asarray(table, dtype=np.float64)


def energy_density(spins: np.ndarray, lattice, J_hat: np.ndarray | None = None) -> np.ndarray:
    """ε_i = s_i Σ_j J_ij s_j for a batch (k, *shape); each bond is seen from both ends (Σ_i ε_i = −2 H_bond)."""
    s = spins.astype(np.float64)
    axes = tuple(range(1, s.ndim))
    if J_hat is None:
        field = sum(np.roll(s, sh, axis=a) for a in axes for sh in (1, -1)) * float(lattice.J)
    else:
        field = np.fft.irfftn(np.fft.rfftn(s, axes=axes) * J_hat, s=s.shape[1:], axes=axes)
    return s * field


def translation_average(x: np.ndarray) -> np.ndarray:
    """(1/N) Σ_i x_i x_{i+r} for each sample of a batch (k, *shape) -> (k, *shape)."""
    axes = tuple(range(1, x.ndim))
    f = np.fft.rfftn(x, axes=axes)
    return np.fft.irfftn(f * np.conj(f), s=x.shape[1:], axes=axes) / np.prod(x.shape[1:])


def profile(maps: np.ndarray, mode: str = "axes") -> np.ndarray:
    """(k, *shape) correlation maps -> (k, R+1) profiles, R = min(shape)//2."""
    shape = maps.shape[1:]
    R = min(shape) // 2
    if len(shape) == 1:
        return maps[:, :R + 1]
    if mode == "axes":
        return 0.5 * (maps[:, 0, :R + 1] + maps[:, :R + 1, 0])
    dist = radial_distance(shape)
    bins = np.rint(dist).astype(int).ravel()
    keep = bins <= R
    cnt = np.bincount(bins[keep], minlength=R + 1)
    flat = maps.reshape(maps.shape[0], -1)[:, keep]
    out = np.zeros((maps.shape[0], R + 1))
    for k in range(maps.shape[0]):
        out[k] = np.bincount(bins[keep], weights=flat[k], minlength=R + 1) / np.maximum(cnt, 1)
    return out


def radial_distance(shape) -> np.ndarray:
    grids = np.meshgrid(*[np.minimum(np.arange(n), n - np.arange(n)) for n in shape], indexing="ij")
    return np.sqrt(sum(g.astype(np.float64) ** 2 for g in grids))


def correlator_blocks(ens, t: int, world, lattice, n_blocks: int = 32, batch: int = 32, mode: str = "axes",
                      max_samples: int = 0) -> np.ndarray:
    """Block means of [G_s profile (R+1), ⟨ε_0 ε_r⟩ profile (R+1), ε̄, m², |m|] at temperature index t."""
    table = coupling_table(lattice)
    J_hat = None if table is None else np.fft.rfftn(table)

    def fn(x, where):
        s = x.astype(np.float64)
        eps = energy_density(x, lattice, J_hat)
        axes = tuple(range(1, s.ndim))
        m = s.mean(axis=axes)
        return np.concatenate([profile(translation_average(s), mode), profile(translation_average(eps), mode),
                               eps.mean(axis=axes)[:, None], (m * m)[:, None], np.abs(m)[:, None]], axis=1)

    means, _ = block_means(ens, t, fn, world, n_blocks=n_blocks, batch=batch, max_samples=max_samples)
    return means


def split(mean: np.ndarray) -> dict:
    """Derived correlators from a (block-)mean vector of `correlator_blocks`."""
    R1 = (mean.shape[-1] - 3) // 2
    gs = mean[..., :R1]
    ge = mean[..., R1:2 * R1] - mean[..., 2 * R1:2 * R1 + 1] ** 2
    return {"G_s": gs, "G_eps": ge, "eps": mean[..., 2 * R1], "m2": mean[..., 2 * R1 + 1],
            "abs_m": mean[..., 2 * R1 + 2]}


def correlators(blocks: np.ndarray) -> dict:
    """{name: (value, error)} for G_s(r), G_ε(r), ⟨ε⟩, ⟨m²⟩, ⟨|m|⟩ by block jackknife."""
    out = {}
    for k in ("G_s", "G_eps", "eps", "m2", "abs_m"):
        out[k] = jackknife_blocks(lambda x, k=k: split(x)[k], blocks)
    return out


def exact_chain_correlation(L: int, K: float, r: np.ndarray) -> np.ndarray:
    """⟨s_0 s_r⟩ on a periodic Ising chain of L sites at K = J/T: (t^r + t^{L−r}) / (1 + t^L), t = tanh K."""
    t = np.tanh(K)
    r = np.asarray(r, dtype=np.float64)
    return (t ** r + t ** (L - r)) / (1.0 + t ** L)

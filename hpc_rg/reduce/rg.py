"""Block-spin RG and Monte Carlo RG (Swendsen 1979) on sampled configurations.

Block transforms of a batch (k, Ly, Lx) of ±1 spins with block size b:
  majority   sign of the block sum, ties (even b²) broken by a seeded fair coin
  average    the block mean (real valued, b²+1 levels)
  decimation the top-left spin of each block
  weights    sign(Σ w s) for a kernel given as a (b, b) weight array (a learned convolution); ties by coin
MCRG: at levels n and n+1 (same configurations, n blockings of the original lattice) measure extensive
even operators (nn, nnn, third-neighbour, plaquette) and odd ones (magnetization, three-spin corners,
m × nn-like five-spin is omitted); A_ab = ⟨S_a^{n+1} S_b^n⟩_c, B_ac = ⟨S_a^{n+1} S_c^{n+1}⟩_c, the
linearised RG matrix T = B⁻¹ A, leading eigenvalue λ → y = ln λ / ln b (DESIGN.md, "Algorithms in brief").
1D: decimation of every other spin, K' from the decimated chain's nearest-neighbour correlation, against
the exact flow tanh K' = tanh² K (seed 001).
"""
from __future__ import annotations

import numpy as np

from hpc_rg.reduce.stats import jackknife_replicas, jackknife_error

EVEN = ("nn", "nnn", "third", "plaquette")
ODD = ("m", "three_spin")


def block(spins: np.ndarray, b: int, kernel: str | np.ndarray = "majority",
          rng: np.random.Generator | None = None) -> np.ndarray:
    """One block transform of a batch (k, Ly, Lx) -> (k, Ly//b, Lx//b) (float for "average", else int8)."""
    k, ly, lx = spins.shape
    x = spins[:, :ly // b * b, :lx // b * b].astype(np.float64).reshape(k, ly // b, b, lx // b, b)
    if isinstance(kernel, str) and kernel == "decimation":
        return spins[:, ::b, ::b][:, :ly // b, :lx // b].astype(np.int8)
    if isinstance(kernel, str) and kernel == "average":
        return x.mean(axis=(2, 4))
    if isinstance(kernel, str):
        if kernel != "majority":
            raise ValueError(f"unknown kernel {kernel!r}")
        tot = x.sum(axis=(2, 4))
    else:
        w = np.asarray(kernel, dtype=np.float64).reshape(b, b)
        tot = np.einsum("kiajb,ab->kij", x, w)
    rng = rng or np.random.default_rng(0)
    coin = np.where(rng.random(tot.shape) < 0.5, -1, 1)
    return np.where(np.abs(tot) < 1e-12, coin, np.sign(tot)).astype(np.int8)


def block_levels(spins: np.ndarray, b: int, levels: int, kernel="majority", seed: int = 0) -> list[np.ndarray]:
    """[level 0 (the input), level 1, ..., level `levels`] by repeated blocking (e.g. 64 → 32 → 16 → 8)."""
    rng = np.random.default_rng(seed)
    out = [spins]
    for _ in range(levels):
        out.append(block(out[-1], b, kernel, rng))
    return out


def level_observables(levels: list[np.ndarray]) -> np.ndarray:
    """Per configuration and level, [|m|, m², nearest-neighbour correlation, m⁴] (k, n_levels, 4) of the
    lattices (k, l, l) of `block_levels`: the block means the Binder ratio and ⟨|m|⟩ per level come from."""
    rows = []
    for s in levels:
        s = s.astype(np.float64)
        m = s.mean(axis=(1, 2))
        nn = 0.5 * (s * np.roll(s, -1, 1) + s * np.roll(s, -1, 2)).mean(axis=(1, 2))
        rows.append(np.stack([np.abs(m), m * m, nn, m ** 4], axis=1))
    return np.stack(rows, axis=1)


def operators(s: np.ndarray) -> np.ndarray:
    """Extensive operators (k, 6) of a batch (k, L, L): even (nn, nnn, third, plaquette), odd (m, three-spin)."""
    x = s.astype(np.float64)
    r = lambda dy, dx: np.roll(x, (-dy, -dx), axis=(1, 2))
    ax = (1, 2)
    nn = (x * (r(0, 1) + r(1, 0))).sum(ax)
    nnn = (x * (r(1, 1) + r(1, -1))).sum(ax)
    third = (x * (r(0, 2) + r(2, 0))).sum(ax)
    plaq = (x * r(0, 1) * r(1, 0) * r(1, 1)).sum(ax)
    m = x.sum(ax)
    # the four corner orientations of an L-shaped three-spin product
    three = (x * r(0, 1) * r(1, 0) + x * r(0, -1) * r(1, 0) + x * r(0, 1) * r(-1, 0) + x * r(0, -1) * r(-1, 0)).sum(ax)
    return np.stack([nn, nnn, third, plaq, m, three], axis=1)


def mcrg_primaries(levels: list[np.ndarray]) -> np.ndarray:
    """Per-sample primaries for MCRG over successive level pairs: for each n: S^n, S^{n+1},
    S^{n+1}⊗S^n, S^{n+1}⊗S^{n+1} (flattened) -> (k, n_pairs, 6 + 6 + 36 + 36)."""
    ops = [operators(l) for l in levels]
    rows = []
    for n in range(len(levels) - 1):
        a, c = ops[n], ops[n + 1]
        rows.append(np.concatenate([a, c, (c[:, :, None] * a[:, None, :]).reshape(len(a), -1),
                                    (c[:, :, None] * c[:, None, :]).reshape(len(a), -1)], axis=1))
    return np.stack(rows, axis=1)


def rg_matrix(mean: np.ndarray, which: tuple[int, ...]) -> np.ndarray:
    """T = B⁻¹ A restricted to operator indices `which`, from one level pair's mean primaries (84,)."""
    Sn, Sn1 = mean[:6], mean[6:12]
    cross = mean[12:48].reshape(6, 6) - np.outer(Sn1, Sn)
    auto = mean[48:84].reshape(6, 6) - np.outer(Sn1, Sn1)
    idx = np.array(which)
    A = cross[np.ix_(idx, idx)]
    B = auto[np.ix_(idx, idx)]
    return np.linalg.solve(B, A)


def leading_exponents(mean: np.ndarray, b: int, n_even: int = 4, n_odd: int = 2) -> np.ndarray:
    """(y_t, y_h) for every level pair from mean primaries (n_pairs, 84): ln λ_max / ln b of the even
    (first n_even even operators) and odd (first n_odd) RG matrices.  A level whose operators are degenerate
    (a singular B: e.g. a lattice blocked down to one site, or a map that makes every block equal) gives NaN
    rather than stopping the reduction."""
    out = []
    for row in np.atleast_2d(mean):
        ys = []
        for which in (tuple(range(n_even)), tuple(4 + i for i in range(n_odd))):
            try:
                lam = np.linalg.eigvals(rg_matrix(row, which))
            except np.linalg.LinAlgError:
                ys.append(np.nan)
                continue
            with np.errstate(invalid="ignore", divide="ignore"):
                ys.append(np.log(np.max(lam.real)) / np.log(b))
        out.append(ys)
    return np.array(out)


def mcrg_exponents(block_means: np.ndarray, b: int, n_even: int = 4, n_odd: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """(y (n_pairs, 2), jackknife error) from block means (n_blocks, n_pairs, 84)."""
    full, loo = jackknife_replicas(lambda m: leading_exponents(m, b, n_even, n_odd), block_means)
    return np.asarray(full), jackknife_error(np.array(loo))


# ------------------------------------------------------------------------------------------------------
# 1D decimation
# ------------------------------------------------------------------------------------------------------

def decimate_1d(spins: np.ndarray, b: int = 2) -> np.ndarray:
    """Keep every b-th spin of chains (k, L) -> (k, L//b)."""
    return spins[:, ::b]


def exact_decimation_flow(K: float, steps: int, b: int = 2) -> np.ndarray:
    """K_n with tanh K_{n+1} = tanh^b K_n (infinite chain), n = 0..steps."""
    out = [K]
    for _ in range(steps):
        out.append(float(np.arctanh(np.tanh(out[-1]) ** b)))
    return np.array(out)


def chain_coupling(c: float, L: int) -> float:
    """Effective K of a periodic chain of L sites (L even) from its nearest-neighbour correlation c,
    inverting c = (t + t^{L−1}) / (1 + t^L), t = tanh K, which is increasing on (−1, 1) (bisection; noise may
    give c ≤ 0 and then K ≤ 0, so the jackknife keeps its spread near K = 0)."""
    lo, hi = -1.0 + 1e-15, 1.0 - 1e-15
    for _ in range(200):
        t = 0.5 * (lo + hi)
        if (t + t ** (L - 1)) / (1 + t ** L) < c:
            lo = t
        else:
            hi = t
    return float(np.arctanh(0.5 * (lo + hi)))


def decimation_primaries(spins: np.ndarray, steps: int, b: int = 2) -> np.ndarray:
    """Per-sample nearest-neighbour correlation of each decimation level (k, steps+1)."""
    out = []
    x = spins.astype(np.float64)
    for _ in range(steps + 1):
        out.append((x * np.roll(x, -1, axis=1)).mean(axis=1))
        x = decimate_1d(x, b)
    return np.stack(out, axis=1)

"""Critical Ising test ensembles made here (Wolff cluster updates in numba), so reduction tests do not depend
on the production samplers.  Periodic chains (shape (L,)) and tori (shape (Ly, Lx)); J = 1, h = 0, k_B = 1.

`wolff_samples(shape, T, n_samples, sweeps_per_sample, seed)` -> int8 (n_samples, *shape).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from numba import njit

from hpc_rg.io.ensemble import write_ensemble
from hpc_rg.lattice.nearest import NearestNeighbour

T_C = 2.0 / math.log(1.0 + math.sqrt(2.0))


def neighbour_table(shape: tuple[int, ...]) -> np.ndarray:
    idx = np.arange(int(np.prod(shape))).reshape(shape)
    cols = []
    for a in range(len(shape)):
        cols += [np.roll(idx, 1, axis=a).ravel(), np.roll(idx, -1, axis=a).ravel()]
    return np.stack(cols, axis=1).astype(np.int64)


@njit(cache=True)
def _cluster(spins, nbr, p_add, stack):
    """One Wolff cluster flip; returns its size."""
    n = spins.size
    i0 = np.random.randint(n)
    s0 = spins[i0]
    spins[i0] = -s0
    stack[0] = i0
    top = 1
    size = 1
    while top > 0:
        top -= 1
        i = stack[top]
        for q in range(nbr.shape[1]):
            j = nbr[i, q]
            if spins[j] == s0 and np.random.random() < p_add:
                spins[j] = -s0
                stack[top] = j
                top += 1
                size += 1
    return size


@njit(cache=True)
def _thermalize(spins, nbr, p_add, target_flips, seed):
    """Cluster updates until `target_flips` sites flipped (right from a hot start, where clusters are tiny);
    returns the mean cluster size of the second half (equilibrium estimate)."""
    np.random.seed(seed)
    stack = np.empty(spins.size, np.int64)
    flipped = 0
    late, late_n = 0, 0
    while flipped < target_flips:
        c = _cluster(spins, nbr, p_add, stack)
        flipped += c
        if flipped > target_flips // 2:
            late += c
            late_n += 1
    return late / max(late_n, 1)


@njit(cache=True)
def _wolff(spins, nbr, p_add, n_samples, clusters, seed, out):
    """A FIXED number of clusters between stored samples: a stopping rule that depends on cluster sizes
    would bias the stored states."""
    np.random.seed(seed)
    stack = np.empty(spins.size, np.int64)
    for k in range(n_samples):
        for c in range(clusters):
            _cluster(spins, nbr, p_add, stack)
        out[k] = spins


def wolff_samples(shape, T: float, n_samples: int, sweeps_per_sample: float = 1.0, seed: int = 0,
                  thermalize: float = 200.0) -> np.ndarray:
    """Configurations of the periodic NN Ising model at temperature T (Wolff): `thermalize` × N flipped sites
    first, then a fixed number of clusters ≈ sweeps_per_sample × N / ⟨|C|⟩ between stored samples."""
    shape = tuple(shape)
    n = int(np.prod(shape))
    rng = np.random.default_rng(seed)
    spins = rng.choice(np.array([-1, 1], np.int8), size=n)
    nbr = neighbour_table(shape)
    p_add = 1.0 - math.exp(-2.0 / T)
    mean_size = _thermalize(spins, nbr, p_add, int(thermalize * n), seed)
    clusters = max(1, int(math.ceil(sweeps_per_sample * n / mean_size)))
    out = np.empty((n_samples, n), np.int8)
    _wolff(spins, nbr, p_add, n_samples, clusters, seed + 1, out)
    return out.reshape((n_samples,) + shape)


def make_ensemble(path: Path, shape, temperatures, n_chains: int, n_samples: int, seed: int = 0,
                  sweeps_per_sample: float = 1.0, model: str | None = None) -> Path:
    """Write an `hpc_rg.ensemble/1` file of Wolff samples (one chain per seed)."""
    shape = tuple(shape)
    spins = np.empty((len(temperatures), n_chains, n_samples) + shape, np.int8)
    for t, T in enumerate(temperatures):
        for c in range(n_chains):
            spins[t, c] = wolff_samples(shape, T, n_samples, sweeps_per_sample, seed=seed + 1000 * t + 17 * c)
    lat = NearestNeighbour(shape)
    energy = lat.energy_per_site(spins.reshape((-1,) + shape)).reshape(spins.shape[:3])
    model = model or ("ising1d" if len(shape) == 1 else "ising2d")
    attrs = {"model": model, "J": 1.0, "h": 0.0, "alpha": 0.0, "algorithm": "wolff", "seed": seed,
             "job_toml": ""}
    return write_ensemble(path, temperatures, spins, energy=energy, attrs=attrs)


def exact_chain_samples(L: int, T: float, n_samples: int, seed: int = 0) -> np.ndarray:
    """Independent, exact samples of the periodic Ising chain (J = 1): bond variables τ_i = s_i s_{i+1} are
    iid with P(τ = 1) = (1 + t)/2, t = tanh(1/T), conditioned on Π τ = 1 by rejection; s_0 = ±1 uniformly."""
    rng = np.random.default_rng(seed)
    p = (1.0 + math.tanh(1.0 / T)) / 2.0
    out = np.empty((n_samples, L), np.int8)
    k = 0
    while k < n_samples:
        tau = np.where(rng.random((2 * (n_samples - k) + 8, L)) < p, 1, -1).astype(np.int8)
        tau = tau[np.prod(tau, axis=1) == 1][: n_samples - k]
        s = np.cumprod(np.concatenate([rng.choice(np.array([-1, 1], np.int8), (len(tau), 1)), tau[:, :-1]], axis=1),
                       axis=1)
        out[k:k + len(tau)] = s
        k += len(tau)
    return out


def make_chain_ensemble(path: Path, L: int, temperatures, n_chains: int, n_samples: int, seed: int = 0) -> Path:
    spins = np.stack([np.stack([exact_chain_samples(L, T, n_samples, seed + 100 * t + c) for c in range(n_chains)])
                      for t, T in enumerate(temperatures)])
    energy = NearestNeighbour((L,)).energy_per_site(spins.reshape(-1, L)).reshape(spins.shape[:3])
    attrs = {"model": "ising1d", "J": 1.0, "h": 0.0, "alpha": 0.0, "algorithm": "exact", "seed": seed, "job_toml": ""}
    return write_ensemble(path, temperatures, spins, energy=energy, attrs=attrs)


def kaufman_energy(L: int, T: float, dps: int = 40) -> float:
    """Exact energy per site of the L×L periodic 2D Ising model (J = 1) from Kaufman's partition function
    (Phys. Rev. 76, 1232 (1949)), by a central difference of ln Z in multiprecision (needs mpmath)."""
    import mpmath as mp
    mp.mp.dps = dps

    def lnZ(K):
        def gam(k):
            if k == 0:
                return 2 * K + mp.log(mp.tanh(K))
            return mp.acosh(mp.cosh(2 * K) * mp.coth(2 * K) - mp.cos(mp.pi * k / L))
        odd = [gam(2 * r + 1) for r in range(L)]
        even = [gam(2 * r) for r in range(L)]
        z = (mp.fprod([2 * mp.cosh(L * g / 2) for g in odd]) + mp.fprod([2 * mp.sinh(L * g / 2) for g in odd])
             + mp.fprod([2 * mp.cosh(L * g / 2) for g in even]) + mp.fprod([2 * mp.sinh(L * g / 2) for g in even]))
        return mp.log(z / 2 * (2 * mp.sinh(2 * K)) ** (L * L / 2))

    K, h = mp.mpf(1) / mp.mpf(T), mp.mpf("1e-15")
    return float(-(lnZ(K + h) - lnZ(K - h)) / (2 * h) / (L * L))

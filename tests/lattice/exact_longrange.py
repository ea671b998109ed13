"""Exact results for tiny long-range lattices by brute force, from the dense coupling matrix.

`enumerate_states` lists all 2^N configurations (N <= 20), `boltzmann` gives their weights, `exact_moments`
the thermal averages the samplers are checked against, and the two `*_kernel` functions the exact
one-sweep transition matrices of random-site Metropolis and of Swendsen-Wang (for N <= 6 or so).
State index convention: bit i of the index is site i (row-major), bit set = spin +1.
"""
from __future__ import annotations

import itertools

import numpy as np


def enumerate_states(n_sites: int) -> np.ndarray:
    """All 2^n configurations, int8 (2^n, n), row k = index k in the bit convention above."""
    if n_sites > 20:
        raise ValueError("exact enumeration is for n_sites <= 20")
    k = np.arange(1 << n_sites, dtype=np.int64)[:, None]
    bits = (k >> np.arange(n_sites, dtype=np.int64)[None, :]) & 1
    return (2 * bits - 1).astype(np.int8)


def state_index(spins: np.ndarray) -> np.ndarray:
    """Index of each configuration (last axes the lattice) in the enumeration order."""
    s = np.asarray(spins).reshape(*np.shape(spins)[:-2], -1) if np.ndim(spins) >= 2 else np.asarray(spins)
    n = s.shape[-1]
    return ((s > 0).astype(np.int64) << np.arange(n, dtype=np.int64)).sum(axis=-1)


def total_energies(coupling_matrix: np.ndarray, h: float, states: np.ndarray) -> np.ndarray:
    """H(s) = -sum_{i<j} J_ij s_i s_j - h sum_i s_i for every row of `states`."""
    s = states.astype(np.float64)
    return -0.5 * np.einsum("ni,ij,nj->n", s, coupling_matrix, s) - h * s.sum(axis=1)


def boltzmann(coupling_matrix: np.ndarray, h: float, beta: float):
    """(states, total energies, normalised Boltzmann weights)."""
    states = enumerate_states(coupling_matrix.shape[0])
    e = total_energies(coupling_matrix, h, states)
    w = np.exp(-beta * (e - e.min()))
    return states, e, w / w.sum()


def exact_moments(coupling_matrix: np.ndarray, h: float, beta: float) -> dict[str, float]:
    """<E>/N, <|m|>, <m^2>, <m> (m per site) by enumeration of all 2^N states."""
    states, e, p = boltzmann(coupling_matrix, h, beta)
    n = coupling_matrix.shape[0]
    m = states.sum(axis=1, dtype=np.int64) / n
    return {"energy": float(p @ e) / n, "abs_m": float(p @ np.abs(m)), "m2": float(p @ m ** 2),
            "m": float(p @ m)}


def metropolis_kernel(coupling_matrix: np.ndarray, h: float, beta: float) -> np.ndarray:
    """One sweep (N attempts at uniformly random sites) of single-spin Metropolis, as a 2^N x 2^N matrix."""
    n = coupling_matrix.shape[0]
    states = enumerate_states(n)
    e = total_energies(coupling_matrix, h, states)
    size = 1 << n
    single = np.zeros((size, size))
    idx = np.arange(size)
    for i in range(n):
        target = idx ^ (1 << i)
        acc = np.minimum(1.0, np.exp(-beta * (e[target] - e)))
        single[idx, target] += acc / n
        single[idx, idx] += (1.0 - acc) / n
    return np.linalg.matrix_power(single, n)


def swendsen_wang_kernel(coupling_matrix: np.ndarray, h: float, beta: float) -> np.ndarray:
    """One Swendsen-Wang sweep (bonds on aligned pairs with p = 1 - exp(-2 beta J_ij), every cluster takes
    sign sigma with probability exp(beta h sigma |C|) / (2 cosh(beta h |C|))), by enumerating bond sets."""
    n = coupling_matrix.shape[0]
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n) if coupling_matrix[i, j] != 0]
    states = enumerate_states(n)
    size = 1 << n
    kernel = np.zeros((size, size))
    for a in range(size):
        s = states[a]
        aligned = [(i, j) for i, j in pairs if s[i] == s[j]]
        p = [1.0 - np.exp(-2.0 * beta * coupling_matrix[i, j]) for i, j in aligned]
        for chosen in itertools.product((0, 1), repeat=len(aligned)):
            w = 1.0
            label = list(range(n))

            def root(x):
                while label[x] != x:
                    x = label[x]
                return x
            for (i, j), c, pij in zip(aligned, chosen, p):
                w *= pij if c else 1.0 - pij
                if c:
                    label[root(i)] = root(j)
            if w == 0.0:
                continue
            roots = sorted({root(x) for x in range(n)})
            members = {r: [x for x in range(n) if root(x) == r] for r in roots}
            for signs in itertools.product((-1, 1), repeat=len(roots)):
                q = w
                b = 0
                for r, sg in zip(roots, signs):
                    size_c = len(members[r])
                    q *= np.exp(beta * h * sg * size_c) / (2.0 * np.cosh(beta * h * size_c))
                    if sg > 0:
                        for x in members[r]:
                            b |= 1 << x
                kernel[a, b] += q
    return kernel

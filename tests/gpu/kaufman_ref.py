"""Exact reference values for the GPU sampler tests (and benchmarks/gpu.py).

Kaufman (Phys. Rev. 76, 1232, 1949): the partition function of the isotropic nearest-neighbour Ising model
on an m x n torus (m rows, n columns), K = beta J,
    Z = 1/2 (2 sinh 2K)^(mn/2) (Z1 + Z2 + Z3 + Z4),
    Z1 = prod_{r<n} 2 cosh(m g_{2r+1} / 2),   Z2 = prod 2 sinh(m g_{2r+1} / 2),
    Z3 = prod_{r<n} 2 cosh(m g_{2r} / 2),     Z4 = prod 2 sinh(m g_{2r} / 2),
    cosh g_l = cosh 2K coth 2K - cos(pi l / n)  (l >= 1),   g_0 = 2K + ln tanh K  (negative below T_c).
The energy per site is -(1/mn) d ln Z / d beta (central difference in K; ln Z is summed in logs with signs).
Checked here against exact enumeration (tests/gpu/test_exact_ref.py).
"""
from __future__ import annotations

import numpy as np


def log_z(K: float, m: int, n: int) -> float:
    l = np.arange(2 * n)
    c = np.cosh(2 * K) / np.tanh(2 * K) - np.cos(np.pi * l / n)
    g = np.arccosh(c)
    g[0] = 2 * K + np.log(np.tanh(K))
    odd, even = g[1::2], g[0::2]
    terms = []   # (sign, log|Z_i|)
    for gs in (odd, even):
        x = m * gs / 2
        ax = np.abs(x)
        # log(2 cosh x) and log|2 sinh x| without overflow
        terms.append((1.0, float(np.sum(ax + np.log1p(np.exp(-2 * ax))))))
        if np.any(x == 0):
            terms.append((0.0, -np.inf))
        else:
            terms.append((float(np.prod(np.sign(x))), float(np.sum(ax + np.log(-np.expm1(-2 * ax))))))
    top = max(t[1] for t in terms)
    total = sum(s * np.exp(lg - top) for s, lg in terms)
    return float(np.log(0.5) + m * n / 2 * np.log(2 * np.sinh(2 * K)) + top + np.log(total))


def energy_per_site(beta: float, m: int, n: int, J: float = 1.0) -> float:
    """Exact <E>/N on the m x n torus (H = -J sum_<ij> s_i s_j, each bond once), ferromagnetic J > 0."""
    K = beta * J
    dk = 1e-5 * max(K, 1e-3)
    dlnz = (log_z(K + dk, m, n) - log_z(K - dk, m, n)) / (2 * dk)
    return float(-J * dlnz / (m * n))


def enumerate_exact(beta: float, shape: tuple[int, int], J: float = 1.0, h: float = 0.0) -> tuple[float, float]:
    """(<E>/N, <M>/N) by summing all 2^N states (N <= 20) of the torus `shape`."""
    from hpc_rg.lattice.nearest import NearestNeighbour
    lat = NearestNeighbour(tuple(shape), J, h)
    n = lat.n_sites
    idx = np.arange(1 << n, dtype=np.int64)[:, None]
    states = (2 * ((idx >> np.arange(n)) & 1) - 1).astype(np.int8).reshape(-1, *shape)
    e = lat.energy_per_site(states)
    m = lat.magnetization(states)
    w = np.exp(-beta * n * (e - e.min()))
    return float((w * e).sum() / w.sum()), float((w * m).sum() / w.sum())

"""Exact Boltzmann averages of small Ising systems by enumerating all 2^N configurations.

H = -sum_{i<j} J_ij s_i s_j - h sum_i s_i = -1/2 s.J.s - h sum s, for any dense symmetric coupling matrix J
(zero diagonal; a periodic side of length 2 gives a doubled bond, i.e. J_ij = 2J).  Configurations are visited
in Gray-code order (one spin flip, O(N) energy update each), in numba, in two passes (ground energy first, so
Boltzmann weights never underflow).  Feasible to N ~ 24.  Configuration index convention (for
`boltzmann_probabilities` / `configurations`): bit i of the index set means s_i = -1, sites flattened row-major.
"""
from __future__ import annotations

import numpy as np
from numba import njit


def nearest_neighbour_couplings(shape: tuple[int, ...], J: float = 1.0) -> np.ndarray:
    """Dense J_ij of the periodic nearest-neighbour chain/torus (bonds as in `NearestNeighbour.bond_sum`)."""
    n = int(np.prod(shape))
    idx = np.arange(n).reshape(shape)
    c = np.zeros((n, n))
    for axis in range(len(shape)):
        nb = np.roll(idx, -1, axis=axis).ravel()
        np.add.at(c, (idx.ravel(), nb), J)
        np.add.at(c, (nb, idx.ravel()), J)
    return c


@njit(cache=True)
def _gray_pass(J, h, beta, e_min, accumulate, out):
    n = J.shape[0]
    s = np.ones(n)
    local = J.sum(axis=1)             # local field sum_j J_ij s_j
    e = -0.5 * local.sum() - h * n
    m = float(n)
    best = e
    acc = np.zeros(7)
    for step in range(1 << n):
        if step > 0:
            k = 0
            while not (step >> k) & 1:  # Gray code: flip the lowest set bit of the step number
                k += 1
            e += 2.0 * s[k] * (local[k] + h)
            for j in range(n):
                local[j] -= 2.0 * J[j, k] * s[k]
            m -= 2.0 * s[k]
            s[k] = -s[k]
        if e < best:
            best = e
        if accumulate:
            w = np.exp(-beta * (e - e_min))
            mm = m / n
            acc[0] += w
            acc[1] += w * e
            acc[2] += w * e * e
            acc[3] += w * abs(mm)
            acc[4] += w * mm * mm
            acc[5] += w * mm ** 4
            acc[6] += w * mm
    out[:] = acc
    return best


def exact_observables(J: np.ndarray, h: float, T: float) -> dict[str, float]:
    """Exact averages at temperature T: energy and specific heat per site, <m>, <|m|>, <m^2>, <m^4>, the Binder
    cumulant 1 - <m^4> / (3 <m^2>^2) (m the magnetisation per site) and ln Z."""
    J = np.ascontiguousarray(J, dtype=np.float64)
    n = J.shape[0]
    if J.shape != (n, n) or not np.allclose(J, J.T) or np.any(np.diag(J) != 0):
        raise ValueError("J must be a symmetric matrix with zero diagonal")
    if n > 26:
        raise ValueError(f"enumeration of 2^{n} states is not feasible")
    beta = 1.0 / T
    acc = np.zeros(7)
    e_min = _gray_pass(J, float(h), beta, 0.0, False, acc)
    _gray_pass(J, float(h), beta, e_min, True, acc)
    z = acc[0]
    e1, e2 = acc[1] / z, acc[2] / z
    m2, m4 = acc[4] / z, acc[5] / z
    return {
        "energy": e1 / n,
        "specific_heat": beta ** 2 * (e2 - e1 * e1) / n,
        "m": acc[6] / z,
        "abs_m": acc[3] / z,
        "m2": m2,
        "m4": m4,
        "binder": 1.0 - m4 / (3.0 * m2 * m2),
        "log_z": float(np.log(z) - beta * e_min),
    }


def configurations(n: int) -> np.ndarray:
    """All 2^n configurations, int8 (2^n, n), row k = index k in the module's convention."""
    k = np.arange(1 << n)[:, None]
    return (1 - 2 * ((k >> np.arange(n)[None, :]) & 1)).astype(np.int8)


def config_index(spins: np.ndarray) -> np.ndarray:
    """Index of configurations given as int8 (..., n) in the module's convention."""
    bits = (np.asarray(spins) < 0).astype(np.int64)
    return (bits << np.arange(bits.shape[-1])).sum(axis=-1)


def boltzmann_probabilities(J: np.ndarray, h: float, T: float) -> np.ndarray:
    """Exact probabilities of all 2^n configurations (n <= 20), indexed as `configurations`."""
    s = configurations(J.shape[0]).astype(np.float64)
    e = -0.5 * np.einsum("ki,ij,kj->k", s, J, s) - h * s.sum(axis=1)
    w = np.exp(-(e - e.min()) / T)
    return w / w.sum()

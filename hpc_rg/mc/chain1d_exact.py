"""Exact sampler of the periodic Ising chain with field: every update is an independent Boltzmann configuration.

H = -J sum_i s_i s_{i+1} - h sum_i s_i on a ring of N sites, transfer matrix T_{ab} = exp(bJ ab + bh (a+b)/2).
The configuration is drawn site by site from the trace decomposition Z = Tr T^N:
    P(s_0 = c) = (T^N)_cc / Tr T^N,
    P(s_k = b | s_{k-1} = a, s_0 = c) = T_ab (T^{N-k})_bc / (T^{N-k+1})_ac,   k = 1 .. N-1,
with powers of T written through its eigen-decomposition and scaled by lambda_max^m (no overflow at any N, beta).
The conditional probabilities depend only on (k, a, c): they are tabulated once per `run` (beta may change
between runs) as 63-bit thresholds, and a configuration costs N integer comparisons.
"""
from __future__ import annotations

import numpy as np
from numba import njit, uint64

from hpc_rg.mc.metropolis import ScalarSpinSampler, record
from hpc_rg.rng import step, thresholds
from hpc_rg.plugins import Plugin

PLUGINS = (
    Plugin("sampler", "exact", "ExactChain", models=("ising1d",),
           doc="independent configurations of the periodic chain drawn from the transfer matrix"),
)

_U1 = uint64(1)


def conditional_tables(n: int, beta: float, J: float, h: float) -> tuple[float, np.ndarray]:
    """(P(s_0 = +1), P[k, a, c] = P(s_k = +1 | s_{k-1} = a, s_0 = c)) with index 0 for +1, 1 for -1."""
    spin = np.array([1.0, -1.0])
    log_t = beta * J * np.outer(spin, spin) + 0.5 * beta * h * (spin[:, None] + spin[None, :])
    shift = log_t.max()
    t = np.exp(log_t - shift)
    lam, vec = np.linalg.eigh(t)
    ratio = lam / lam[np.argmax(np.abs(lam))]

    def power(m):  # T^m / lambda_max^m
        return (vec * ratio ** m) @ vec.T

    tn = power(n)
    p0 = tn[0, 0] / (tn[0, 0] + tn[1, 1])
    cond = np.empty((n, 2, 2))
    cond[0] = 0.5
    for k in range(1, n):
        tail = power(n - k)
        for a in range(2):
            for c in range(2):
                w = t[a, :] * tail[:, c]
                cond[k, a, c] = w[0] / (w[0] + w[1])
    return float(p0), cond


@njit(cache=True)
def draws(spins, thr0, thr, rng, n, every, J, h, energy, magnetization, bonds_mag):
    """n independent configurations; thr0, thr: thresholds of `conditional_tables`."""
    l = spins.shape[0]
    s0, s1, s2, s3 = rng[0], rng[1], rng[2], rng[3]
    for k in range(n):
        r, s0, s1, s2, s3 = step(s0, s1, s2, s3)
        c = 0 if (r >> _U1) < thr0 else 1
        spins[0] = 1 - 2 * c
        a = c
        bonds = np.int64(0)
        mag = np.int64(spins[0])
        for i in range(1, l):
            r, s0, s1, s2, s3 = step(s0, s1, s2, s3)
            b = 0 if (r >> _U1) < thr[i, a, c] else 1
            spins[i] = 1 - 2 * b
            bonds += np.int64(spins[i]) * spins[i - 1]
            mag += spins[i]
            a = b
        bonds += np.int64(spins[0]) * spins[l - 1]
        bonds_mag[0] = bonds
        bonds_mag[1] = mag
        record(energy, magnetization, k, every, J, h, bonds, mag, l)
    rng[0], rng[1], rng[2], rng[3] = s0, s1, s2, s3


class ExactChain(ScalarSpinSampler):
    """Sampler for `ising1d`: one update = one independent configuration from the transfer matrix."""
    update_unit = "independent configuration"

    def __init__(self, lattice, beta, seeds):
        if lattice.dim != 1:
            raise ValueError(f"ExactChain samples periodic chains only, got shape {lattice.shape}")
        super().__init__(lattice, beta, seeds)
        self._tables = None

    def run(self, n, energy, magnetization, every=1):
        key = (self.beta, self.lattice.J, self.lattice.h)
        if self._tables is None or self._tables[0] != key:
            p0, cond = conditional_tables(self.lattice.n_sites, self.beta, self.lattice.J, self.lattice.h)
            self._tables = (key, thresholds(np.array([p0]))[0], thresholds(cond))
        _, thr0, thr = self._tables
        draws(self.spins, thr0, thr, self.rng, int(n), int(every), float(self.lattice.J), float(self.lattice.h),
              energy[0], magnetization[0], self.bonds_mag)

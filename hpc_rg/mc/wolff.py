"""Wolff single-cluster updates for nearest-neighbour Ising chains and tori (J > 0).

One update = one cluster: pick a uniform random seed site, grow the cluster by adding each aligned neighbour
across a bond with probability p = 1 - exp(-2 beta J) (breadth first), then flip it.  With a field h the flip is
accepted with min(1, exp(-beta dE_h)), dE_h = 2 h s_0 |C| (the bond part of the move is symmetric, so this
Metropolis step on the field term keeps detailed balance).  Sampling is at fixed cluster-update counts.
The bond-sum change is counted over the cluster's boundary bonds, so energies stay exact in O(|C|).
A chain is handled as a (1, L) plane without vertical bonds.
"""
from __future__ import annotations

import numpy as np
from numba import njit, uint64

from hpc_rg.mc.metropolis import ScalarSpinSampler
from hpc_rg.mc.rng_extra import as_double, below, step, threshold

_U1 = uint64(1)


@njit(inline="always")
def _neighbour(y, x, d, ly, lx):
    if d == 0:
        return y, x + 1 if x < lx - 1 else 0
    if d == 1:
        return y, x - 1 if x > 0 else lx - 1
    if d == 2:
        return y + 1 if y < ly - 1 else 0, x
    return y - 1 if y > 0 else ly - 1, x


@njit(inline="always")
def _boundary(v, sg):
    """Bond-sum change of the bond to a neighbour holding v: members (|v| = 2) contribute nothing, outside
    spins -2 s_g v (the member end flips)."""
    return -2 * np.int64(sg) * v if v * v == 1 else np.int64(0)


@njit(cache=True)
def clusters(spins, thr, beta_h, rng, n, every, vertical, J, h, energy, magnetization, bonds_mag, qy, qx):
    """n single-cluster updates of an (Ly, Lx) int8 plane; returns the number of spins flipped.

    thr: 63-bit threshold of p = 1 - exp(-2 beta J); beta_h = beta * h; vertical: whether rows are coupled
    (False for a chain stored as one row); qy, qx: int32[N] queue of the cluster's sites.  While a cluster
    grows its members hold the mark 2 s_g in the spin array itself (no separate visited array), so the
    growth test "spin == s_g" also excludes members; the final pass restores +-1 and counts the boundary."""
    ly, lx = spins.shape
    nsite = ly * lx
    ndir = 4 if vertical else 2
    bonds = bonds_mag[0]
    mag = bonds_mag[1]
    s0, s1, s2, s3 = rng[0], rng[1], rng[2], rng[3]
    flipped = np.int64(0)
    for k in range(n):
        r, s0, s1, s2, s3 = step(s0, s1, s2, s3)
        y = below(r, ly)
        r, s0, s1, s2, s3 = step(s0, s1, s2, s3)
        x = below(r, lx)
        sg = spins[y, x]
        mark = np.int8(2 * sg)
        spins[y, x] = mark
        qy[0] = y
        qx[0] = x
        head = 0
        tail = 1
        while head < tail:
            y = qy[head]
            x = qx[head]
            head += 1
            for d in range(ndir):
                ny, nx = _neighbour(y, x, d, ly, lx)
                if spins[ny, nx] == sg:
                    r, s0, s1, s2, s3 = step(s0, s1, s2, s3)
                    if (r >> _U1) < thr:
                        spins[ny, nx] = mark
                        qy[tail] = ny
                        qx[tail] = nx
                        tail += 1
        accept = True
        if beta_h != 0.0:   # Metropolis on the field energy 2 h s_g |C|
            r, s0, s1, s2, s3 = step(s0, s1, s2, s3)
            accept = as_double(r) < np.exp(-2.0 * beta_h * sg * tail)
        # boundary bonds change sign: d(s_i s_j) = -2 s_g s_j for i in C, j outside (read before unmarking)
        dbond = np.int64(0)
        for q in range(tail):
            y = qy[q]
            x = qx[q]
            dbond += _boundary(np.int64(spins[y, x + 1 if x < lx - 1 else 0]), sg)
            dbond += _boundary(np.int64(spins[y, x - 1 if x > 0 else lx - 1]), sg)
            if vertical:
                dbond += _boundary(np.int64(spins[y + 1 if y < ly - 1 else 0, x]), sg)
                dbond += _boundary(np.int64(spins[y - 1 if y > 0 else ly - 1, x]), sg)
        new = np.int8(-sg if accept else sg)
        for q in range(tail):
            spins[qy[q], qx[q]] = new
        if accept:
            bonds += dbond
            mag -= 2 * np.int64(sg) * tail
            flipped += tail
        if (k + 1) % every == 0:
            t = (k + 1) // every - 1
            energy[t] = (-J * bonds - h * mag) / nsite
            magnetization[t] = mag / nsite
    bonds_mag[0] = bonds
    bonds_mag[1] = mag
    rng[0], rng[1], rng[2], rng[3] = s0, s1, s2, s3
    return flipped


class Wolff(ScalarSpinSampler):
    """Sampler: one update = one single-cluster update.  `flipped` counts spins flipped so far."""

    def __init__(self, lattice, beta, seeds):
        super().__init__(lattice, beta, seeds)
        if lattice.J <= 0:
            raise ValueError("Wolff needs a ferromagnetic coupling J > 0")
        n = lattice.n_sites
        self._qy = np.empty(n, np.int32)
        self._qx = np.empty(n, np.int32)
        self.flipped = 0

    def run(self, n, energy, magnetization, every=1):
        thr = threshold(-np.expm1(-2.0 * self.beta * self.lattice.J))
        self.flipped += clusters(self.plane(), thr, self.beta * self.lattice.h, self.rng, int(n), int(every),
                                 self.lattice.dim == 2, float(self.lattice.J), float(self.lattice.h),
                                 energy[0], magnetization[0], self.bonds_mag, self._qy, self._qx)

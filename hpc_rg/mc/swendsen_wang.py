"""Swendsen-Wang cluster updates for nearest-neighbour Ising chains and tori (J > 0).

One update = one sweep: every bond between aligned spins is activated with probability p = 1 - exp(-2 beta J),
clusters are labelled by union-find (`hpc_rg.mc.clusters`), and each cluster takes a random sign, ±1 with
probability 1/2 (with a field h: drawn from the heat bath in the field, exact for SW with h).  Bond and spin
sums are recounted after the flip (O(N), as the sweep itself).  A chain is handled as a (1, L) plane without
vertical bonds.
"""
from __future__ import annotations

import numpy as np
from numba import njit, uint64

from hpc_rg.mc.clusters import cluster_signs, find, reset, union
from hpc_rg.mc.metropolis import ScalarSpinSampler, record
from hpc_rg.rng import step, threshold
from hpc_rg.plugins import Plugin

PLUGINS = (
    Plugin("sampler", "swendsen_wang", "SwendsenWang", models=("ising1d", "ising2d"),
           doc="Swendsen-Wang multi-cluster sweeps"),
)

_U1 = uint64(1)


@njit(cache=True)
def sweeps(spins, thr, beta_h, rng, n, every, vertical, J, h, energy, magnetization, bonds_mag, parent, newspin):
    """n SW sweeps of an (Ly, Lx) int8 plane; parent: int32[N] forest, newspin: int8[N] scratch."""
    ly, lx = spins.shape
    nsite = ly * lx
    flat = spins.reshape(nsite)
    for k in range(n):
        reset(parent)
        s0, s1, s2, s3 = rng[0], rng[1], rng[2], rng[3]
        for y in range(ly):
            row = spins[y]
            dn = spins[y + 1 if y < ly - 1 else 0]
            base = y * lx
            ybase = (y + 1 if y < ly - 1 else 0) * lx
            for x in range(lx):
                s = row[x]
                xr = x + 1 if x < lx - 1 else 0
                # a draw for every bond: the aligned test alone would be a poorly predicted branch
                r, s0, s1, s2, s3 = step(s0, s1, s2, s3)
                if (row[xr] == s) & ((r >> _U1) < thr):
                    union(parent, base + x, base + xr)
                if vertical:
                    r, s0, s1, s2, s3 = step(s0, s1, s2, s3)
                    if (dn[x] == s) & ((r >> _U1) < thr):
                        union(parent, base + x, ybase + x)
        rng[0], rng[1], rng[2], rng[3] = s0, s1, s2, s3
        cluster_signs(parent, rng, newspin, 2.0 * beta_h)
        mag = np.int64(0)
        for i in range(nsite):
            v = newspin[find(parent, i)]
            flat[i] = v
            mag += v
        if (k + 1) % every == 0 or k == n - 1:
            bonds = np.int64(0)
            for y in range(ly):
                row = spins[y]
                dn = spins[y + 1 if y < ly - 1 else 0]
                for x in range(lx):
                    s = np.int64(row[x])
                    bonds += s * row[x + 1 if x < lx - 1 else 0]
                    if vertical:
                        bonds += s * dn[x]
            bonds_mag[0] = bonds
            bonds_mag[1] = mag
            record(energy, magnetization, k, every, J, h, bonds, mag, nsite)


class SwendsenWang(ScalarSpinSampler):
    def __init__(self, lattice, beta, seeds):
        super().__init__(lattice, beta, seeds)
        if lattice.J <= 0:
            raise ValueError("SwendsenWang needs a ferromagnetic coupling J > 0")
        n = lattice.n_sites
        self._parent = np.empty(n, np.int32)
        self._newspin = np.empty(n, np.int8)

    def run(self, n, energy, magnetization, every=1):
        thr = threshold(-np.expm1(-2.0 * self.beta * self.lattice.J))
        sweeps(self.plane(), thr, self.beta * self.lattice.h, self.rng, int(n), int(every), self.lattice.dim == 2,
               float(self.lattice.J), float(self.lattice.h), energy[0], magnetization[0], self.bonds_mag,
               self._parent, self._newspin)

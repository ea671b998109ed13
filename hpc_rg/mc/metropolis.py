"""Checkerboard single-spin Metropolis for nearest-neighbour Ising chains and square lattices.

One update = one sweep: all even sites, then all odd sites (for odd sides the sublattices touch across
the seam; the serial kernel still updates one spin at a time with current neighbours, so detailed balance
holds for any L).  Acceptance probabilities come from a table indexed by (spin, neighbour sum).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from hpc_rg.mc.rng import new_state, next_double
from hpc_rg.mc.sampler import Sampler


def acceptance_table(beta: float, J: float, h: float, coordination: int) -> np.ndarray:
    """table[(s+1)//2, (nb + z)//2] = min(1, exp(-beta dE)), dE = 2 s (J nb + h)."""
    z = coordination
    table = np.empty((2, z + 1))
    for si, s in enumerate((-1, 1)):
        for k in range(z + 1):
            nb = 2 * k - z
            table[si, k] = min(1.0, float(np.exp(-beta * 2.0 * s * (J * nb + h))))
    return table


@njit(cache=True)
def _sweeps_2d(spins, table, rng, n, every, J, h, energy, magnetization, bonds_mag):
    ly, lx = spins.shape
    nsite = ly * lx
    bonds = bonds_mag[0]
    mag = bonds_mag[1]
    for k in range(n):
        for parity in range(2):
            for i in range(ly):
                up = spins[i - 1 if i > 0 else ly - 1]
                dn = spins[i + 1 if i < ly - 1 else 0]
                row = spins[i]
                for j in range((i + parity) & 1, lx, 2):
                    s = row[j]
                    nb = up[j] + dn[j] + row[j - 1 if j > 0 else lx - 1] + row[j + 1 if j < lx - 1 else 0]
                    p = table[(s + 1) >> 1, (nb + 4) >> 1]
                    if p >= 1.0 or next_double(rng) < p:
                        row[j] = -s
                        bonds -= 2 * s * nb
                        mag -= 2 * s
        if (k + 1) % every == 0:
            t = (k + 1) // every - 1
            energy[t] = (-J * bonds - h * mag) / nsite
            magnetization[t] = mag / nsite
    bonds_mag[0] = bonds
    bonds_mag[1] = mag


@njit(cache=True)
def _sweeps_1d(spins, table, rng, n, every, J, h, energy, magnetization, bonds_mag):
    l = spins.shape[0]
    bonds = bonds_mag[0]
    mag = bonds_mag[1]
    for k in range(n):
        for parity in range(2):
            for j in range(parity, l, 2):
                s = spins[j]
                nb = spins[j - 1 if j > 0 else l - 1] + spins[j + 1 if j < l - 1 else 0]
                p = table[(s + 1) >> 1, (nb + 2) >> 1]
                if p >= 1.0 or next_double(rng) < p:
                    spins[j] = -s
                    bonds -= 2 * s * nb
                    mag -= 2 * s
        if (k + 1) % every == 0:
            t = (k + 1) // every - 1
            energy[t] = (-J * bonds - h * mag) / l
            magnetization[t] = mag / l
    bonds_mag[0] = bonds
    bonds_mag[1] = mag


def random_spins(rng_state: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """An infinite-temperature configuration drawn from a chain's own stream."""
    u = np.empty(int(np.prod(shape)))
    from hpc_rg.mc.rng import fill_doubles
    fill_doubles(rng_state, u)
    return np.where(u < 0.5, -1, 1).astype(np.int8).reshape(shape)


class CheckerboardMetropolis(Sampler):
    width = 1

    def __init__(self, lattice, beta, seeds):
        super().__init__(lattice, beta, seeds)
        (seed,) = seeds
        self.rng = new_state(seed)
        self.spins = random_spins(self.rng, lattice.shape)
        self._kernel = _sweeps_2d if lattice.dim == 2 else _sweeps_1d
        self._recount()

    def _recount(self):
        self.bonds_mag = np.array([int(self.lattice.bond_sum(self.spins)), int(self.spins.sum(dtype=np.int64))],
                                  dtype=np.int64)

    def run(self, n, energy, magnetization, every=1):
        table = acceptance_table(self.beta, self.lattice.J, self.lattice.h, self.lattice.coordination)
        self._kernel(self.spins, table, self.rng, n, every, self.lattice.J, self.lattice.h,
                     energy[0], magnetization[0], self.bonds_mag)

    def configurations(self):
        return self.spins[None].copy()

    def energy(self):
        bonds, mag = self.bonds_mag
        return np.array([(-self.lattice.J * bonds - self.lattice.h * mag) / self.lattice.n_sites])

    def state(self):
        return {"spins": self.spins[None].copy(), "rng": self.rng[None].copy()}

    def load_state(self, state):
        self.spins = np.ascontiguousarray(state["spins"][0], dtype=np.int8)
        self.rng = np.ascontiguousarray(state["rng"][0], dtype=np.uint64)
        self._recount()

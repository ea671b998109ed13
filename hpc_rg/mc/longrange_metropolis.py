"""Single-spin Metropolis for the long-range lattice (`hpc_rg.lattice.longrange.LongRange`).

One update = one sweep = N attempts at uniformly random sites (the seed-002 scheme; random sites keep the
sweep kernel reversible).  The local fields phi_i = sum_j J_ij s_j are kept in memory: an attempt costs O(1)
(dE = 2 s_i (phi_i + h)) and an accepted flip O(N) (every field changes by -2 s_i J_ij, one pass over the
translation-invariant table J(d)).  The fields are rebuilt by FFT at the start of every `run()` (so a
restored state continues bit for bit and rounding never accumulates across calls) and the energy is
recomputed from them after every sweep.

`naive_sweeps` is the seed's algorithm: the same chain, but dE comes from an O(N) sum per attempt; it is
the reference the benchmark compares against.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from hpc_rg.mc.alias import uniform_index
from hpc_rg.mc.metropolis import random_spins
from hpc_rg.rng import new_state, next_double
from hpc_rg.mc.sampler import SingleChain
from hpc_rg.plugins import Plugin

PLUGINS = (
    Plugin("sampler", "metropolis", "LongRangeMetropolis", models=("longrange2d",),
           doc="single-spin Metropolis with the long-range local field"),
)


@njit(inline="always")
def _add_row(field, base, xi, lx, c, row):
    """field[base + (xi + dx) % lx] += c * row[dx] for all dx, in two wrap-free runs (vectorisable)."""
    m = lx - xi
    for dx in range(m):
        field[base + xi + dx] += c * row[dx]
    for dx in range(m, lx):
        field[base + xi + dx - lx] += c * row[dx]


@njit(inline="always")
def _dot_row(spins, base, xi, lx, row):
    acc = 0.0
    m = lx - xi
    for dx in range(m):
        acc += row[dx] * spins[base + xi + dx]
    for dx in range(m, lx):
        acc += row[dx] * spins[base + xi + dx - lx]
    return acc


@njit(cache=True)
def _total_energy(spins, field, h):
    pair = 0.0
    mag = 0
    for i in range(spins.size):
        pair += spins[i] * field[i]
        mag += spins[i]
    return -0.5 * pair - h * mag, mag


@njit(cache=True)
def field_sweeps(spins, field, table, rng, n, every, beta, h, energy, magnetization, em):
    """n sweeps with kept local fields. spins int8[N] and field float64[N] (row-major), table J(d) (Ly, Lx);
    em[0] = total energy, em[1] = total magnetization (updated)."""
    ly, lx = table.shape
    nsite = ly * lx
    e_tot = em[0]
    mag = em[1]
    for k in range(n):
        for _ in range(nsite):
            i = uniform_index(rng, nsite)
            s = spins[i]
            de = 2.0 * s * (field[i] + h)
            if de <= 0.0 or next_double(rng) < math.exp(-beta * de):
                spins[i] = -s
                mag -= 2 * s
                yi = i // lx
                xi = i - yi * lx
                c = -2.0 * s
                for dy in range(ly):
                    y = yi + dy
                    if y >= ly:
                        y -= ly
                    _add_row(field, y * lx, xi, lx, c, table[dy])
        e_tot, m_int = _total_energy(spins, field, h)
        if (k + 1) % every == 0:
            t = (k + 1) // every - 1
            energy[t] = e_tot / nsite
            magnetization[t] = mag / nsite
    em[0] = e_tot
    em[1] = mag


@njit(cache=True)
def naive_sweeps(spins, table, rng, n, every, beta, h, energy, magnetization, em):
    """The seed's Metropolis: like `field_sweeps` (same random numbers, same chain up to rounding), but the
    local field of each attempted spin is summed afresh, O(N) per attempt."""
    ly, lx = table.shape
    nsite = ly * lx
    e_tot = em[0]
    mag = em[1]
    for k in range(n):
        for _ in range(nsite):
            i = uniform_index(rng, nsite)
            s = spins[i]
            yi = i // lx
            xi = i - yi * lx
            phi = 0.0
            for dy in range(ly):
                y = yi + dy
                if y >= ly:
                    y -= ly
                phi += _dot_row(spins, y * lx, xi, lx, table[dy])
            de = 2.0 * s * (phi + h)
            if de <= 0.0 or next_double(rng) < math.exp(-beta * de):
                spins[i] = -s
                mag -= 2 * s
                e_tot += de
        if (k + 1) % every == 0:
            t = (k + 1) // every - 1
            energy[t] = e_tot / nsite
            magnetization[t] = mag / nsite
    em[0] = e_tot
    em[1] = mag


class LongRangeMetropolis(SingleChain):
    """Random-site Metropolis with kept local fields; O(N) per accepted flip, for small lattices and checks."""

    def __init__(self, lattice, beta, seeds):
        super().__init__(lattice, beta, seeds)
        (seed,) = seeds
        self.rng = new_state(seed)
        self.spins = random_spins(self.rng, lattice.shape)
        self._table = np.ascontiguousarray(lattice.couplings)
        self._sync()

    def _sync(self):
        """Fields by FFT and the energy from them: a function of the spins alone."""
        self._field = np.ascontiguousarray(self.lattice.local_field(self.spins).ravel())
        flat = self.spins.ravel()
        e_tot, mag = _total_energy(flat, self._field, float(self.lattice.h))
        self._em = np.array([e_tot, mag], dtype=np.float64)

    def run(self, n, energy, magnetization, every=1):
        self._sync()
        flat = self.spins.reshape(-1)
        field_sweeps(flat, self._field, self._table, self.rng, int(n), int(every), float(self.beta),
                     float(self.lattice.h), energy[0], magnetization[0], self._em)

    def _spins_loaded(self):
        self._sync()

    def energy(self):
        return np.array([self._em[0] / self.lattice.n_sites])


"""Checkerboard single-spin Metropolis for nearest-neighbour Ising chains and L_y x L_x tori.

One update = one sweep: all even sites (i + j even), then all odd sites, row-major.  For odd sides the two
sublattices touch across the seam; the kernel updates one spin at a time with its current neighbours, so every
single-spin step satisfies detailed balance and the sweep leaves the Boltzmann distribution invariant for any L.

The kernel is shared with the heat bath (`hpc_rg.mc.heatbath`): both are "flip spin s with probability
P(s, neighbour sum)", only the table differs.  Speed (this is the hot loop of the suite):
- the table holds 63-bit integer thresholds (`hpc_rg.rng`), compared with a shifted uint64 draw;
- the flip is branch-free (spin, bond sum and magnetisation updated by multiplying with the 0/1 outcome), so
  the unpredictable accept/reject costs no mispredictions; one draw per attempt, also where P = 1;
- a row's sites of one parity are updated as a batch: neighbour sums first (a vectorisable loop without wrap
  logic, the periodic end sites peeled off), then the serial random draws, then the flips; xoshiro state is
  held in registers (`rng.step`).
Energies are per site, H = -J sum_<ij> s_i s_j - h sum_i s_i (k_B = 1).
"""
from __future__ import annotations

import numpy as np
from numba import njit, uint64

from hpc_rg.rng import fill_doubles, new_state
from hpc_rg.rng import step, thresholds
from hpc_rg.mc.sampler import SingleChain
from hpc_rg.plugins import Plugin

PLUGINS = (
    Plugin("sampler", "metropolis", "CheckerboardMetropolis", models=("ising1d", "ising2d"),
           doc="checkerboard single-spin Metropolis; one update = one sweep"),
)


@njit(inline="always")
def record(energy, magnetization, k, every, J, h, bonds, mag, n_sites):
    """After update k (0-based) of a kernel's loop: every `every`-th update, the energy per site
    (-J bonds - h mag) / N and magnetization per site of the exact [bond sum, spin sum] bookkeeping."""
    if (k + 1) % every == 0:
        t = (k + 1) // every - 1
        energy[t] = (-J * bonds - h * mag) / n_sites
        magnetization[t] = mag / n_sites


_U1 = uint64(1)


def flip_probability_metropolis(beta: float, J: float, h: float, coordination: int) -> np.ndarray:
    """P[(s+1)//2, (nb + z)//2] = min(1, exp(-beta dE)), dE = 2 s (J nb + h), nb the neighbour sum, except
    P = 1/2 at dE = 0.

    Why 1/2: with P(dE = 0) = 1 a checkerboard sweep moves every isolated domain wall deterministically, and
    the sweep chain is reducible (e.g. |N_A - N_B| of the two domain-wall types is conserved on a ring; the
    exact sweep matrices of rings and of 3x3 / 2x4 tori have several unit eigenvalues, and a 16-ring at T = 1
    gives e = -0.47 instead of -0.77).  Any P(0) in (0, 1] keeps detailed balance of each single-site step;
    1/2 makes the zero-energy moves random and the sweep ergodic (tested in tests/mc/test_detailed_balance.py)."""
    z = coordination
    p = np.empty((2, z + 1))
    for si, s in enumerate((-1, 1)):
        for k in range(z + 1):
            de = 2.0 * s * (J * (2 * k - z) + h)
            p[si, k] = 0.5 if de == 0 else 1.0 if de < 0 else float(np.exp(-beta * de))
    return p


@njit(inline="always")
def _site_index(s, nb, z1, zh):
    return np.uint8(((np.int64(s) + 1) >> 1) * z1 + ((nb + zh) >> 1))


@njit(inline="always")
def _row_pass(row, up, dn, j0, thr, rng, z1, zh, idx, nbs, flip):
    """Update the sites j0, j0 + 2, ... of one row; returns (change of bond sum, change of spin sum).

    Sites of one parity in a row are not neighbours of each other and their neighbours are not updated in
    this pass, so their flips are conditionally independent: gather all neighbour sums first (vectorisable),
    then draw the random words (the one serial part), then apply.  Exception: an odd row length puts the
    last even site next to site 0 across the seam; that site is updated on its own afterwards."""
    lx = row.shape[0]
    count = (lx - j0 + 1) >> 1
    deferred = (lx & 1) == 1 and j0 == 0
    if deferred:
        count -= 1
    for m in range(1, count - 1):
        j = 2 * m + j0
        nb = np.int64(up[j]) + dn[j] + row[j - 1] + row[j + 1]
        idx[m] = _site_index(row[j], nb, z1, zh)
        nbs[m] = nb
    for m in (0, count - 1):
        if m >= 0:
            j = 2 * m + j0
            nb = np.int64(up[j]) + dn[j] + row[j - 1 if j > 0 else lx - 1] + row[j + 1 if j < lx - 1 else 0]
            idx[m] = _site_index(row[j], nb, z1, zh)
            nbs[m] = nb
    s0, s1, s2, s3 = rng[0], rng[1], rng[2], rng[3]
    for m in range(count):
        r, s0, s1, s2, s3 = step(s0, s1, s2, s3)
        flip[m] = np.int8((r >> _U1) < thr[idx[m]])
    dbond = np.int64(0)
    dmag = np.int64(0)
    for m in range(count):
        j = 2 * m + j0
        s = np.int64(row[j])
        d = -2 * s * flip[m]
        row[j] = np.int8(s + d)
        dmag += d
        dbond += d * nbs[m]
    if deferred:
        j = lx - 1
        nb = np.int64(up[j]) + dn[j] + row[j - 1] + row[0]
        r, s0, s1, s2, s3 = step(s0, s1, s2, s3)
        s = np.int64(row[j])
        d = -2 * s * np.int64((r >> _U1) < thr[_site_index(s, nb, z1, zh)])
        row[j] = np.int8(s + d)
        dmag += d
        dbond += d * nb
    rng[0], rng[1], rng[2], rng[3] = s0, s1, s2, s3
    return dbond, dmag


@njit(cache=True)
def sweeps_2d(spins, thr, rng, n, every, J, h, energy, magnetization, bonds_mag):
    """n checkerboard sweeps of an (Ly, Lx) int8 torus; bonds_mag = [bond sum, spin sum] kept exact."""
    ly, lx = spins.shape
    nsite = ly * lx
    idx = np.empty(lx, np.uint8)
    nbs = np.empty(lx, np.int8)
    flip = np.empty(lx, np.int8)
    bonds = bonds_mag[0]
    mag = bonds_mag[1]
    for k in range(n):
        for parity in range(2):
            for i in range(ly):
                db, dm = _row_pass(spins[i], spins[i - 1 if i > 0 else ly - 1], spins[i + 1 if i < ly - 1 else 0],
                                   (i + parity) & 1, thr, rng, 5, 4, idx, nbs, flip)
                bonds += db
                mag += dm
        record(energy, magnetization, k, every, J, h, bonds, mag, nsite)
    bonds_mag[0] = bonds
    bonds_mag[1] = mag


@njit(cache=True)
def sweeps_1d(spins, thr, rng, n, every, J, h, energy, magnetization, bonds_mag):
    """n checkerboard sweeps of a periodic int8 chain (even sites, then odd sites)."""
    l = spins.shape[0]
    zero = np.zeros(l, np.int8)  # the chain is a single row without vertical neighbours
    idx = np.empty(l, np.uint8)
    nbs = np.empty(l, np.int8)
    flip = np.empty(l, np.int8)
    bonds = bonds_mag[0]
    mag = bonds_mag[1]
    for k in range(n):
        for parity in range(2):
            db, dm = _row_pass(spins, zero, zero, parity, thr, rng, 3, 2, idx, nbs, flip)
            bonds += db
            mag += dm
        record(energy, magnetization, k, every, J, h, bonds, mag, l)
    bonds_mag[0] = bonds
    bonds_mag[1] = mag


def random_spins(rng_state: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """An infinite-temperature configuration drawn from a chain's own stream."""
    u = np.empty(int(np.prod(shape)))
    fill_doubles(rng_state, u)
    return np.where(u < 0.5, -1, 1).astype(np.int8).reshape(shape)


class ScalarSpinSampler(SingleChain):
    """One chain (width 1) of int8 spins with its xoshiro state and exact [bond sum, spin sum] bookkeeping,
    so `energy()` is O(1); subclasses implement `run`.  Shared by the local and cluster samplers."""

    def __init__(self, lattice, beta, seeds):
        super().__init__(lattice, beta, seeds)
        (seed,) = seeds
        if lattice.dim not in (1, 2) or min(lattice.shape) < 2:
            raise ValueError(f"{type(self).__name__} needs a 1D or 2D lattice with sides >= 2, got {lattice.shape}")
        self.rng = new_state(seed)
        self.spins = random_spins(self.rng, lattice.shape)
        self._recount()

    def _recount(self):
        self.bonds_mag = np.array([int(self.lattice.bond_sum(self.spins)), int(self.spins.sum(dtype=np.int64))],
                                  dtype=np.int64)

    def plane(self) -> np.ndarray:
        """The spins as a 2D (Ly, Lx) view; a chain is one row (1, L)."""
        return self.spins.reshape((1,) * (2 - self.lattice.dim) + self.lattice.shape)

    def _spins_loaded(self):
        self._recount()

    def energy(self):
        bonds, mag = self.bonds_mag
        return np.array([(-self.lattice.J * bonds - self.lattice.h * mag) / self.lattice.n_sites])



class LocalSampler(ScalarSpinSampler):
    """Checkerboard single-spin flips; subclasses give the flip-probability table."""

    def flip_probability(self, beta: float) -> np.ndarray:
        raise NotImplementedError

    def run(self, n, energy, magnetization, every=1):
        thr = thresholds(self.flip_probability(self.beta)).ravel()
        kernel = sweeps_2d if self.lattice.dim == 2 else sweeps_1d
        kernel(self.spins, thr, self.rng, int(n), int(every), float(self.lattice.J), float(self.lattice.h),
               energy[0], magnetization[0], self.bonds_mag)


class CheckerboardMetropolis(LocalSampler):
    """Metropolis: flip with probability min(1, exp(-beta dE))."""

    def flip_probability(self, beta):
        return flip_probability_metropolis(beta, self.lattice.J, self.lattice.h, self.lattice.coordination)


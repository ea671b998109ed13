"""O(N)-per-sweep Swendsen-Wang for the long-range lattice (Fukui & Todo, J. Comput. Phys. 228, 2629 (2009)).

Swendsen-Wang activates each aligned pair (i, j) with probability p_ij = 1 - exp(-2 beta J_ij).  Naively that
is N(N-1)/2 Bernoulli trials per sweep.  Fukui-Todo instead give every pair an independent Poisson number
of "candidate" events with mean 2 beta J_ij (P(at least one) = p_ij exactly) and generate only the events:
each site i draws k_i ~ Poisson(beta S), S = sum_{d != 0} J(d), and places each event on the pair
(i, i + d) with d from a Walker alias table over J(d).  By Poisson thinning, the ordered pair (i, d) receives
Poisson(beta J(d)) events, so the unordered pair {i, j} receives Poisson(beta J(d) + beta J(-d)) =
Poisson(2 beta J_ij) events, independently of all other pairs.  An event on an aligned pair joins the two
sites (union-find).  Expected cost per sweep: N beta S events + N union-find operations = O(N), with no
cutoff on the interaction range and exact detailed balance (the SW joint-distribution argument holds
pair by pair).

Swendsen-Wang (all clusters each sweep) rather than Wolff: the Poisson event process is naturally a
global one (one pass over sites, no per-cluster cumulative bond probabilities), every site is visited once
per update, so "one update = one sweep" as for the local algorithms, and a field h is handled exactly by
choosing each cluster's new sign by heat bath (P(up) = 1 / (1 + exp(-2 beta h |C|))).  Requires J_ij >= 0.

Energies are recomputed by FFT (O(N log N)) whenever they are recorded and after every `run()`; the
magnetization is kept exactly as an integer.  `beta` is read at the start of every `run()`.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from hpc_rg.mc.alias import alias_draw, alias_table
from hpc_rg.mc.clusters import cluster_signs, find, reset, union
from hpc_rg.mc.metropolis import random_spins
from hpc_rg.rng import new_state, next_double
from hpc_rg.mc.sampler import SingleChain
from hpc_rg.plugins import Plugin

PLUGINS = (
    Plugin("sampler", "fukui_todo", "FukuiTodo", models=("longrange2d",),
           doc="Swendsen-Wang for long-range couplings in O(N) per sweep (Fukui & Todo)"),
)

_POISSON_CHUNK = 30.0   # inversion by sequential search for means up to this; larger means are split
_SNAPSHOT_BYTES = 1 << 22   # spin snapshots buffered per batched energy evaluation


def poisson_parameters(lam: float) -> tuple[int, float, float]:
    """(chunks, chunk mean mu, exp(-mu)) for `poisson_draw`: means above 30 are split into equal chunks."""
    chunks = max(1, int(math.ceil(lam / _POISSON_CHUNK)))
    mu = lam / chunks
    return chunks, mu, math.exp(-mu)


@njit(inline="always")
def poisson_draw(s, chunks, mu, p0):
    """A Poisson(chunks * mu) integer from stream `s` by sequential-search inversion, one uniform per chunk
    (a sum of independent Poisson variates is Poisson).  p0 = exp(-mu) is precomputed by the caller."""
    total = 0
    for _ in range(chunks):
        u = next_double(s)
        k = 0
        p = p0
        c = p0
        while u >= c and p > 0.0:
            k += 1
            p *= mu / k
            c += p
        total += k
    return total


@njit
def poisson(s, lam):
    """A Poisson(lam) integer (convenience form of `poisson_draw`, for tests and one-off draws)."""
    chunks = 1
    if lam > _POISSON_CHUNK:
        chunks = int(math.ceil(lam / _POISSON_CHUNK))
    mu = lam / chunks
    return poisson_draw(s, chunks, mu, math.exp(-mu))


@njit(cache=True)
def sw_sweep(spins, lx, prob, alias, pois, two_beta_h, rng, parent, newspin):
    """One Fukui-Todo Swendsen-Wang sweep of spins int8[N] (row-major, ly = N // lx); returns the total
    magnetization afterwards.  pois = (chunks, mu, exp(-mu)) of the per-site event count Poisson(beta S);
    parent int32[N] and newspin int8[N] are scratch."""
    chunks = np.int64(pois[0])
    mu = pois[1]
    p0 = pois[2]
    nsite = spins.size
    ly = nsite // lx
    reset(parent)
    for i in range(nsite):
        k = poisson_draw(rng, chunks, mu, p0)
        if k == 0:
            continue
        yi = i // lx
        xi = i - yi * lx
        si = spins[i]
        for _ in range(k):
            t = alias_draw(rng, prob, alias)       # displacement d = (t // lx, t % lx)
            ty = t // lx
            y = yi + ty
            if y >= ly:
                y -= ly
            x = xi + (t - ty * lx)
            if x >= lx:
                x -= lx
            j = y * lx + x
            if spins[j] == si:
                union(parent, i, j)
    # each cluster takes a new sign by heat bath in the field (probability 1/2 each at h = 0)
    cluster_signs(parent, rng, newspin, two_beta_h)
    mag = 0
    for i in range(nsite):
        v = newspin[find(parent, i)]
        spins[i] = v
        mag += v
    return mag


@njit(cache=True)
def sw_sweeps(spins, lx, prob, alias, pois, two_beta_h, rng, parent, newspin, n, every,
              snapshots, mags):
    """n sweeps; after sweep k (1-based) with k % every == 0 the spins go to snapshots[k // every - 1] and
    the total magnetization to mags[...] (the caller turns snapshots into energies by one batched FFT)."""
    mag = 0
    for k in range(n):
        mag = sw_sweep(spins, lx, prob, alias, pois, two_beta_h, rng, parent, newspin)
        if (k + 1) % every == 0:
            t = (k + 1) // every - 1
            snapshots[t, :] = spins
            mags[t] = mag
    return mag


class FukuiTodo(SingleChain):
    """Fukui-Todo O(N) Swendsen-Wang for `LongRange` lattices; one update = one sweep (all clusters)."""

    def __init__(self, lattice, beta, seeds):
        super().__init__(lattice, beta, seeds)
        (seed,) = seeds
        table = np.asarray(lattice.couplings, dtype=np.float64)
        if np.any(table < 0):
            raise ValueError("the Fukui-Todo cluster algorithm needs ferromagnetic couplings (J > 0)")
        ly, lx = lattice.shape
        self._lx = lx
        self._coupling_sum = float(table.sum())
        # compact tables keep the randomly accessed working set small (cache) on large lattices
        prob, alias = alias_table(table)
        self._prob, self._alias = prob, alias.astype(np.int32)
        self._parent = np.empty(lattice.n_sites, dtype=np.int32)
        self._newspin = np.empty(lattice.n_sites, dtype=np.int8)
        self.rng = new_state(seed)
        self.spins = random_spins(self.rng, lattice.shape)
        self._measure()

    def _measure(self):
        self._e = float(self.lattice.energy_per_site(self.spins))
        self._mag = int(self.spins.sum(dtype=np.int64))

    def run(self, n, energy, magnetization, every=1):
        beta = float(self.beta)
        pois = np.array(poisson_parameters(beta * self._coupling_sum), dtype=np.float64)
        two_beta_h = 2.0 * beta * float(self.lattice.h)
        flat = self.spins.reshape(-1)
        nsite = self.lattice.n_sites
        n, every = int(n), int(every)
        # measured sweeps go through a bounded snapshot buffer, whose energies take one batched FFT
        per_chunk = max(1, _SNAPSHOT_BYTES // nsite)
        done = 0
        while done < n:
            m = min(n - done, per_chunk * every)
            if done + m < n:
                m -= m % every          # chunks other than the last end on a measured sweep
            n_meas = m // every
            snaps = np.empty((n_meas, nsite), dtype=np.int8)
            mags = np.empty(n_meas, dtype=np.int64)
            self._mag = int(sw_sweeps(flat, self._lx, self._prob, self._alias, pois,
                                      two_beta_h, self.rng, self._parent, self._newspin, m, every, snaps, mags))
            if n_meas:
                t0 = done // every
                e = self.lattice.energy_per_site(snaps.reshape((n_meas,) + self.lattice.shape))
                energy[0, t0:t0 + n_meas] = e
                magnetization[0, t0:t0 + n_meas] = mags / nsite
            done += m
        if n:
            self._e = float(energy[0, n // every - 1]) if n % every == 0 else \
                float(self.lattice.energy_per_site(self.spins))

    def _spins_loaded(self):
        self._measure()

    def energy(self):
        return np.array([self._e])


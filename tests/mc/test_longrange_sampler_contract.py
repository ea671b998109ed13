"""Sampler contract for the long-range samplers: bit-exact state round trip, beta read at every run(),
energies kept without drift, and the random building blocks (alias table, Poisson) they rest on."""
import numpy as np
import pytest
from numba import njit
from scipy import stats

import hpc_rg.mc.longrange_cluster as lc
from hpc_rg.lattice.longrange import LongRange
from hpc_rg.mc.alias import alias_draw, alias_probabilities, alias_table
from hpc_rg.mc.longrange_cluster import FukuiTodo, poisson
from hpc_rg.mc.longrange_metropolis import LongRangeMetropolis, field_sweeps, naive_sweeps
from hpc_rg.rng import new_state
from hpc_rg.mc.sampler import Sampler

SAMPLERS = [LongRangeMetropolis, FukuiTodo]


def _run(sampler, n, every=1):
    e = np.empty((1, n // every))
    m = np.empty((1, n // every))
    sampler.run(n, e, m, every)
    return e[0].copy(), m[0].copy()


@pytest.mark.parametrize("cls", SAMPLERS)
def test_is_sampler(cls):
    s = cls(LongRange((4, 6)), 0.1, [np.random.SeedSequence(0)])
    assert isinstance(s, Sampler) and s.width == 1
    c = s.configurations()
    assert c.shape == (1, 4, 6) and c.dtype == np.int8 and set(np.unique(c)) <= {-1, 1}
    assert s.energy().shape == (1,)


@pytest.mark.parametrize("images", ["ewald", "minimum"])
@pytest.mark.parametrize("cls", SAMPLERS)
def test_state_round_trip_bit_exact(cls, images):
    lattice = LongRange((8, 8), h=0.2, images=images)
    a = cls(lattice, 1 / 7.0, [np.random.SeedSequence(3)])
    _run(a, 37)
    saved = a.state()
    a.beta = 1 / 8.0                       # replica exchange may change beta between runs
    ea, ma = _run(a, 50, every=5)
    b = cls(lattice, 1 / 2.0, [np.random.SeedSequence(99)])
    b.load_state(saved)
    b.beta = 1 / 8.0
    eb, mb = _run(b, 50, every=5)
    assert np.array_equal(ea, eb) and np.array_equal(ma, mb)
    assert np.array_equal(a.configurations(), b.configurations())
    assert np.array_equal(a.energy(), b.energy())
    for k in saved:
        assert np.array_equal(a.state()[k], b.state()[k])


@pytest.mark.parametrize("cls", SAMPLERS)
def test_beta_is_read_at_every_run(cls):
    lattice = LongRange((6, 6))
    a = cls(lattice, 1 / 3.0, [np.random.SeedSequence(5)])
    _run(a, 10)
    saved = a.state()
    a.beta = 1 / 20.0
    ea, _ = _run(a, 30)
    b = cls(lattice, 1 / 20.0, [np.random.SeedSequence(6)])
    b.load_state(saved)
    eb, _ = _run(b, 30)
    assert np.array_equal(ea, eb)
    assert ea[-5:].mean() > -1.0             # hot: far from the ordered energy -0.5 * 8.9 at T = 3


@pytest.mark.parametrize("cls", SAMPLERS)
def test_energy_and_magnetization_without_drift(cls):
    lattice = LongRange((12, 12), h=0.1)
    s = cls(lattice, 1 / 7.5, [np.random.SeedSequence(11)])
    e, m = _run(s, 600, every=3)
    spins = s.configurations()
    assert abs(s.energy()[0] - lattice.energy_per_site(spins)[0]) < 1e-11
    assert e[-1] == s.energy()[0]
    assert m[-1] == lattice.magnetization(spins)[0]


def test_metropolis_recorded_energies_match_configurations():
    lattice = LongRange((6, 6), h=-0.3, images="minimum")
    s = LongRangeMetropolis(lattice, 1 / 5.0, [np.random.SeedSequence(2)])
    for _ in range(20):
        e, m = _run(s, 7, every=7)
        spins = s.configurations()
        assert abs(e[0] - lattice.energy_per_site(spins)[0]) < 1e-12
        assert m[0] == lattice.magnetization(spins)[0]


def test_cluster_snapshot_chunks(monkeypatch):
    """Energies computed through the bounded snapshot buffer do not depend on the chunking."""
    lattice = LongRange((4, 4))
    a = FukuiTodo(lattice, 1 / 7.0, [np.random.SeedSequence(8)])
    b = FukuiTodo(lattice, 1 / 7.0, [np.random.SeedSequence(8)])
    ea, ma = _run(a, 51, every=3)
    monkeypatch.setattr(lc, "_SNAPSHOT_BYTES", 40)      # 2 snapshots of 16 spins per chunk
    eb, mb = _run(b, 51, every=3)
    assert np.array_equal(ea, eb) and np.array_equal(ma, mb)
    for x in (a, b):
        assert abs(x.energy()[0] - lattice.energy_per_site(x.configurations())[0]) < 1e-12


def test_naive_metropolis_is_the_same_chain():
    """The seed's O(N)-per-attempt Metropolis and the kept-field version give the same trajectory."""
    lattice = LongRange((6, 6))
    table = np.ascontiguousarray(lattice.couplings)
    spins0 = np.where(np.random.default_rng(1).random(36) < 0.5, -1, 1).astype(np.int8)
    out = []
    for kernel in ("field", "naive"):
        spins = spins0.copy()
        rng = new_state(np.random.SeedSequence(4))
        field = lattice.local_field(spins.reshape(6, 6)).ravel()
        e_tot = float(lattice.energy_per_site(spins.reshape(6, 6))) * 36
        em = np.array([e_tot, float(spins.sum())])
        e = np.empty(200)
        m = np.empty(200)
        if kernel == "field":
            field_sweeps(spins, field, table, rng, 200, 1, 1 / 7.5, 0.0, e, m, em)
        else:
            naive_sweeps(spins, table, rng, 200, 1, 1 / 7.5, 0.0, e, m, em)
        out.append((spins, e, m))
    assert np.array_equal(out[0][0], out[1][0]) and np.array_equal(out[0][2], out[1][2])
    assert np.allclose(out[0][1], out[1][1], atol=1e-10)


def test_cluster_needs_ferromagnetic_couplings():
    with pytest.raises(ValueError):
        FukuiTodo(LongRange((4, 4), J=-1.0), 0.1, [np.random.SeedSequence(0)])


@njit
def _alias_counts(seed_state, prob, alias, n):
    counts = np.zeros(prob.size, dtype=np.int64)
    for _ in range(n):
        counts[alias_draw(seed_state, prob, alias)] += 1
    return counts


@njit
def _poisson_draws(seed_state, lam, n):
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        out[i] = poisson(seed_state, lam)
    return out


def test_alias_table(helpers):
    w = np.asarray(LongRange((5, 7)).couplings).ravel()          # includes the zero weight at d = 0
    prob, alias = alias_table(w)
    assert np.abs(alias_probabilities(prob, alias) - w / w.sum()).max() < 1e-15
    n = 400_000
    counts = _alias_counts(new_state(np.random.SeedSequence(12)), prob, alias, n)
    assert counts[0] == 0
    p = w / w.sum()
    z = (counts[1:] - n * p[1:]) / np.sqrt(n * p[1:] * (1 - p[1:]))
    assert np.abs(z).max() < helpers["z_threshold"](w.size)
    with pytest.raises(ValueError):
        alias_table(np.array([0.0, -1.0]))


@pytest.mark.parametrize("lam", [0.3, 1.17, 18.0, 75.0])
def test_poisson(helpers, lam):
    n = 200_000
    draws = _poisson_draws(new_state(np.random.SeedSequence(int(lam * 100))), lam, n)
    ks = np.arange(draws.max() + 1)
    counts = np.bincount(draws, minlength=ks.size)
    p = stats.poisson.pmf(ks, lam)
    ok = n * p >= 20
    z = (counts[ok] - n * p[ok]) / np.sqrt(n * p[ok] * (1 - p[ok]))
    assert np.abs(z).max() < helpers["z_threshold"](4 * 60)
    assert abs(draws.mean() - lam) < 4.5 * np.sqrt(lam / n)

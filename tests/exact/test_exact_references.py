"""The exact references cross-checked against each other (they are the yardsticks of the MC tests)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from hpc_rg.exact import chain1d, kaufman, onsager
from hpc_rg.exact.enumeration import (boltzmann_probabilities, config_index, configurations, exact_observables,
                                      nearest_neighbour_couplings)
from hpc_rg.lattice.nearest import NearestNeighbour


@pytest.mark.parametrize("shape", [(4, 4), (3, 4), (4, 3), (3, 5), (2, 4), (2, 2)])
@pytest.mark.parametrize("T", [1.8, onsager.T_C, 3.2])
def test_kaufman_equals_enumeration(shape, T):
    ex = exact_observables(nearest_neighbour_couplings(shape), 0.0, T)
    assert kaufman.log_partition(shape, T) == pytest.approx(ex["log_z"], rel=1e-12)
    assert kaufman.energy(shape, T) == pytest.approx(ex["energy"], rel=1e-9, abs=1e-12)
    assert kaufman.specific_heat(shape, T) == pytest.approx(ex["specific_heat"], rel=1e-9)


def test_kaufman_large_lattice_approaches_onsager():
    for T in (1.8, 3.2):          # away from T_c finite-size effects are exponentially small at L = 64
        assert kaufman.energy((64, 64), T) == pytest.approx(onsager.energy(T), abs=1e-9)
    assert kaufman.specific_heat((64, 64), 2.0) == pytest.approx(onsager.specific_heat(2.0), rel=1e-8)


def test_enumeration_energy_matches_lattice_energy():
    shape, h, T = (3, 3), 0.37, 2.5
    lat = NearestNeighbour(shape, 1.0, h)
    conf = configurations(9).reshape(-1, *shape)
    e = lat.energy_per_site(conf)
    pi = boltzmann_probabilities(nearest_neighbour_couplings(shape), h, T)
    w = np.exp(-(e - e.min()) * 9 / T)
    np.testing.assert_allclose(pi, w / w.sum(), rtol=1e-12)
    ex = exact_observables(nearest_neighbour_couplings(shape), h, T)
    assert ex["energy"] == pytest.approx(np.sum(pi * e), rel=1e-12)
    assert ex["m"] == pytest.approx(np.sum(pi * lat.magnetization(conf)), rel=1e-12)
    np.testing.assert_array_equal(config_index(conf.reshape(-1, 9)), np.arange(512))


def test_enumeration_general_couplings_binder_limits():
    rng = np.random.default_rng(0)
    J = rng.random((10, 10))
    J = np.triu(J, 1) + np.triu(J, 1).T
    hot = exact_observables(J, 0.0, 1e6)
    cold = exact_observables(J, 0.0, 1e-3)
    assert hot["m2"] == pytest.approx(1 / 10, rel=1e-4)          # independent spins: <m^2> = 1/N
    assert hot["binder"] == pytest.approx(1 - (3 - 2 / 10) / 3, rel=1e-3)
    assert cold["binder"] == pytest.approx(2 / 3, abs=1e-9)        # ferromagnetic ground states m = +-1


@pytest.mark.parametrize("n,h", [(6, 0.0), (9, 0.3), (7, -0.8)])
def test_chain_transfer_matrix_equals_enumeration(n, h):
    T = 1.3
    ex = exact_observables(nearest_neighbour_couplings((n,)), h, T)
    assert chain1d.log_partition(n, T, 1.0, h) == pytest.approx(ex["log_z"], rel=1e-12)
    assert chain1d.energy(n, T, 1.0, h) == pytest.approx(ex["energy"], rel=1e-10)
    assert chain1d.specific_heat(n, T, 1.0, h) == pytest.approx(ex["specific_heat"], rel=1e-8)
    assert chain1d.magnetization(n, T, 1.0, h) == pytest.approx(ex["m"], abs=1e-12)
    conf = configurations(n).astype(float)
    pi = boltzmann_probabilities(nearest_neighbour_couplings((n,)), h, T)
    for r in range(n):
        assert chain1d.correlation([r], n, T, 1.0, h)[0] == pytest.approx(np.sum(pi * conf[:, 0] * conf[:, r]),
                                                                         rel=1e-10)
    if h == 0:
        np.testing.assert_allclose(chain1d.correlation(range(n), n, T), chain1d.correlation_h0(range(n), n, T))


def test_onsager_reference_values():
    assert onsager.T_C == pytest.approx(2.269185314213022, rel=1e-15)
    assert onsager.energy(onsager.T_C) == pytest.approx(-math.sqrt(2), rel=1e-12)
    assert onsager.spontaneous_magnetization(2.0) == pytest.approx(0.911319377877496, rel=1e-12)
    assert onsager.spontaneous_magnetization(2.3) == 0.0
    # f = u - T s: check u = d(beta f)/d beta numerically
    T, d = 2.0, 1e-5
    bf = lambda t: onsager.free_energy(t) / t
    u = (bf(1 / (1 / T + d)) - bf(1 / (1 / T - d))) / (2 * d)
    assert u == pytest.approx(onsager.energy(T), rel=1e-7)
    assert onsager.free_energy(1e-2) == pytest.approx(-2.0, rel=1e-6)    # ground state: 2 bonds per site

"""GpuMetropolis / GpuHeatBath through the CPU backend (the same kernel bodies the GPU runs).

Physics: energies against Kaufman's exact 8 x 8 torus value and, with a field, against exact enumeration
of the 2 x 8 torus; errors from the integrated autocorrelation time over independent chains, threshold 4
sigma per comparison (12 comparisons in this file: family-wise false alarm < 1e-3).
"""
import numpy as np
import pytest

from hpc_rg.lattice.nearest import NearestNeighbour
from hpc_rg.mc.gpu_metropolis import GpuCheckerboard, GpuHeatBath, GpuMetropolis, thresholds
from hpc_rg.reduce.stats import mean_error

BETA_C = float(np.log(1 + np.sqrt(2)) / 2)
CLASSES = [GpuMetropolis, GpuHeatBath]


def _seeds(n, seed=1):
    return np.random.SeedSequence(seed).spawn(n)


def _run(sampler, n, every=1):
    e = np.zeros((sampler.width, n // every))
    m = np.zeros_like(e)
    sampler.run(n, e, m, every)
    return e, m


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("J,h", [(1.0, 0.0), (-0.8, 0.3)])
def test_measurements_match_configurations(cls, J, h):
    lat = NearestNeighbour((6, 16), J, h)
    s = cls(lat, 0.5, _seeds(3), device="cpu")
    e, m = _run(s, 7, every=7)
    c = s.configurations()
    assert c.dtype == np.int8 and c.shape == (3, 6, 16) and set(np.unique(c)) <= {-1, 1}
    np.testing.assert_allclose(e[:, -1], lat.energy_per_site(c), atol=1e-12)
    np.testing.assert_allclose(m[:, -1], lat.magnetization(c), atol=1e-12)
    np.testing.assert_allclose(s.energy(), lat.energy_per_site(c), atol=1e-12)
    _run(s, 3, every=2)    # n not a multiple of every: energy() must still be current
    np.testing.assert_allclose(s.energy(), lat.energy_per_site(s.configurations()), atol=1e-12)


@pytest.mark.parametrize("cls", CLASSES)
def test_state_round_trip_is_bit_exact(cls):
    lat = NearestNeighbour((8, 8))
    a = cls(lat, 0.4, _seeds(2), device="cpu")
    _run(a, 5)
    saved = a.state()
    e1, m1 = _run(a, 9)
    c1 = a.configurations()
    b = cls(lat, 0.4, _seeds(2, seed=99), device="cpu")     # other seeds: everything must come from the state
    b.load_state(saved)
    e2, m2 = _run(b, 9)
    assert np.array_equal(c1, b.configurations())
    assert np.array_equal(e1, e2) and np.array_equal(m1, m2)


@pytest.mark.parametrize("cls", CLASSES)
def test_reproducible_and_chains_differ(cls):
    lat = NearestNeighbour((8, 16))
    a = cls(lat, 0.3, _seeds(3), device="cpu")
    b = cls(lat, 0.3, _seeds(3), device="cpu")
    _run(a, 4)
    _run(b, 4)
    ca = a.configurations()
    assert np.array_equal(ca, b.configurations())
    assert not np.array_equal(ca[0], ca[1]) and not np.array_equal(ca[1], ca[2])
    # chain 1 alone (own seed) evolves exactly as inside the group: streams belong to chains, not objects
    solo = cls(lat, 0.3, [_seeds(3)[1]], device="cpu")
    _run(solo, 4)
    assert np.array_equal(solo.configurations()[0], ca[1])


def test_beta_is_read_at_each_run():
    lat = NearestNeighbour((8, 8))
    s = GpuMetropolis(lat, 0.1, _seeds(4), device="cpu")
    _run(s, 20)
    s.beta = 5.0          # replica exchange changes beta between runs
    e, _ = _run(s, 200)
    assert e[:, -1].mean() < -1.7     # frozen towards the ground state (-2)


def test_thresholds():
    t = thresholds(0.4, 1.0, 0.0, heatbath=False)
    assert t[1, 4] == int(np.exp(-0.4 * 8) * 2**32) and t[0, 0] == int(np.exp(-0.4 * 8) * 2**32)
    assert t[1, 2] == 2**32 and t[0, 4] == 2**32        # dE <= 0: always accepted
    hb = thresholds(0.4, 1.0, 0.0, heatbath=True)
    assert hb[1, 2] == 2**31 and hb[1, 4] == int(2**32 / (1 + np.exp(-0.4 * 8)))


def test_rejects_unsupported_shapes():
    with pytest.raises(ValueError):
        GpuMetropolis(NearestNeighbour((8, 12)), 0.4, _seeds(1), device="cpu")
    with pytest.raises(ValueError):
        GpuMetropolis(NearestNeighbour((16,)), 0.4, _seeds(1), device="cpu")


@pytest.mark.slow
@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("beta", [0.3, BETA_C, 0.6])
def test_energy_matches_kaufman(exact, cls, beta):
    lat = NearestNeighbour((8, 8))
    s = cls(lat, beta, _seeds(8, seed=2024), device="cpu")
    _run(s, 500)                         # thermalize
    e, _ = _run(s, 15000)
    mean, err, tau = mean_error(e, axis_chains=True)
    ref = exact.energy_per_site(beta, 8, 8)
    assert abs(mean - ref) < 4 * err, (mean, err, tau, ref)
    assert err < 0.004     # resolves a 1% change of beta (dE/dbeta * 0.01 beta >= 0.005 here)


@pytest.mark.slow
@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("J,h,beta", [(1.0, 0.4, 0.5), (-1.0, 0.5, 0.6)])
def test_field_matches_enumeration(exact, cls, J, h, beta):
    lat = NearestNeighbour((2, 8), J, h)
    s = cls(lat, beta, _seeds(8, seed=7), device="cpu")
    _run(s, 200)
    e, m = _run(s, 6000)
    ref_e, ref_m = exact.enumerate_exact(beta, (2, 8), J, h)
    me, ee, _ = mean_error(e, axis_chains=True)
    mm, em, _ = mean_error(m, axis_chains=True)
    assert abs(me - ref_e) < 4 * ee, (me, ee, ref_e)
    assert abs(mm - ref_m) < 4 * em, (mm, em, ref_m)


def test_base_class_is_metropolis():
    assert GpuCheckerboard.heatbath is False and GpuHeatBath.heatbath is True

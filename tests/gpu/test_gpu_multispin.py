"""GpuMultiSpin (64 replicas in the bits of a word) through the CPU backend (the GPU's kernel bodies).

Physics: every replica's energy against Kaufman's exact 8 x 8 torus value (errors from tau_int over the 64
independent replicas, 4 sigma, 3 temperatures x 2 checks); the per-lane Bernoulli masks against their
binomial distribution; replicas must be independent (the spread of replica means matches the error).
"""
import numpy as np
import pytest
from numba import njit

from hpc_rg.lattice.nearest import NearestNeighbour
from hpc_rg.mc.gpu_common import fixed_point_64
from hpc_rg.mc.gpu_multispin import LANES, GpuMultiSpin, _bernoulli, pack, unpack
from hpc_rg.reduce.stats import mean_error

BETA_C = float(np.log(1 + np.sqrt(2)) / 2)


def _seeds(seed=1):
    return np.random.SeedSequence(seed).spawn(LANES)


def _run(sampler, n, every=1):
    e = np.zeros((sampler.width, n // every))
    m = np.zeros_like(e)
    sampler.run(n, e, m, every)
    return e, m


@njit
def _masks(need, P, key0, key1, n):
    out = np.empty(n, dtype=np.uint64)
    draws = 0
    for i in range(n):
        m, d = _bernoulli(need, P, key0, key1, np.uint64(i), np.uint64(0), np.uint64(0), np.uint64(0))
        out[i] = m
        draws += d
    return out, draws


def _bits(words):
    return ((words[:, None] >> np.arange(64, dtype=np.uint64)) & np.uint64(1)).astype(np.int64)


@pytest.mark.parametrize("p", [0.5, 0.1, np.exp(-4 * BETA_C), 1e-3])
def test_bernoulli_masks(p):
    n = 4000
    need = np.uint64(0xF0F0F0F0FFFF0000)
    masks, draws = _masks(need, np.uint64(fixed_point_64(p)), np.uint64(11), np.uint64(22), n)
    assert not np.any(masks & ~need)                  # only lanes that need a decision
    bits = _bits(masks)[:, _bits(np.array([need]))[0] == 1]
    k, trials = bits.sum(), bits.size
    assert abs(k - p * trials) < 4 * np.sqrt(trials * p * (1 - p))
    # lanes are independent: per-word counts have the binomial variance
    per_word = bits.sum(axis=1)
    var = per_word.var()
    expected = bits.shape[1] * p * (1 - p)
    assert abs(var / expected - 1) < 4 * np.sqrt(2 / n) + 0.02
    assert draws / n < 12                             # about log2(lanes) words, not 64


def test_bernoulli_edge_cases():
    masks, _ = _masks(np.uint64(2**64 - 1), np.uint64(0), np.uint64(1), np.uint64(2), 100)
    assert not masks.any()
    masks, _ = _masks(np.uint64(0), np.uint64(fixed_point_64(0.5)), np.uint64(1), np.uint64(2), 100)
    assert not masks.any()


def test_pack_unpack():
    rng = np.random.default_rng(3)
    spins = rng.choice(np.array([-1, 1], dtype=np.int8), size=(64, 4, 6))
    assert np.array_equal(unpack(pack(spins)), spins)


@pytest.mark.parametrize("J", [1.0, -0.7, 0.0])
def test_measurements_match_configurations(J):
    lat = NearestNeighbour((6, 10), J)
    s = GpuMultiSpin(lat, 0.45, _seeds(), device="cpu")
    e, m = _run(s, 6, every=3)
    c = s.configurations()
    assert c.shape == (64, 6, 10) and c.dtype == np.int8
    np.testing.assert_allclose(e[:, -1], lat.energy_per_site(c), atol=1e-12)
    np.testing.assert_allclose(m[:, -1], lat.magnetization(c), atol=1e-12)
    _run(s, 5, every=2)
    np.testing.assert_allclose(s.energy(), lat.energy_per_site(s.configurations()), atol=1e-12)


def test_state_round_trip_is_bit_exact():
    lat = NearestNeighbour((8, 8))
    a = GpuMultiSpin(lat, 0.44, _seeds(), device="cpu")
    _run(a, 5)
    saved = a.state()
    e1, m1 = _run(a, 9)
    b = GpuMultiSpin(lat, 0.44, _seeds(seed=5), device="cpu")
    b.load_state(saved)
    e2, m2 = _run(b, 9)
    assert np.array_equal(a.packed(), b.packed())
    assert np.array_equal(e1, e2) and np.array_equal(m1, m2)


def test_beta_is_read_at_each_run():
    lat = NearestNeighbour((8, 8))
    s = GpuMultiSpin(lat, 0.1, _seeds(), device="cpu")
    _run(s, 10)
    s.beta = 5.0
    e, _ = _run(s, 300)
    assert e[:, -1].mean() < -1.7


def test_rejects_what_it_cannot_do():
    with pytest.raises(ValueError):
        GpuMultiSpin(NearestNeighbour((8, 8), 1.0, 0.1), 0.4, _seeds(), device="cpu")
    with pytest.raises(ValueError):
        GpuMultiSpin(NearestNeighbour((8, 8)), 0.4, _seeds()[:8], device="cpu")
    with pytest.raises(ValueError):
        GpuMultiSpin(NearestNeighbour((8, 7)), 0.4, _seeds(), device="cpu")


@pytest.mark.slow
@pytest.mark.parametrize("beta", [0.3, BETA_C, 0.6])
def test_energy_matches_kaufman_and_replicas_are_independent(exact, beta):
    lat = NearestNeighbour((8, 8))
    s = GpuMultiSpin(lat, beta, _seeds(seed=2024), device="cpu")
    _run(s, 300)
    e, _ = _run(s, 3000)
    mean, err, tau = mean_error(e, axis_chains=True)
    ref = exact.energy_per_site(beta, 8, 8)
    assert abs(mean - ref) < 4 * err, (mean, err, tau, ref)
    assert err < 0.004
    # independent replicas: the scatter of the 64 replica means is what each one's own error predicts
    per_replica = np.array([mean_error(row)[:2] for row in e])
    chi2 = (((per_replica[:, 0] - mean) / per_replica[:, 1]) ** 2).sum()
    assert 25 < chi2 < 120, chi2          # 63 dof; shared randomness between lanes would shrink it

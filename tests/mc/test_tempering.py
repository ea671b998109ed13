"""Replica exchange against exact results on the 4x4 torus (2^16 states enumerated here)."""
from __future__ import annotations


import h5py
import numpy as np
import pytest

from hpc_rg.config import loads
from hpc_rg.mc.stage import run as run_simulate
from hpc_rg.mc.tempering import Tempering, tuned_ladder
from hpc_rg.parallel import World
from hpc_rg.reduce.stats import mean_error

TEMPS = [1.8, 2.1, 2.4, 2.8, 3.4]


def exact_energy_levels_4x4():
    """Energies (total, J = 1) of all 2^16 configurations of the 4x4 torus."""
    bits = (np.arange(2**16)[:, None] >> np.arange(16)) & 1
    s = (2 * bits - 1).reshape(-1, 4, 4)
    return -(s * np.roll(s, 1, axis=1) + s * np.roll(s, 1, axis=2)).sum(axis=(1, 2)).astype(np.float64)


def boltzmann(E, T):
    w = np.exp(-(E - E.min()) / T)
    return w / w.sum()


@pytest.fixture(scope="module")
def exchanged_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tempering")
    text = f"""[job]\nname = "pt"\nseed = 99\nout = "pt"\n[simulate]\nmodel = "ising2d"\nL = 4
temperatures = {TEMPS}\nchains = 16\nthermalize = 200\nsamples = 400\nthin = 10
replica_exchange = true\nexchange_every = 1\n"""
    cfg = loads(text, folder / "pt.toml")
    assert run_simulate(cfg, World(None, 0, 1)) == 0
    return folder / "pt" / "ensemble.h5"


def test_energies_per_temperature_match_exact(exchanged_run):
    E = exact_energy_levels_4x4()
    with h5py.File(exchanged_run) as f:
        series = f["timeseries/energy"][()]
    for t, T in enumerate(TEMPS):
        exact = (boltzmann(E, T) * E).sum() / 16
        mean, err, tau = mean_error(series[t], axis_chains=True)
        assert abs(mean - exact) < 4 * err, (T, mean, err, exact)


def test_swap_acceptance_matches_exact_overlap(exchanged_run):
    E = exact_energy_levels_4x4()
    levels, counts = np.unique(E, return_counts=True)
    with h5py.File(exchanged_run) as f:
        att = f["exchange/pair_attempts"][()]
        acc = f["exchange/pair_accepts"][()]
    per_ladder = acc / att                                   # ladders are independent: their spread is the error
    for t in range(len(TEMPS) - 1):
        bi, bj = 1 / TEMPS[t], 1 / TEMPS[t + 1]
        pi = counts * np.exp(-bi * (levels - levels.min()))
        pj = counts * np.exp(-bj * (levels - levels.min()))
        pi, pj = pi / pi.sum(), pj / pj.sum()
        a = np.minimum(1.0, np.exp((bi - bj) * (levels[:, None] - levels[None, :])))
        exact = pi @ a @ pj
        mean = per_ladder[:, t].mean()
        err = per_ladder[:, t].std(ddof=1) / np.sqrt(per_ladder.shape[0])
        assert abs(mean - exact) < 4 * err, (t, mean, err, exact)


def test_labels_form_a_permutation_and_round_trips_are_counted():
    tp = Tempering([1.0, 2.0, 3.0, 4.0], n_ladders=2, job_seed=1)
    rng = np.random.default_rng(0)
    for _ in range(200):
        tp.step(rng.normal(size=(2, 4)) * 0.01, n_sites=1)   # nearly flat energies: most swaps accepted
        for k in range(2):
            assert sorted(tp.replica_at[k]) == [0, 1, 2, 3]
            assert all(tp.slot_of[k, tp.replica_at[k, t]] == t for t in range(4))
    assert tp.round_trips.sum() > 0
    assert (tp.acceptance() > 0.9).all()


def test_tempering_state_round_trip_continues_identically():
    a = Tempering([1.0, 1.5, 2.0], n_ladders=3, job_seed=5)
    rng = np.random.default_rng(1)
    energies = [rng.normal(size=(3, 3)) for _ in range(40)]
    for e in energies[:20]:
        a.step(e, 16)
    b = Tempering([1.0, 1.5, 2.0], n_ladders=3, job_seed=5)
    b.load_state(a.state())
    for e in energies[20:]:
        a.step(e, 16)
        b.step(e, 16)
    assert np.array_equal(a.slot_of, b.slot_of) and np.array_equal(a.pair_accepts, b.pair_accepts)


def test_tuned_ladder_equalises_acceptance_direction():
    temps = np.array([1.0, 1.1, 1.2, 3.0])
    acc = np.array([0.9, 0.9, 0.05])
    new = tuned_ladder(temps, acc)
    assert new[0] == pytest.approx(1.0) and new[-1] == pytest.approx(3.0)
    assert np.all(np.diff(new) > 0)
    assert (new[3] - new[2]) < (temps[3] - temps[2])         # the low-acceptance gap shrinks

"""Every 2D sampler against exact finite-lattice results.

Kaufman's solution: energy and specific heat per site for L in {4, 8, 16} at T in {1.8, T_c, 3.2} (90
comparisons per algorithm pair of tests).  Exact enumeration of the 4x4 torus: <|m|>, <m^2>, <m^4>, Binder.
Error bars: Gamma-method tau_int (`mean_error`) for means, blocked jackknife (blocks >> tau) for derived
quantities.  Pass: |MC - exact| < 4 sigma; with ~100 comparisons per test the family-wise false alarm rate
is below 1% (Bonferroni: 100 * 6.3e-5).
"""
from __future__ import annotations

import numpy as np
import pytest

from hpc_rg.exact import kaufman
from hpc_rg.exact.enumeration import exact_observables, nearest_neighbour_couplings
from hpc_rg.reduce.stats import jackknife, mean_error
from mc_helpers import ALGOS_2D, T_C, cluster_updates_per_sweep, make, series

Z_MAX = 4.0
SWEEPS = {"metropolis": 20000, "heatbath": 20000, "multispin": 1000, "wolff": 8000, "swendsen_wang": 6000}


def run_equilibrium(algo, L, T, seed, sweeps=None):
    """(e, m) series of shape (chains, n) after thermalisation; Wolff in units of ~ one sweep of flips."""
    s = make("ising2d", algo, (L, L), T, seed=seed)
    sweeps = sweeps or SWEEPS[algo]
    if algo == "wolff":
        per = cluster_updates_per_sweep(s)
        every = max(1, int(round(per)))
        series(s, 200 * every)
        return series(s, sweeps * every, every)   # one sample per ~N flipped spins
    series(s, 500)
    return series(s, sweeps)


def specific_heat(e, N, T):
    """(C, error) per site from the chains' energy series by jackknife over chain-contiguous blocks."""
    flat = e.ravel()
    return jackknife(lambda a, b: N * (b - a * a) / T ** 2, flat, flat ** 2, n_blocks=32)


@pytest.mark.parametrize("algo", ALGOS_2D)
def test_kaufman_energy_and_specific_heat(algo):
    failures = []
    for L in (4, 8, 16):
        for T in (1.8, T_C, 3.2):
            e, _ = run_equilibrium(algo, L, T, seed=L * 1000 + int(T * 100))
            ex_e = kaufman.energy((L, L), T)
            ex_c = kaufman.specific_heat((L, L), T)
            mean, err, _ = mean_error(e, axis_chains=True)
            c, c_err = specific_heat(e, L * L, T)
            if abs(mean - ex_e) > Z_MAX * err:
                failures.append(f"L={L} T={T:.3f}: e = {mean:.5f} +- {err:.5f}, exact {ex_e:.5f}")
            if abs(c - ex_c) > Z_MAX * c_err:
                failures.append(f"L={L} T={T:.3f}: C = {c:.4f} +- {c_err:.4f}, exact {ex_c:.4f}")
    assert not failures, f"{algo}: " + "; ".join(failures)


@pytest.mark.parametrize("algo", ALGOS_2D)
def test_enumeration_4x4_magnetisation_moments(algo):
    failures = []
    for T in (T_C, 2.6):
        ex = exact_observables(nearest_neighbour_couplings((4, 4)), 0.0, T)
        _, m = run_equilibrium(algo, 4, T, seed=7 + int(T * 10))
        a = np.abs(m).ravel()
        for name, x in (("abs_m", a), ("m2", a ** 2), ("m4", a ** 4)):
            mean, err, _ = mean_error(np.abs(m) ** {"abs_m": 1, "m2": 2, "m4": 4}[name], axis_chains=True)
            if abs(mean - ex[name]) > Z_MAX * err:
                failures.append(f"T={T:.3f} {name}: {mean:.5f} +- {err:.5f}, exact {ex[name]:.5f}")
        u, u_err = jackknife(lambda m2, m4: 1 - m4 / (3 * m2 * m2), a ** 2, a ** 4, n_blocks=32)
        if abs(u - ex["binder"]) > Z_MAX * u_err:
            failures.append(f"T={T:.3f} Binder: {u:.5f} +- {u_err:.5f}, exact {ex['binder']:.5f}")
    assert not failures, f"{algo}: " + "; ".join(failures)

"""Multi-spin coding: the 64 packed replicas are independent chains with the scalar Metropolis statistics.

- Agreement: energy, <|m|> and <m^2> of the 64 lanes vs scalar Metropolis on an 8x8 torus at T_c (two
  independent estimates: |difference| < 4 sigma_combined).
- Independence: the Pearson correlation of every pair of lanes' magnetisation series (2016 pairs), on series
  thinned to ~ 2 tau apart, is consistent with zero: n_eff r^2 averages to 1 (chi-square with 2016 dof) and no
  pair exceeds the Bonferroni bound |z| < 4.9 (two-sided 1e-6 per pair, 2e-3 for the family).  Sharing random
  bits between lanes would correlate them (detected: see test_shared_bits_would_be_detected).
"""
from __future__ import annotations

import numpy as np
from scipy import stats

from hpc_rg.reduce.stats import mean_error
from mc_helpers import T_C, make, series


def lane_correlation_z(m):
    """z = r sqrt(n) for all lane pairs of m (lanes, n) (rows already ~ independent in time)."""
    n = m.shape[1]
    r = np.corrcoef(m)
    iu = np.triu_indices(m.shape[0], 1)
    return r[iu] * np.sqrt(n)


def test_agrees_with_scalar_metropolis():
    L = 8
    ms = make("ising2d", "multispin", (L, L), T_C, seed=41)
    series(ms, 500)
    e64, m64 = series(ms, 1500)
    sc = make("ising2d", "metropolis", (L, L), T_C, seed=42)
    series(sc, 500)
    e1, m1 = series(sc, 60000)
    for name, a, b in (("e", e64, e1), ("|m|", np.abs(m64), np.abs(m1)), ("m2", m64 ** 2, m1 ** 2)):
        ma, ea, _ = mean_error(a, axis_chains=True)
        mb, eb, _ = mean_error(b, axis_chains=True)
        assert abs(ma - mb) < 4 * np.hypot(ea, eb), f"{name}: multispin {ma:.5f}+-{ea:.5f}, scalar {mb:.5f}+-{eb:.5f}"


def test_replicas_are_independent():
    s = make("ising2d", "multispin", (6, 6), 3.2, seed=43)
    series(s, 200)
    _, m = series(s, 20000, every=10)      # tau_int(m) ~ 2 sweeps at T = 3.2: samples ~ independent
    _, _, tau = mean_error(m, axis_chains=True)
    assert tau < 1.0
    z = lane_correlation_z(m)
    assert z.size == 2016
    chi2 = np.sum(z ** 2)
    assert stats.chi2.sf(chi2, z.size) > 1e-4 and stats.chi2.cdf(chi2, z.size) > 1e-4, chi2 / z.size
    assert np.max(np.abs(z)) < 4.9


def test_shared_bits_would_be_detected():
    """The statistic sees a weak coupling: lanes that share a component of their series."""
    rng = np.random.default_rng(0)
    m = rng.normal(size=(64, 2000)) + 0.15 * rng.normal(size=(1, 2000))
    z = lane_correlation_z(m)
    assert stats.chi2.sf(np.sum(z ** 2), z.size) < 1e-4

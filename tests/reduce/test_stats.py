"""Γ-method τ_int and error bars against an AR(1) process (exact τ_int) and against pyerrors."""
import numpy as np
import pytest

from hpc_rg.reduce.stats import (ar1_tau_int, bootstrap, integrated_time, jackknife_blocks, mean_error)


def ar1(phi, n, seed, chains=1):
    rng = np.random.default_rng(seed)
    x = np.empty((chains, n))
    x[:, 0] = rng.normal(size=chains) / np.sqrt(1 - phi ** 2)
    noise = rng.normal(size=(chains, n))
    for t in range(1, n):
        x[:, t] = phi * x[:, t - 1] + noise[:, t]
    return x


@pytest.mark.parametrize("phi", [0.0, 0.5, 0.9])
def test_tau_int_ar1(phi):
    x = ar1(phi, 100_000, seed=int(phi * 10))[0]
    tau, w = integrated_time(x)
    exact = ar1_tau_int(phi)
    # Madras–Sokal: var(τ) ≈ 2(2W+1)/N τ²
    sigma = np.sqrt(2 * (2 * w + 1) / x.size) * exact
    assert abs(tau - exact) < 4 * sigma + 0.02


def test_mean_error_covers_truth_over_chains():
    """The error bar of the mean of AR(1) chains matches the scatter of independent repetitions."""
    phi, n = 0.8, 4000
    means, errs = [], []
    for s in range(40):
        m, e, _ = mean_error(ar1(phi, n, seed=100 + s, chains=2), axis_chains=True)
        means.append(m)
        errs.append(e)
    exact_err = np.sqrt(2 * ar1_tau_int(phi) / (1 - phi ** 2) / (2 * n))
    assert abs(np.mean(errs) / exact_err - 1) < 0.15
    assert abs(np.std(means, ddof=1) / exact_err - 1) < 4 / np.sqrt(2 * 39)


def test_jackknife_blocks_and_bootstrap_of_mean():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(64, 2))
    v, e = jackknife_blocks(lambda m: m, x)
    assert np.allclose(v, x.mean(axis=0))
    assert np.allclose(e, x.std(axis=0, ddof=1) / 8)
    vb, eb = bootstrap(lambda m: m[0], x, n_boot=400, seed=1)
    assert abs(eb / e[0] - 1) < 0.2


def test_against_pyerrors():
    pe = pytest.importorskip("pyerrors")
    x = ar1(0.7, 20_000, seed=9)[0]
    m, e, tau = mean_error(x)
    obs = pe.Obs([x], ["ar1"])
    obs.gamma_method(S=2.0)
    assert abs(obs.value - m) < 1e-12
    assert abs(obs.dvalue / e - 1) < 0.1

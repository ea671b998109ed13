"""Every 1D sampler against the exact periodic-chain results.

<s_0 s_r> = (t^r + t^{N-r}) / (1 + t^N), t = tanh(J/T), for r = 1..N/2 on a 16-site ring at T = 1 (h = 0),
measured as the site average of s_i s_{i+r} on stored configurations, errors from tau_int (`mean_error`);
and, with a field h = 0.4, energy and magnetisation per site against the transfer-matrix values.
Threshold 4 sigma over 5 samplers x 10 comparisons.
"""
from __future__ import annotations

import numpy as np
import pytest

from hpc_rg.exact import chain1d
from hpc_rg.reduce.stats import mean_error
from mc_helpers import ALGOS_1D, make, series

N, T = 16, 1.0
THIN = {"metropolis": 2, "heatbath": 2, "wolff": 4, "swendsen_wang": 1, "exact": 1}


def stored_correlations(s, n_samples, thin):
    c = np.empty((n_samples, N // 2))
    for k in range(n_samples):
        series(s, thin, thin)
        x = s.configurations()[0].astype(np.int64)
        c[k] = [np.mean(x * np.roll(x, -r)) for r in range(1, N // 2 + 1)]
    return c


@pytest.mark.parametrize("algo", ALGOS_1D)
def test_correlation_function(algo):
    s = make("ising1d", algo, (N,), T, seed=31)
    series(s, 200)
    c = stored_correlations(s, 6000, THIN[algo])
    exact = chain1d.correlation_h0(np.arange(1, N // 2 + 1), N, T)
    np.testing.assert_allclose(exact, chain1d.correlation(np.arange(1, N // 2 + 1), N, T))
    for r in range(N // 2):
        mean, err, _ = mean_error(c[:, r])
        assert abs(mean - exact[r]) < 4 * err, f"{algo} r={r + 1}: {mean:.4f} +- {err:.4f}, exact {exact[r]:.4f}"


@pytest.mark.parametrize("algo", ALGOS_1D)
def test_energy_magnetisation_in_field(algo):
    h = 0.4
    s = make("ising1d", algo, (N,), T, seed=32, h=h)
    series(s, 500)
    e, m = series(s, 40000)
    for name, x, exact in (("e", e[0], chain1d.energy(N, T, 1.0, h)), ("m", m[0], chain1d.magnetization(N, T, 1.0, h))):
        mean, err, _ = mean_error(x)
        assert abs(mean - exact) < 4 * err, f"{algo} {name}: {mean:.5f} +- {err:.5f}, exact {exact:.5f}"

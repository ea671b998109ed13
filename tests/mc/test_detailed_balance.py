"""Transition frequencies of single updates on tiny lattices against the exact Boltzmann weights.

- Local checkerboard sweeps are not reversible (a fixed site order), so their empirical transition counts are
  compared with the exact one-sweep transition matrix, built by composing exact single-site kernels in the
  kernel's site order.  Given the visits n_a of state a, the counts n_ab are exactly multinomial (Markov
  property): a chi-square test per lattice, no autocorrelation correction needed.
- Cluster updates (Wolff, Swendsen-Wang) are reversible: pi_a P_ab = pi_b P_ba with the exact Boltzmann pi, tested
  pair by pair with the multinomial variance of the empirical P_ab.
- The 1D exact sampler draws i.i.d. configurations: chi-square of state frequencies against pi.
Lattices 2x3 (odd row length: the deferred seam site; doubled vertical bonds) and a 5-ring, with a field
except for multi-spin.  Thresholds: p > 1e-5 / |z| < 5 (Bonferroni over all cells and tests of this file).
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from hpc_rg.exact.enumeration import boltzmann_probabilities, config_index, nearest_neighbour_couplings
from hpc_rg.mc.heatbath import flip_probability_heatbath
from hpc_rg.mc.metropolis import flip_probability_metropolis
from mc_helpers import make

T = 2.0


def sweep_order(shape):
    """Site order of one checkerboard sweep (row batches, then the deferred seam site of odd rows)."""
    if len(shape) == 1:
        shape = (1,) + tuple(shape)
    ly, lx = shape
    order = []
    for parity in range(2):
        for i in range(ly):
            j0 = (i + parity) & 1
            js = list(range(j0, lx, 2))
            order += [(i, j) for j in js]   # the deferred site (j = lx - 1, odd lx) comes last anyway
    return [i * lx + j for i, j in order]


def exact_sweep_matrix(shape, J, h, beta, flip_probability):
    n = int(np.prod(shape))
    cpl = nearest_neighbour_couplings(shape, J)
    z = 2 * len(shape)
    p = flip_probability(beta, J, h, z)   # the samplers' own tables: [(s+1)//2, (nb+z)//2]
    states = 1 - 2 * ((np.arange(1 << n)[:, None] >> np.arange(n)) & 1)
    total = np.eye(1 << n)
    for site in sweep_order(shape):
        m = np.zeros((1 << n, 1 << n))
        for a, s in enumerate(states):
            nb = int(round(cpl[site] @ s / J))
            pf = p[(s[site] + 1) // 2, (nb + z) // 2]
            m[a, a ^ (1 << site)] += pf
            m[a, a] += 1 - pf
        total = total @ m
    return total


def transitions(s, n_steps):
    n_states = 1 << s.lattice.n_sites
    counts = np.zeros((n_states, n_states))
    e = np.empty((s.width, 1))
    m = np.empty((s.width, 1))
    prev = config_index(s.configurations().reshape(s.width, -1))
    for _ in range(n_steps):
        s.run(1, e, m, 1)
        cur = config_index(s.configurations().reshape(s.width, -1))
        np.add.at(counts, (prev, cur), 1)
        prev = cur
    return counts


def chi2_pvalue(counts, expected_p):
    n_a = counts.sum(axis=1, keepdims=True)
    exp = n_a * expected_p
    assert np.all(counts[exp == 0] == 0), "a transition the exact kernel forbids occurred"
    big = exp >= 5
    stat = np.sum((counts[big] - exp[big]) ** 2 / exp[big])
    rest_o, rest_e = counts[~big & (exp > 0)].sum(), exp[~big & (exp > 0)].sum()
    stat += (rest_o - rest_e) ** 2 / max(rest_e, 1e-12)
    dof = int(big.sum()) + 1 - int((n_a > 0).sum())
    return stats.chi2.sf(stat, dof), dof


LOCAL = [("ising2d", "metropolis", (2, 3), 0.3), ("ising2d", "heatbath", (2, 3), 0.3),
         ("ising2d", "multispin", (2, 3), 0.0), ("ising1d", "metropolis", (5,), 0.3),
         ("ising1d", "heatbath", (5,), 0.3)]


@pytest.mark.parametrize("model,algo,shape,h", LOCAL)
def test_local_sweep_matches_exact_transition_matrix(model, algo, shape, h):
    s = make(model, algo, shape, T, seed=11, h=h)
    prob = flip_probability_heatbath if algo == "heatbath" else flip_probability_metropolis
    exact = exact_sweep_matrix(shape, 1.0, h, 1 / T, prob)
    np.testing.assert_allclose(exact.sum(axis=1), 1.0)
    counts = transitions(s, 600 if algo == "multispin" else 30000)
    p, dof = chi2_pvalue(counts, exact)
    assert dof > 50
    assert p > 1e-5, f"{algo}: chi2 p = {p:.2e} with {dof} dof"
    # and the exact kernel leaves Boltzmann invariant (checks the reference itself)
    pi = boltzmann_probabilities(nearest_neighbour_couplings(shape), h, T)
    np.testing.assert_allclose(pi @ exact, pi, atol=1e-12)


@pytest.mark.parametrize("shape", [(4,), (5,), (6,), (2, 3), (3, 3), (2, 4)])
@pytest.mark.parametrize("prob", [flip_probability_metropolis, flip_probability_heatbath])
def test_local_sweep_is_ergodic(shape, prob):
    """Exactly one unit eigenvalue of the exact sweep matrix at h = 0 (a reducible sweep would have several:
    the case of Metropolis with P(dE = 0) = 1 on these lattices)."""
    exact = exact_sweep_matrix(shape, 1.0, 0.0, 1 / T, prob)
    w = np.sort(np.abs(np.linalg.eigvals(exact)))[::-1]
    assert abs(w[0] - 1) < 1e-10 and w[1] < 0.9999, w[:3]


CLUSTER = [("ising2d", "wolff", (2, 3), 0.3), ("ising2d", "swendsen_wang", (2, 3), 0.3),
           ("ising1d", "wolff", (5,), 0.3), ("ising1d", "swendsen_wang", (5,), 0.3)]


@pytest.mark.parametrize("model,algo,shape,h", CLUSTER)
def test_cluster_update_detailed_balance(model, algo, shape, h):
    s = make(model, algo, shape, T, seed=12, h=h)
    counts = transitions(s, 30000)
    pi = boltzmann_probabilities(nearest_neighbour_couplings(shape), h, T)
    n_a = counts.sum(axis=1)
    ok = n_a > 0
    phat = np.zeros_like(counts)
    phat[ok] = counts[ok] / n_a[ok, None]
    var = np.zeros_like(counts)
    var[ok] = phat[ok] * (1 - phat[ok]) / n_a[ok, None]
    flow = pi[:, None] * phat
    sigma = np.sqrt(pi[:, None] ** 2 * var + (pi[:, None] ** 2 * var).T)
    iu = np.triu_indices_from(counts, 1)
    tested = (counts + counts.T)[iu] >= 20
    z = (flow - flow.T)[iu][tested] / sigma[iu][tested]
    assert tested.sum() > 30
    assert np.max(np.abs(z)) < 5.0, f"{algo}: detailed balance violated, max |z| = {np.max(np.abs(z)):.2f}"
    # stationarity: the empirical visit frequencies (autocorrelation of these fast chains is ~1 update)
    freq = n_a / n_a.sum()
    assert np.max(np.abs(freq - pi) / np.sqrt(pi * (1 - pi) * 4 / n_a.sum())) < 5.0


def test_exact_chain_frequencies():
    s = make("ising1d", "exact", (5,), T, seed=13, h=0.3)
    counts = transitions(s, 20000).sum(axis=0)
    pi = boltzmann_probabilities(nearest_neighbour_couplings((5,)), 0.3, T)
    stat, p = stats.chisquare(counts, counts.sum() * pi)
    assert p > 1e-5, p

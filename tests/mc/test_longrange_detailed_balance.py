"""Detailed balance: empirical one-sweep transition frequencies on 2x2 against the exact transition
matrices (which satisfy pi_a P_ab = pi_b P_ba with the exact Boltzmann weights), and visit frequencies on
3x3 against the Boltzmann weights of all 512 states."""
import numpy as np
import pytest

from hpc_rg.lattice.longrange import LongRange
from hpc_rg.mc.longrange_cluster import FukuiTodo
from hpc_rg.mc.longrange_metropolis import LongRangeMetropolis
from hpc_rg.reduce.stats import mean_error

SAMPLERS = {"metropolis": LongRangeMetropolis, "fukui_todo": FukuiTodo}


def trajectory(sampler, n, index):
    """State index after each of n single updates."""
    e = np.empty((1, 1))
    m = np.empty((1, 1))
    out = np.empty(n, dtype=np.int64)
    for t in range(n):
        sampler.run(1, e, m)
        out[t] = index(sampler.spins)
    return out


@pytest.mark.parametrize("algorithm", list(SAMPLERS))
@pytest.mark.parametrize("beta,h", [(0.15, 0.0), (0.25, 0.3)])
def test_transition_matrix_2x2(exact, helpers, algorithm, beta, h):
    lattice = LongRange((2, 2), alpha=3.0, h=h)
    jm = lattice.coupling_matrix()
    kernel = (exact.metropolis_kernel if algorithm == "metropolis" else exact.swendsen_wang_kernel)(jm, h, beta)
    _, _, pi = exact.boltzmann(jm, h, beta)
    flow = pi[:, None] * kernel
    assert np.allclose(kernel.sum(axis=1), 1.0, atol=1e-13)
    assert np.abs(flow - flow.T).max() < 1e-14          # the reference kernel is reversible w.r.t. pi

    sampler = SAMPLERS[algorithm](lattice, beta, [np.random.SeedSequence(31 + int(100 * h))])
    path = trajectory(sampler, 25_000, exact.state_index)
    counts = np.zeros_like(kernel)
    np.add.at(counts, (path[:-1], path[1:]), 1.0)
    visits = counts.sum(axis=1, keepdims=True)
    expected = visits * kernel
    assert not counts[kernel == 0].any()                 # impossible moves never happen
    # given the current state, the next one is a fresh categorical draw: binomial counts per entry
    ok = expected >= 20
    z = (counts - expected)[ok] / np.sqrt(expected * (1 - kernel))[ok]
    assert np.abs(z).max() < helpers["z_threshold"](8 * 256), np.abs(z).max()


@pytest.mark.parametrize("algorithm", list(SAMPLERS))
def test_visit_frequencies_3x3(exact, helpers, algorithm):
    beta = 0.12
    lattice = LongRange((3, 3), alpha=3.0, images="ewald")
    _, _, pi = exact.boltzmann(lattice.coupling_matrix(), 0.0, beta)
    sampler = SAMPLERS[algorithm](lattice, beta, [np.random.SeedSequence(77)])
    path = trajectory(sampler, 30_000, exact.state_index)
    states = np.flatnonzero(pi * path.size >= 25)
    assert states.size > 100
    threshold = helpers["z_threshold"](2 * states.size)
    worst = 0.0
    for a in states:
        mean, _, tau = mean_error((path == a).astype(np.float64))
        # score test: the variance of the indicator under the null (exact pi), not the observed one, which
        # a low count shrinks (normal approximation to a small count otherwise overstates |z|)
        err = np.sqrt(pi[a] * (1 - pi[a]) * 2 * tau / path.size)
        worst = max(worst, abs(mean - pi[a]) / err)
    assert worst < threshold, worst

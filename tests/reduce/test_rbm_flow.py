"""RBM flows converge to the RBM's marginal p(v): a hand-built RBM whose marginal is the exact periodic Ising
chain (one hidden spin per bond, weight w on its two visible ends: Σ_h e^{w h (v_i + v_{i+1})} ∝ e^{K v_i v_{i+1}}
with e^{2K} = cosh 2w) flows from all-up configurations to the chain's correlations at K."""
import math

import numpy as np
import pytest
import torch

from model_helpers import context, save, spec_of, write
from hpc_rg.learn.rbm import RBM
from hpc_rg.reduce.correlators import exact_chain_correlation

L, K = 16, 0.5


def bond_rbm(L: int, K: float) -> RBM:
    w = 0.5 * math.acosh(math.exp(2 * K))
    rbm = RBM(L, L, units="spin").double()
    W = torch.zeros(L, L, dtype=torch.float64)
    for a in range(L):
        W[a, a] = w
        W[(a + 1) % L, a] = w
    with torch.no_grad():
        rbm.W.copy_(W)
        rbm.a.zero_()
        rbm.b.zero_()
    return rbm


def test_bond_rbm_marginal_is_the_chain():
    rbm = bond_rbm(8, K)
    v, p = rbm.visible_distribution()
    e = (v * torch.roll(v, -1, 1)).sum(1)
    exact = torch.softmax(K * e, 0)
    assert torch.allclose(p, exact, atol=1e-6)    # the float64 model, before any file round trip


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("flow")
    write(out / "ensemble.h5", [1.0], np.ones((1, 4, 200, L), np.int8), "ising1d")
    save(out, "bond", "rbm", bond_rbm(L, K), (L,))
    return out


def test_flow_converges_to_chain_fixed_point(run_dir, reductions):
    spec = spec_of("rbm_flow", model="bond", lengths=(0, 1, 50), n_blocks=16, batch=100,
                   window_spin=(1, 3), window_energy=(1, 3))
    res = reductions["rbm_flow"](spec, context(run_dir))
    G, Ge = res.values["G_s"]                    # (n_T, n_lengths, R+1)
    r = np.arange(L // 2 + 1)
    exact = exact_chain_correlation(L, K, r)
    z = (G[0, -1, 1:] - exact[1:]) / Ge[0, -1, 1:]
    assert np.all(np.abs(z) < 4.0), z            # 8 distances: 4σ (Bonferroni-safe at ~2e-4 each)
    assert np.all(G[0, 0] == 1.0)                # the start (all up) is far from it
    assert np.all(G[0, 1, 1:] > exact[1:] + 5 * Ge[0, 1, 1:])   # one step is not yet there
    assert res.values["abs_m"][0][0, -1] < 0.5


def test_flow_reproducible(run_dir, reductions):
    # noise is keyed by (reduction, temperature, chain, first sample) of each batch: runs repeat exactly
    spec = spec_of("rbm_flow", model="bond", lengths=(0, 30), n_blocks=8, batch=50,
                   window_spin=(1, 3), window_energy=(1, 3))
    a = reductions["rbm_flow"](spec, context(run_dir))
    b = reductions["rbm_flow"](spec, context(run_dir))
    assert np.array_equal(a.values["G_s"][0], b.values["G_s"][0])


def test_rbm_init_scale_option():
    """Seed 002 does not state its RBM's initial weights: `init_scale` brackets them. The same seeded draw,
    scaled: init_scale = 0.1 gives exactly 10x the default (0.01) weights."""
    from types import SimpleNamespace
    from hpc_rg.learn.specs import RBMSpec
    from hpc_rg.learn.stage import _model_and_tasks
    data = (SimpleNamespace(lattice_shape=(10, 10)), np.arange(8), np.arange(8, 10))
    w = {s: _model_and_tasks("rbm", RBMSpec(n_hidden=81, init_scale=s), data, torch.device("cpu"), 3, 0, 0)[0].W.detach()
         for s in (0.01, 0.1)}
    assert RBMSpec().init_scale == 0.01
    torch.testing.assert_close(w[0.1], 10 * w[0.01], rtol=1e-6, atol=0)
    assert float(w[0.1].std()) == pytest.approx(0.1, rel=0.05)

"""Gaussian–Bernoulli RBM against exact results: log Z by enumeration of the hidden layer against numerical
integration over v, the CD surrogate's gradient against the exact log-likelihood gradient (σ fixed and
learned), and Gibbs sampling against the exact model distribution."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hpc_rg.learn.gaussian_rbm import GaussianRBM, normal_from_uniforms


def tiny(n_v=2, n_h=3, learn_sigma=True, seed=0):
    torch.manual_seed(seed)
    rbm = GaussianRBM(n_v, n_h, learn_sigma=learn_sigma).double()
    with torch.no_grad():
        rbm.W.normal_(0, 0.8)
        rbm.a.normal_(0, 0.5)
        rbm.b.normal_(0, 0.5)
        rbm.log_sigma.copy_(torch.linspace(-0.3, 0.4, n_v, dtype=torch.float64))
    return rbm


def test_log_z_matches_numerical_integration():
    """Z = ∫ dv exp(−F(v)) on a fine 2D grid (trapezoid; the integrand is smooth and decays like a
    Gaussian) against the enumeration of the 3 hidden units with v integrated analytically."""
    rbm = tiny()
    x = torch.linspace(-14, 14, 1401, dtype=torch.float64)
    vv = torch.cartesian_prod(x, x)
    with torch.no_grad():
        f = torch.exp(-rbm.free_energy(vv)).reshape(len(x), len(x))
    z = torch.trapezoid(torch.trapezoid(f, x, dim=1), x)
    assert float(rbm.exact_log_z()) == pytest.approx(math.log(float(z)), abs=1e-8)


def test_free_energy_is_the_hidden_sum_of_the_energy():
    rbm = tiny(n_v=3, n_h=4)
    v = torch.randn(5, 3, dtype=torch.float64)
    h = rbm._hidden_states()
    with torch.no_grad():
        brute = -torch.logsumexp(-rbm.energy(v.repeat_interleave(len(h), 0), h.repeat(5, 1)).reshape(5, -1), 1)
        assert torch.allclose(rbm.free_energy(v), brute, atol=1e-12)


def _grads(rbm, loss):
    rbm.zero_grad()
    loss.backward()
    return {n: p.grad.clone() for n, p in rbm.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("learn_sigma", [False, True])
def test_surrogate_with_exact_model_samples_gives_the_exact_gradient(learn_sigma):
    """−∇ cd_loss(data, exact model samples) is an unbiased estimate of ∇ <log p(v)>_data (by autograd of the
    exact log-likelihood); 20 independent batches of model samples give the error bar (5σ)."""
    rbm = tiny(learn_sigma=learn_sigma)
    gen = torch.Generator().manual_seed(1)
    data = torch.randn(300, 2, generator=gen, dtype=torch.float64) * 1.3 + 0.4
    exact = _grads(rbm, -rbm.exact_log_likelihood(data))
    est = [_grads(rbm, rbm.cd_loss(data, rbm.exact_model_sample(20000, gen))) for _ in range(20)]
    for name, g in exact.items():
        s = torch.stack([e[name] for e in est])
        mean, err = s.mean(0), s.std(0) / math.sqrt(len(est))
        assert torch.all((mean - g).abs() <= 5 * err + 1e-9), (name, mean, g, err)
    assert ("log_sigma" in exact) == learn_sigma


def test_gibbs_chain_reaches_the_model_distribution():
    """Long Gibbs chains (k = 60 from a point far away) reproduce the exact mean and covariance of v."""
    rbm = tiny(n_v=2, n_h=3)
    gen = torch.Generator().manual_seed(2)
    n = 40000
    v0 = torch.full((n, 2), 3.0, dtype=torch.float64)
    vk, _ = rbm.negative_sample(v0, 60, lambda m: torch.rand(n, m, generator=gen, dtype=torch.float64))
    ref = rbm.exact_model_sample(200000, gen)
    assert torch.allclose(vk.mean(0), ref.mean(0), atol=5 * float(ref.std(0).max()) / math.sqrt(n))
    assert torch.allclose(torch.cov(vk.T), torch.cov(ref.T), atol=0.05)


def test_box_muller_is_standard_normal():
    g = torch.Generator().manual_seed(3)
    z = normal_from_uniforms(torch.rand(200000, generator=g), torch.rand(200000, generator=g))
    assert abs(float(z.mean())) < 5 / math.sqrt(len(z)) and abs(float(z.var()) - 1) < 0.02
    assert float((z.abs() > 1.959964).double().mean()) == pytest.approx(0.05, abs=0.003)

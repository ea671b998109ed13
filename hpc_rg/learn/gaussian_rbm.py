"""Gaussian–Bernoulli RBM: real-valued visible units with Gaussian conditionals, {0,1} hidden units.

Energy E(v, h) = Σ_i (v_i − a_i)² / (2σ_i²) − Σ_ij (v_i/σ_i) W_ij h_j − b·h, p(v, h) = exp(−E) / Z. Then
  p(h_j = 1 | v) = sigmoid((v/σ)·W + b)_j,      v | h ~ N(a + σ ⊙ (W h), σ²)
  F(v) = Σ_i (v_i − a_i)² / (2σ_i²) − Σ_j softplus((v/σ)·W + b)_j,      p(v) = exp(−F(v)) / Z
  log Z = log Σ_h exp(b·h + Σ_i (a_i c_i/σ_i + c_i²/2)) + Σ_i log sqrt(2π σ_i²),   c = W h
(the Gaussian integral over v done per h: exact by enumerating a small hidden layer). σ is fixed, or learned
through log σ. Seed 003 ("only visible nodes with Gaussian noise worked") pretrains the first layer of its
autoencoder with such an RBM; the library it used (yadlt) offers Gaussian visibles with a fixed σ.
Training: CD-k as the gradient of the surrogate F(v_data) − F(v_model) (autograd, so a learned σ gets its
gradient too); the Gaussian draws come from pairs of the trainer's uniforms (Box–Muller).
"""
from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn

from hpc_rg.learn.rbm import Noise


def normal_from_uniforms(u1: torch.Tensor, u2: torch.Tensor) -> torch.Tensor:
    """Standard normal draws from two independent uniform tensors (Box–Muller; u1 kept away from 0)."""
    return torch.sqrt(-2.0 * torch.log1p(-u1.clamp(max=1 - 1e-7))) * torch.cos(2 * math.pi * u2)


class GaussianRBM(nn.Module):
    units = "gaussian"

    def __init__(self, n_visible: int, n_hidden: int, sigma: float = 1.0, learn_sigma: bool = False,
                 init_scale: float = 0.01):
        super().__init__()
        self.n_visible, self.n_hidden = int(n_visible), int(n_hidden)
        self.W = nn.Parameter(init_scale * torch.randn(n_visible, n_hidden))
        self.a = nn.Parameter(torch.zeros(n_visible))    # visible means
        self.b = nn.Parameter(torch.zeros(n_hidden))     # hidden bias
        self.log_sigma = nn.Parameter(torch.full((n_visible,), math.log(sigma)), requires_grad=learn_sigma)

    def args(self) -> dict:
        return {"n_visible": self.n_visible, "n_hidden": self.n_hidden,
                "learn_sigma": bool(self.log_sigma.requires_grad)}

    @property
    def sigma(self) -> torch.Tensor:
        return torch.exp(self.log_sigma)

    # ---------------------------------------------------------------- conditionals
    def hidden_input(self, v: torch.Tensor) -> torch.Tensor:
        return (v / self.sigma) @ self.W + self.b

    def p_h_given_v(self, v: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.hidden_input(v))

    def mean_v_given_h(self, h: torch.Tensor) -> torch.Tensor:
        return self.a + self.sigma * (h @ self.W.T)

    # ---------------------------------------------------------------- energies
    def energy(self, v: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        s = self.sigma
        return (((v - self.a) / s) ** 2).sum(-1) / 2 - (((v / s) @ self.W) * h).sum(-1) - h @ self.b

    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        return (((v - self.a) / self.sigma) ** 2).sum(-1) / 2 - F.softplus(self.hidden_input(v)).sum(-1)

    def _hidden_states(self) -> torch.Tensor:
        return torch.tensor(list(itertools.product((0.0, 1.0), repeat=self.n_hidden)), dtype=self.W.dtype,
                            device=self.W.device)

    def log_p_h(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All hidden states (2^n_h, n_h) and their unnormalised log marginals (v integrated out)."""
        h = self._hidden_states()
        c = h @ self.W.T
        return h, h @ self.b + (self.a * c / self.sigma + c * c / 2).sum(-1)

    def exact_log_z(self) -> torch.Tensor:
        """log Z by enumerating the hidden layer (differentiable; n_hidden <= ~20)."""
        _, lp = self.log_p_h()
        return torch.logsumexp(lp, 0) + (0.5 * math.log(2 * math.pi) + self.log_sigma).sum()

    def exact_log_likelihood(self, v: torch.Tensor) -> torch.Tensor:
        return (-self.free_energy(v)).mean() - self.exact_log_z()

    @torch.no_grad()
    def exact_model_sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n exact samples of v: h from its marginal by enumeration, then v | h."""
        h, lp = self.log_p_h()
        idx = torch.multinomial(torch.softmax(lp, 0), n, replacement=True, generator=generator)
        z = torch.randn(n, self.n_visible, generator=generator, dtype=self.W.dtype, device=self.W.device)
        return self.mean_v_given_h(h[idx]) + self.sigma * z

    # ---------------------------------------------------------------- training
    @torch.no_grad()
    def negative_sample(self, v0: torch.Tensor, k: int, noise: Noise | None = None,
                        start: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """v_k after k Gibbs steps from v0 (or `start`) and the reconstruction error per unit of the first
        step's mean E[v | h ~ p(h | v0)]."""
        u = noise if noise is not None else (lambda n: torch.rand(v0.shape[0], n, dtype=v0.dtype,
                                                                 device=v0.device))
        v = v0 if start is None else start
        recon = None
        for _ in range(k):
            h = (u(self.n_hidden) < self.p_h_given_v(v)).to(v.dtype)
            mv = self.mean_v_given_h(h)
            if recon is None:
                recon = (v0 - mv).pow(2).mean()
            v = mv + self.sigma * normal_from_uniforms(u(self.n_visible), u(self.n_visible)).to(v.dtype)
        return v, recon

    def cd_loss(self, v_data: torch.Tensor, v_model: torch.Tensor) -> torch.Tensor:
        """Surrogate whose gradient is −(<∂ log p>_data − <∂ log p>_model): the CD estimate when v_model are
        the negative samples, the exact gradient when they are exact model samples."""
        return self.free_energy(v_data).mean() - self.free_energy(v_model.detach()).mean()

    def reconstruction_error(self, v: torch.Tensor, u: torch.Tensor | None = None) -> torch.Tensor:
        u = torch.rand(v.shape[0], self.n_hidden, dtype=v.dtype, device=v.device) if u is None else u
        h = (u < self.p_h_given_v(v)).to(v.dtype)
        return ((v - self.mean_v_given_h(h)) ** 2).mean(-1)

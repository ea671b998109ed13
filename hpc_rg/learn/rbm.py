"""Restricted Boltzmann machine with {0,1} ("binary", seed 001) or ±1 ("spin", seed 002) units.

Energy E(v, h) = -v·W·h - a·v - b·h (a: visible bias, b: hidden bias), p(v, h) = exp(-E) / Z, temperature 1.
Conditionals factorise: with x = v·W + b,
  binary: p(h_j = 1 | v) = sigmoid(x_j),              E[h_j | v] = sigmoid(x_j)
  spin:   p(h_j = +1 | v) = sigmoid(2 x_j),           E[h_j | v] = tanh(x_j)      (seed 002, eq. 16-17)
Free energy F(v) = -a·v - sum_j phi(x_j) with phi = softplus (binary) or log(2 cosh) (spin), so
p(v) = exp(-F(v)) / Z. Training minimises the surrogate F(v_data) - F(v_model) whose gradient is the
contrastive-divergence estimate of -d log-likelihood (exact when v_model is drawn from the model).
Random numbers come in as uniforms (`noise(n)` -> tensor (batch, n)) so the trainer controls the streams.
"""
from __future__ import annotations

import itertools
import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from hpc_rg.learn.learner import Learner
from hpc_rg.plugins import Plugin

PLUGINS = (Plugin("learner", "rbm", "RBMLearner", spec="hpc_rg.learn.specs:RBMSpec",
                  doc="restricted Boltzmann machine trained by contrastive divergence (seeds 001, 002)"),)

Noise = Callable[[int], torch.Tensor]


def _phi(x: torch.Tensor, units: str) -> torch.Tensor:
    """log sum_{h in units} exp(h x), elementwise."""
    if units == "binary":
        return F.softplus(x)
    return torch.logaddexp(x, -x)


class RBM(nn.Module):
    def __init__(self, n_visible: int, n_hidden: int, units: str = "spin", init_scale: float = 0.01):
        super().__init__()
        if units not in ("spin", "binary"):
            raise ValueError(f"units = {units!r}: expected 'spin' or 'binary'")
        self.n_visible, self.n_hidden, self.units = int(n_visible), int(n_hidden), units
        self.W = nn.Parameter(init_scale * torch.randn(n_visible, n_hidden))
        self.a = nn.Parameter(torch.zeros(n_visible))   # visible bias
        self.b = nn.Parameter(torch.zeros(n_hidden))    # hidden bias

    # ---------------------------------------------------------------- conditionals and sampling
    def args(self) -> dict:
        return {"n_visible": self.n_visible, "n_hidden": self.n_hidden, "units": self.units}

    def weights(self) -> torch.Tensor:
        """W, shape (n_visible, n_hidden)."""
        return self.W

    def _mean(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x) if self.units == "binary" else torch.tanh(x)

    def _sample(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        if self.units == "binary":
            return (u < torch.sigmoid(x)).to(x.dtype)
        return torch.where(u < torch.sigmoid(2 * x), 1.0, -1.0).to(x.dtype)

    def p_h_given_v(self, v: torch.Tensor) -> torch.Tensor:
        """E[h | v]: sigmoid (binary) or tanh (spin) of v·W + b; for binary units this is p(h = 1 | v)."""
        return self._mean(v @ self.W + self.b)

    def p_v_given_h(self, h: torch.Tensor) -> torch.Tensor:
        """E[v | h] (see p_h_given_v)."""
        return self._mean(h @ self.W.T + self.a)

    def sample_h(self, v: torch.Tensor, u: torch.Tensor | None = None) -> torch.Tensor:
        u = torch.rand(v.shape[0], self.n_hidden, device=v.device, dtype=v.dtype) if u is None else u
        return self._sample(v @ self.W + self.b, u)

    def sample_v(self, h: torch.Tensor, u: torch.Tensor | None = None) -> torch.Tensor:
        u = torch.rand(h.shape[0], self.n_visible, device=h.device, dtype=h.dtype) if u is None else u
        return self._sample(h @ self.W.T + self.a, u)

    def gibbs(self, v: torch.Tensor, k: int, noise: Noise | None = None) -> torch.Tensor:
        """k steps v -> h -> v (the RBM flow of seed 002 is repeated calls with k = 1)."""
        for _ in range(k):
            h = self.sample_h(v, noise(self.n_hidden) if noise else None)
            v = self.sample_v(h, noise(self.n_visible) if noise else None)
        return v

    # ---------------------------------------------------------------- energies and monitors
    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        """F(v) = -a·v - sum_j phi(v·W + b)_j, shape (batch,)."""
        return -(v @ self.a) - _phi(v @ self.W + self.b, self.units).sum(-1)

    def energy(self, v: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return -((v @ self.W) * h).sum(-1) - v @ self.a - h @ self.b

    def flip(self, v: torch.Tensor) -> torch.Tensor:
        return 1.0 - v if self.units == "binary" else -v

    def cd_loss(self, v_data: torch.Tensor, v_model: torch.Tensor) -> torch.Tensor:
        """Surrogate whose gradient is -(<.>_data - <.>_model) of the log-likelihood gradient."""
        return self.free_energy(v_data).mean() - self.free_energy(v_model.detach()).mean()

    @torch.no_grad()
    def cd_statistics(self, v0: torch.Tensor, k: int = 1, noise: Noise | None = None,
                      start: torch.Tensor | None = None, scale: float = 1.0,
                      out: dict[str, torch.Tensor] | None = None
                      ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """CD-k (or persistent CD from the chain states `start`) estimate of d<log p(v)>/d theta,
        <.>_data - <.>_model with conditional means for h: returns (gradients {"W", "a", "b"}, the negative
        samples v_k, the reconstruction error per unit of the first step E[v | h ~ p(h | v0)], or None for
        persistent chains, where it would cost an extra product).  `scale` multiplies the gradients (-1: the
        descent direction), applied to the small factor so that W's gradient costs no extra pass. `out`:
        tensors {"W", "a", "b"} to write the gradients into (the trainer's gradient buffers: no allocation
        and no copy), returned in their place.
        Five matrix products per CD-1 step (the same count as scikit-learn's BernoulliRBM)."""
        u = noise if noise is not None else (lambda n: torch.rand(v0.shape[0], n, device=v0.device, dtype=v0.dtype))
        W = self.W
        ph0 = self._mean(torch.addmm(self.b, v0, W))
        m = ph0 if start is None else self._mean(torch.addmm(self.b, start, W))
        recon = None
        for _ in range(k):
            h = self._sample_from_mean(m, u(self.n_hidden))
            mv = self._mean(torch.addmm(self.a, h, W.T))
            if recon is None and start is None:
                recon = (v0 - mv).pow_(2).mean()
            v = self._sample_from_mean(mv, u(self.n_visible))
            m = self._mean(torch.addmm(self.b, v, W))
        n = v0.shape[0]
        c = scale / n
        # both phases in one matrix product: [v0; vk]^T [ph0; -phk]
        out = out or {}
        g_w = torch.mm(torch.cat([v0, v]).T, torch.cat([ph0 * c, m * -c]), out=out.get("W"))
        g_a = torch.mul((v0 - v).mean(0), scale, out=out.get("a"))
        g_b = torch.mul((ph0 - m).mean(0), scale, out=out.get("b"))
        return {"W": g_w, "a": g_a, "b": g_b}, v, recon

    def _sample_from_mean(self, m: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """A sample of units with conditional means m, written over the fresh uniforms u (one pass, no
        second transcendental): binary P(1) = m; spin P(+1) = sigmoid(2x) = (1 + tanh x) / 2 = (1 + m) / 2."""
        if self.units == "binary":
            return u.lt_(m)
        return u.mul_(2).sub_(1).lt_(m).mul_(2).sub_(1)

    def surrogate(self, grads: dict[str, torch.Tensor]) -> torch.Tensor:
        """A scalar whose gradient is -grads (so an optimiser minimising it ascends the log-likelihood);
        the backward pass is elementwise, and DDP averages it over ranks like any loss."""
        return -((self.W * grads["W"]).sum() + (self.a * grads["a"]).sum() + (self.b * grads["b"]).sum())

    def reconstruction_error(self, v: torch.Tensor, u: torch.Tensor | None = None) -> torch.Tensor:
        """Mean squared difference per unit between v and E[v | h], h ~ p(h | v); shape (batch,)."""
        return ((v - self.p_v_given_h(self.sample_h(v, u))) ** 2).mean(-1)

    def pseudo_log_likelihood(self, v: torch.Tensor, sites: torch.Tensor | None = None) -> torch.Tensor:
        """Stochastic pseudo-log-likelihood: n_v log p(v_i | v_-i) = n_v log sigmoid(F(v~) - F(v)) for one
        random site i per sample (v~: v with unit i flipped); shape (batch,)."""
        if sites is None:
            sites = torch.randint(self.n_visible, (v.shape[0],), device=v.device)
        flipped = v.clone()
        rows = torch.arange(v.shape[0], device=v.device)
        flipped[rows, sites] = self.flip(v[rows, sites])
        return self.n_visible * F.logsigmoid(self.free_energy(flipped) - self.free_energy(v))

    # ---------------------------------------------------------------- exact results for small models
    def unit_values(self) -> tuple[float, float]:
        return (0.0, 1.0) if self.units == "binary" else (-1.0, 1.0)

    def _states(self, n: int) -> torch.Tensor:
        vals = self.unit_values()
        return torch.tensor(list(itertools.product(vals, repeat=n)), dtype=self.W.dtype, device=self.W.device)

    def exact_log_z(self) -> torch.Tensor:
        """log Z by enumerating the smaller layer (differentiable); for min(n_v, n_h) <= ~22."""
        if self.n_hidden <= self.n_visible:
            h = self._states(self.n_hidden)
            log_p_h = h @ self.b + _phi(h @ self.W.T + self.a, self.units).sum(-1)
            return torch.logsumexp(log_p_h, 0)
        v = self._states(self.n_visible)
        return torch.logsumexp(-self.free_energy(v), 0)

    def exact_log_likelihood(self, v: torch.Tensor) -> torch.Tensor:
        """Mean log p(v) over the batch (exact; small models only)."""
        return (-self.free_energy(v)).mean() - self.exact_log_z()

    def visible_distribution(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All visible states (2^n_v, n_v) and their exact probabilities (small n_v only)."""
        v = self._states(self.n_visible)
        log_p = -self.free_energy(v)
        return v, torch.softmax(log_p, 0)

    def exact_gradient(self, v_data: torch.Tensor) -> dict[str, torch.Tensor]:
        """d <log p(v)>_data / d theta = <.>_data - <.>_model, model averages by enumeration of v."""
        v, p = self.visible_distribution()
        with torch.no_grad():
            hd, hm = self.p_h_given_v(v_data), self.p_h_given_v(v)
            n = v_data.shape[0]
            return {"W": v_data.T @ hd / n - (v * p[:, None]).T @ hm,
                    "a": v_data.mean(0) - p @ v,
                    "b": hd.mean(0) - p @ hm}

    # ---------------------------------------------------------------- log Z by annealed importance sampling
    @torch.no_grad()
    def ais_log_z(self, n_runs: int = 100, n_betas: int = 1000, base_bias: torch.Tensor | None = None,
                  generator: torch.Generator | None = None) -> tuple[float, float]:
        """Annealed importance sampling (Salakhutdinov & Murray 2008) from a base model with visible biases
        `base_bias` (default 0) and no couplings; intermediate log p_k*(v) = (1-beta_k) a_A·v + beta_k a·v
        + sum_j phi(beta_k (v·W + b)_j). Returns (log Z estimate, its standard error from the spread of
        the importance weights, delta method)."""
        dev, dt = self.W.device, self.W.dtype
        a_base = torch.zeros(self.n_visible, device=dev, dtype=dt) if base_bias is None else base_bias.to(dev, dt)
        betas = torch.linspace(0.0, 1.0, n_betas, device=dev, dtype=dt)
        lo, hi = self.unit_values()
        log_z0 = torch.logaddexp(lo * a_base, hi * a_base).sum() + self.n_hidden * math.log(2.0)

        def rand(*shape):
            return torch.rand(*shape, generator=generator, device=dev, dtype=dt) if generator is not None \
                else torch.rand(*shape, device=dev, dtype=dt)

        def log_p_star(v, beta):
            return ((1 - beta) * a_base + beta * self.a) @ v.T + _phi(beta * (v @ self.W + self.b), self.units).sum(-1)

        # exact sample of the base model
        p_hi = torch.sigmoid((hi - lo) * a_base)
        v = torch.where(rand(n_runs, self.n_visible) < p_hi, hi, lo).to(dt)
        log_w = torch.zeros(n_runs, device=dev, dtype=dt)
        for k in range(1, n_betas):
            beta = betas[k]
            log_w += log_p_star(v, beta) - log_p_star(v, betas[k - 1])
            h = self._sample(beta * (v @ self.W + self.b), rand(n_runs, self.n_hidden))
            v = self._sample((1 - beta) * a_base + beta * (h @ self.W.T + self.a), rand(n_runs, self.n_visible))
        log_mean_w = torch.logsumexp(log_w, 0) - math.log(n_runs)
        w = torch.exp(log_w - log_w.max())
        rel_err = (w.std() / w.mean() / math.sqrt(n_runs)).item() if n_runs > 1 else float("nan")
        return float(log_z0 + log_mean_w), rel_err


def base_bias_from_data(v_mean: torch.Tensor, units: str, eps: float = 1e-3) -> torch.Tensor:
    """Visible biases of the independent-unit model that matches the data means (a good AIS base)."""
    if units == "binary":
        p = v_mean.clamp(eps, 1 - eps)
        return torch.log(p) - torch.log1p(-p)
    return torch.atanh(v_mean.clamp(-1 + eps, 1 - eps))


def likelihood_metrics(rbms, tasks, spec, suffixes) -> dict:
    """log Z and the test log-likelihood of each trained RBM (with its task and metric-name suffix): exact
    when the smaller layer has <= 20 units, else AIS from a data-matched base (none when ais_runs = 0)."""
    metrics = {}
    for rbm, task, suffix in zip(rbms, tasks, suffixes):
        idx = task.test_idx[:1000] if len(task.test_idx) else task.train_idx[:1000]
        x, _ = task.inputs(idx)
        with torch.no_grad():
            gen = torch.Generator(device=task.device)
            gen.manual_seed(12345)
            v = task._visible(x, lambda n: torch.rand(len(idx), n, generator=gen, device=task.device))
            if min(rbm.n_visible, rbm.n_hidden) <= 20:
                log_z, err, method = float(rbm.exact_log_z()), 0.0, "exact"
            elif spec.ais_runs:
                base = base_bias_from_data(v.mean(0), rbm.units)
                log_z, err = rbm.ais_log_z(spec.ais_runs, spec.ais_betas, base, gen)
                method = "ais"
            else:
                continue
            metrics[f"log_z{suffix}"] = log_z
            metrics[f"log_z_method{suffix}"] = method
            metrics[f"log_z_rel_weight_error{suffix}"] = err
            metrics[f"test_log_likelihood{suffix}"] = float((-rbm.free_energy(v)).mean()) - log_z
    return metrics


class RBMLearner(Learner):
    @classmethod
    def build(cls, args):
        return RBM(**args)

    def model_args(self, lattice_shape, temperatures):
        s = self.spec
        return {"n_visible": int(math.prod(lattice_shape)), "n_hidden": s.n_hidden, "units": s.units,
                "init_scale": s.init_scale}

    def n_parameters(self, lattice_shape):
        return int(math.prod(lattice_shape)) * self.spec.n_hidden

    def tasks(self, model, data, device):
        from hpc_rg.learn.objectives import RBMTask   # objectives imports this module: not at the top (a cycle)
        s = self.spec
        return [RBMTask(model, *data, device, s.units, s.cd_k, s.persistent, s.l1)]

    def metrics(self, model, tasks, history):
        return {**super().metrics(model, tasks, history), **likelihood_metrics([model], tasks, self.spec, [""])}

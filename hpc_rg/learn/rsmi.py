"""Real-space mutual information (RSMI) coarse-graining: Koch-Janusz & Ringel, Nature Physics 14, 578 (2018);
with a neural MI estimator as in RSMI-NE (Gökmen, Ringel, Huber & Koch-Janusz, PRL 127, 240603 (2021)).

A coarse-graining map Λ takes a b×b block V of the lattice to `channels` coarse variables H = Λ(V); it is
trained to maximise a lower bound on I(H; E), the mutual information between H and the block's environment
E (a ring of width `shell` beyond a `buffer` of ignored sites), with the bound's critic trained jointly:
    max_{Λ, f}  InfoNCE(H, E) = E[ f(h_i, e_i) − log (1/K) Σ_j exp f(h_i, e_j) ]
over batches of K windows cut at random places of K different configurations (the other rows of the batch are
the negatives). Λ is a linear b×b kernel per channel (no bias: the Z2 symmetry of the Ising model), or a small
MLP (`mlp` > 0 hidden units). H is a relaxed discrete variable:
    tanh     H = tanh(Λ(V)/τ), τ annealed geometrically from `tau_start` to `tau_end` over the epochs
    gumbel   binary Gumbel-softmax (binary concrete): H = tanh((Λ(V) + ℓ)/(2τ)), ℓ = log u − log(1 − u) logistic
             noise (the difference of two Gumbels), same annealing; at evaluation ℓ = 0
so at the end H is nearly a ±1 block spin whose rule is sign(Λ(V)).
The critic is `mi_neural.SeparableCritic` on (H, E).
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from hpc_rg.learn.learner import Learner
from hpc_rg.learn.objectives import Task
from hpc_rg.plugins import Plugin
from hpc_rg.reduce.mi_neural import SeparableCritic, environment_mask, infonce_rows

RELAXATIONS = ("tanh", "gumbel")
LN2 = math.log(2.0)


class RSMI(nn.Module):
    def __init__(self, block: int = 2, channels: int = 1, buffer: int = 1, shell: int = 2, mlp: int = 0,
                 hidden: int = 64, layers: int = 2, embed: int = 16, relax: str = "tanh", tau_start: float = 1.0,
                 tau_end: float = 0.1):
        super().__init__()
        if relax not in RELAXATIONS:
            raise ValueError(f"relax {relax!r}: expected one of {RELAXATIONS}")
        self.block, self.channels, self.buffer, self.shell = int(block), int(channels), int(buffer), int(shell)
        self.mlp, self.hidden, self.layers, self.embed = int(mlp), int(hidden), int(layers), int(embed)
        self.relax, self.tau_start, self.tau_end = relax, float(tau_start), float(tau_end)
        b2 = self.block ** 2
        if self.mlp:
            self.coarse = nn.Sequential(nn.Linear(b2, self.mlp), nn.Tanh(), nn.Linear(self.mlp, self.channels))
        else:
            self.coarse = nn.Linear(b2, self.channels, bias=False)
        self.register_buffer("mask", torch.from_numpy(environment_mask(self.block, self.buffer, self.shell)))
        self.n_env = int(self.mask.sum())
        self.critic = SeparableCritic(self.channels, self.n_env, self.hidden, self.layers, self.embed)
        self.register_buffer("tau", torch.tensor(self.tau_start))

    def args(self) -> dict:
        return {"block": self.block, "channels": self.channels, "buffer": self.buffer, "shell": self.shell,
                "mlp": self.mlp, "hidden": self.hidden, "layers": self.layers, "embed": self.embed,
                "relax": self.relax, "tau_start": self.tau_start, "tau_end": self.tau_end}

    @property
    def window(self) -> int:
        return self.block + 2 * (self.buffer + self.shell)

    def anneal(self, fraction: float) -> None:
        """τ at `fraction` ∈ [0, 1] of the training: geometric from tau_start to tau_end."""
        f = min(max(fraction, 0.0), 1.0)
        self.tau.fill_(self.tau_start * (self.tau_end / self.tau_start) ** f)

    def preactivation(self, v: torch.Tensor) -> torch.Tensor:
        """(n, b²) block spins -> (n, channels) Λ(V)."""
        return self.coarse(v)

    def coarse_grain(self, v: torch.Tensor, uniforms: torch.Tensor | None = None) -> torch.Tensor:
        """(n, b²) -> (n, channels) relaxed coarse variables in (−1, 1); `uniforms` (n, channels) drive the
        Gumbel noise while training (None: noiseless, as at evaluation)."""
        a = self.preactivation(v)
        if self.relax == "gumbel":
            if uniforms is not None:
                u = uniforms.clamp(1e-6, 1 - 1e-6)
                a = a + torch.log(u) - torch.log1p(-u)
            return torch.tanh(a / (2 * self.tau))
        return torch.tanh(a / self.tau)

    def kernel(self) -> torch.Tensor:
        """The linear kernels (channels, b, b) (the first layer of an MLP map)."""
        w = self.coarse.weight if not self.mlp else self.coarse[0].weight
        return w.detach().reshape(-1, self.block, self.block)

    def cut(self, lattices: torch.Tensor, uniforms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One window per lattice at positions from `uniforms` (n, 2): (V (n, b²), E (n, n_env))."""
        n, ly, lx = lattices.shape
        w = self.window
        py = (uniforms[:, 0] * ly).long().clamp(max=ly - 1)
        px = (uniforms[:, 1] * lx).long().clamp(max=lx - 1)
        ar = torch.arange(w, device=lattices.device)
        rows = (py[:, None] + ar) % ly
        cols = (px[:, None] + ar) % lx
        win = lattices[torch.arange(n, device=lattices.device)[:, None, None], rows[:, :, None], cols[:, None, :]]
        o = self.buffer + self.shell
        v = win[:, o:o + self.block, o:o + self.block].reshape(n, -1)
        return v, win[:, self.mask]

    def rows(self, v: torch.Tensor, e: torch.Tensor, uniforms: torch.Tensor | None, k: int) -> torch.Tensor:
        """Per-row InfoNCE terms (nats), in consecutive batches of k rows (each its own negatives)."""
        h = self.coarse_grain(v, uniforms)
        out = []
        for lo in range(0, len(h), k):
            if len(h) - lo < 2:
                break
            out.append(infonce_rows(self.critic(h[lo:lo + k], e[lo:lo + k])))
        return torch.cat(out) if out else torch.zeros(0, device=v.device)


class RSMITask(Task):
    """RSMI on lattice configurations (rows of an ensemble source): each row of a batch is one configuration,
    a window is cut at a position drawn from the trainer's uniforms (so the batches do not depend on the
    rank count); the loss is −InfoNCE(H, E); the monitor `mi_bits` is the bound in bits on held-out
    configurations, in batches of `batch` rows as in training."""

    def __init__(self, model: RSMI, source, train_idx, test_idx, device, batch: int, dtype=torch.float32):
        super().__init__(source, train_idx, test_idx, device, dtype)
        self.model = self.trainable = model
        self.batch = int(batch)

    def inputs(self, idx):
        return torch.from_numpy(self.rows(idx).astype(np.float32)).to(self.device), None

    def _pairs(self, x, noise, train: bool):
        u = noise(2 + self.model.channels)
        v, e = self.model.cut(x, u[:, :2])
        return v, e, (u[:, 2:] if train and self.model.relax == "gumbel" else None)

    def loss(self, x, y, noise):
        v, e, g = self._pairs(x, noise, True)
        rows = self.model.rows(v, e, g, len(x))
        value = rows.mean()
        return -value, {"mi_bits": value.item() / LN2, "tau": float(self.model.tau)}

    def eval_keys(self):
        return ["mi_bits"]

    def eval_sums(self, x, y, noise):
        v, e, _ = self._pairs(x, noise, False)
        return {"mi_bits": self.model.rows(v, e, None, self.batch).sum() / LN2}

    def end_epoch(self, done: int, total: int) -> None:
        self.model.anneal(done / total)


class PairTask(RSMITask):
    """RSMI on given (V, E) pairs in memory, e.g. a synthetic model with a planted filter."""

    def __init__(self, model: RSMI, v: np.ndarray, e: np.ndarray, n_test: int, device, batch: int):
        n = len(v)
        Task.__init__(self, None, np.arange(n - n_test), np.arange(n - n_test, n), device)
        self.model = self.trainable = model
        self.batch = int(batch)
        self.v = torch.as_tensor(np.asarray(v, np.float32)).reshape(n, -1)
        self.e = torch.as_tensor(np.asarray(e, np.float32)).reshape(n, -1)

    def inputs(self, idx):
        idx = torch.as_tensor(np.asarray(idx))
        return self.v[idx], self.e[idx]

    def _pairs(self, x, noise, train: bool):
        u = noise(self.model.channels)
        return x, self._e, (u if train and self.model.relax == "gumbel" else None)

    def loss(self, x, y, noise):
        self._e = y
        return super().loss(x, y, noise)

    def eval_sums(self, x, y, noise):
        self._e = y
        return super().eval_sums(x, y, noise)


PLUGINS = (Plugin("learner", "rsmi", "RSMILearner", spec="hpc_rg.learn.specs:RSMISpec",
                  doc="RSMI coarse-graining map maximising the InfoNCE bound on I(H; E) (issue #21)"),)


class RSMILearner(Learner):
    @classmethod
    def build(cls, args):
        return RSMI(**args)

    def model_args(self, lattice_shape, temperatures):
        s = self.spec
        return {"block": s.block, "channels": s.channels, "buffer": s.buffer, "shell": s.shell, "mlp": s.mlp,
                "hidden": s.hidden, "layers": s.layers, "embed": s.embed, "relax": s.relax,
                "tau_start": s.tau_start, "tau_end": s.tau_end}

    def tasks(self, model, data, device):
        return [RSMITask(model, *data, device, self.spec.batch_size)]

    def repeat_extras(self, model):
        return {"kernel": model.kernel().detach().cpu().numpy()}

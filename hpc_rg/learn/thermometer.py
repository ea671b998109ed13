"""Temperature classifier of seed 002: lattice -> distribution over the training temperatures.

The paper does not give its architecture. Ours is translation invariant and size agnostic, so it can also
read coarse-grained lattices (RG blocks, stacked-RBM hidden layers of another size): two periodic 3x3
convolutions with ReLU, spatial averages of their features (local, energy-like densities), then an MLP to
logits over the n_T temperatures. `inputs`:
  conv    the pooled convolution features only (default): every input is a local density, learned from the
          lattices themselves, so the same network reads lattices of any size consistently
  conv_m  joined with the hand-made global |m| and m² (this project's first thermometer): order-parameter
          features whose distribution depends on the lattice size, so a thermometer trained on one size
          reads another size with a bias. Model files written before `inputs` existed carry this one.
Input: spins ±1 (or real block averages in [-1, 1]), shape (batch, Ly, Lx).

Read-outs (`readouts`): the posterior mean Σ_k p_k T_k, and the peak: the ladder temperature where the
(average) probability vector is largest, which is what the paper reads off its "average probability of
temperature" curves.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from hpc_rg.learn.learner import Learner
from hpc_rg.learn.objectives import ThermometerTask
from hpc_rg.plugins import Plugin

PLUGINS = (Plugin("learner", "thermometer", "ThermometerLearner", spec="hpc_rg.learn.specs:ThermometerSpec",
                  doc="temperature classifier, the thermometer of RG steps (seed 002)"),)


INPUTS = ("conv", "conv_m")


class Thermometer(nn.Module):
    def __init__(self, temperatures: list[float] | tuple[float, ...], channels: int = 16, hidden: int = 64,
                 inputs: str = "conv"):
        super().__init__()
        if inputs not in INPUTS:
            raise ValueError(f"inputs {inputs!r}: expected one of {INPUTS}")
        self.channels, self.hidden, self.inputs = int(channels), int(hidden), inputs
        self.register_buffer("temperatures", torch.tensor([float(t) for t in temperatures]))
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1, padding_mode="circular"), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1, padding_mode="circular"), nn.ReLU())
        n_in = channels + (2 if inputs == "conv_m" else 0)
        self.head = nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, len(temperatures)))

    def args(self) -> dict:
        return {"temperatures": self.temperatures.tolist(), "channels": self.channels, "hidden": self.hidden,
                "inputs": self.inputs}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits over the training temperatures, (batch, n_T)."""
        x = x.to(self.temperatures.dtype)
        if x.dim() == 2:  # one lattice
            x = x[None]
        f = self.features(x[:, None]).mean((-2, -1))
        if self.inputs == "conv_m":
            m = x.flatten(1).mean(1, keepdim=True)
            f = torch.cat([f, m.abs(), m * m], 1)
        return self.head(f)

    @torch.no_grad()
    def predict_temperature(self, lattices) -> tuple[torch.Tensor, torch.Tensor]:
        """(probabilities (batch, n_T), posterior-mean temperature (batch,)) for ±1 lattices (batch, Ly, Lx)
        (numpy or torch; {0,1} inputs must be mapped to ±1 first). The paper's peak read-out of a set of
        lattices is `peak_temperature(p.mean(0))`."""
        x = torch.as_tensor(lattices, device=self.temperatures.device)
        p = torch.softmax(self(x), -1)
        return p, p @ self.temperatures

    def peak_temperature(self, p_mean):
        """The ladder temperature at the maximum of an (average) probability vector (..., n_T): the paper's
        read-out ("average probability of temperature" curves are read at their peak)."""
        return peak_temperature(np.asarray(p_mean), self.temperatures.cpu().numpy())


def peak_temperature(p_mean, temperatures):
    """temperatures[argmax p] over the last axis (numpy): the peak of an average probability vector."""
    return np.asarray(temperatures, dtype=float)[np.argmax(np.asarray(p_mean), axis=-1)]


class ThermometerLearner(Learner):
    @classmethod
    def build(cls, args):
        # files written before the `inputs` option existed were all trained with the |m|, m² features
        return Thermometer(**{"inputs": "conv_m", **args})

    def model_args(self, lattice_shape, temperatures):
        s = self.spec   # the classes are the training temperatures
        return {"temperatures": list(temperatures), "channels": s.channels, "hidden": s.hidden, "inputs": s.inputs}

    def tasks(self, model, data, device):
        return [ThermometerTask(model, *data, device)]

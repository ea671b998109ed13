"""Temperature classifier of seed 002: lattice -> distribution over the training temperatures.

The paper does not give its architecture. Ours is translation invariant and size agnostic, so it can also
read coarse-grained lattices (RG blocks, stacked-RBM hidden layers of another size): two periodic 3x3
convolutions with ReLU, spatial averages of their features (local, energy-like densities) joined with the
global |m| and m² (order-parameter features), then an MLP to logits over the n_T temperatures.
Input: spins ±1, shape (batch, Ly, Lx).
"""
from __future__ import annotations

import torch
from torch import nn


class Thermometer(nn.Module):
    def __init__(self, temperatures: list[float] | tuple[float, ...], channels: int = 16, hidden: int = 64):
        super().__init__()
        self.channels, self.hidden = int(channels), int(hidden)
        self.register_buffer("temperatures", torch.tensor([float(t) for t in temperatures]))
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1, padding_mode="circular"), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1, padding_mode="circular"), nn.ReLU())
        self.head = nn.Sequential(nn.Linear(channels + 2, hidden), nn.ReLU(), nn.Linear(hidden, len(temperatures)))

    def args(self) -> dict:
        return {"temperatures": self.temperatures.tolist(), "channels": self.channels, "hidden": self.hidden}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits over the training temperatures, (batch, n_T)."""
        x = x.to(self.temperatures.dtype)
        if x.dim() == 2:  # one lattice
            x = x[None]
        m = x.flatten(1).mean(1, keepdim=True)
        f = self.features(x[:, None]).mean((-2, -1))
        return self.head(torch.cat([f, m.abs(), m * m], 1))

    @torch.no_grad()
    def predict_temperature(self, lattices) -> tuple[torch.Tensor, torch.Tensor]:
        """(probabilities (batch, n_T), mean temperature (batch,)) for ±1 lattices (batch, Ly, Lx)
        (numpy or torch; {0,1} inputs must be mapped to ±1 first)."""
        x = torch.as_tensor(lattices, device=self.temperatures.device)
        p = torch.softmax(self(x), -1)
        return p, p @ self.temperatures

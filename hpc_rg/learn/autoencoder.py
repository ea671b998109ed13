"""Deep autoencoder of seed 003: ReLU encoder, tanh decoder, MSE + L1 reconstruction loss.

Encoder sizes (n_0, n_1, ..., n_k), e.g. 1600-400-100-25 ("LargeNet") or 1600-100-25 ("SmallNet"); the
decoder mirrors them. Inputs are ±1 spins, so the tanh output lives on the same scale.
"""
from __future__ import annotations

import torch
from torch import nn


class Autoencoder(nn.Module):
    def __init__(self, layers: list[int] | tuple[int, ...]):
        super().__init__()
        self.sizes = tuple(int(n) for n in layers)
        pairs = list(zip(self.sizes[:-1], self.sizes[1:]))
        self.encoder = nn.ModuleList(nn.Linear(a, b) for a, b in pairs)
        self.decoder = nn.ModuleList(nn.Linear(b, a) for a, b in reversed(pairs))

    def args(self) -> dict:
        return {"layers": list(self.sizes)}

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        for lin in self.encoder:
            x = torch.relu(lin(x))
        return x

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        for lin in self.decoder:
            z = torch.tanh(lin(z))
        return z

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def weights(self) -> list[torch.Tensor]:
        """Encoder weights bottom first, each (n_in, n_out) (the orientation of RBM.W)."""
        return [lin.weight.T for lin in self.encoder]

    def receptive_fields(self, layer: int) -> torch.Tensor:
        """Product of encoder weights up to `layer` (1-based), (n_input, sizes[layer]) (seed 003 Fig. 3)."""
        r = self.encoder[0].weight.T
        for lin in self.encoder[1:layer]:
            r = r @ lin.weight.T
        return r

    def l1(self) -> torch.Tensor:
        return sum(lin.weight.abs().sum() for lin in (*self.encoder, *self.decoder))

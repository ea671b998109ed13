"""The coarse-graining CNN of seed 000 (Nguyen & Howe).

A b x b convolution with stride b (no padding) and tanh maps a b^2 x b^2 patch to a b x b coarse-grained
image with `channels` variables per block; an MLP gives the logit of "correlated" (sigmoid = probability).
`frozen` fixes the kernel to the boundary average (1/8 on each edge site and 0 at the centre for b = 3; in
general 1/(number of boundary sites)) with zero bias and trains only the MLP.

The MLP (`head`):
  dense_input     the paper's "ReLU activation function for the input and hidden layers" read as a
                  Keras-style MLP: flatten -> Dense(b^2 = number of coarse sites, ReLU) input layer ->
                  Dense(hidden, ReLU) -> Dense(1). The coarse spins enter the input layer with their sign.
  relu_on_coarse  this project's first reading: ReLU applied to the tanh coarse image itself -> flatten ->
                  Dense(hidden, ReLU) -> Dense(1). With the frozen (bias-free) kernel every block whose
                  boundary average is negative becomes 0, so the MLP never sees the sign of those blocks
                  (measured: ~0.03 lower test accuracy frozen). Kept to reproduce earlier runs; model files
                  written before `head` existed carry this head.
"""
from __future__ import annotations

import torch
from torch import nn

from hpc_rg.learn.learner import PatchLearner
from hpc_rg.learn.objectives import PatchTask
from hpc_rg.plugins import Plugin

PLUGINS = (Plugin("learner", "coarse_cnn", "CoarseCNNLearner", spec="hpc_rg.learn.specs:CoarseCNNSpec",
                  doc="coarse-graining CNN classifying correlated from scrambled patches (seed 000)"),)


def boundary_average_kernel(b: int) -> torch.Tensor:
    k = torch.ones(b, b)
    k[1:-1, 1:-1] = 0.0
    return k / k.sum()


HEADS = ("dense_input", "relu_on_coarse")


class CoarseCNN(nn.Module):
    def __init__(self, block: int = 3, channels: int = 1, hidden: int = 10, frozen: bool = False,
                 head: str = "dense_input"):
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"head {head!r}: expected one of {HEADS}")
        self.block, self.channels, self.hidden, self.frozen = int(block), int(channels), int(hidden), bool(frozen)
        self.head = head
        self.conv = nn.Conv2d(1, channels, block, stride=block)
        if frozen:
            with torch.no_grad():
                self.conv.weight.copy_(boundary_average_kernel(block).expand_as(self.conv.weight))
                self.conv.bias.zero_()
            self.conv.weight.requires_grad_(False)
            self.conv.bias.requires_grad_(False)
        n_in, sites = channels * block * block, block * block
        if head == "dense_input":
            self.mlp = nn.Sequential(nn.Flatten(), nn.Linear(n_in, sites), nn.ReLU(), nn.Linear(sites, hidden),
                                     nn.ReLU(), nn.Linear(hidden, 1))
        else:   # the layout (and state_dict keys) of the model files written before `head` existed
            self.mlp = nn.Sequential(nn.ReLU(), nn.Flatten(), nn.Linear(n_in, hidden), nn.ReLU(),
                                     nn.Linear(hidden, 1))

    def args(self) -> dict:
        return {"block": self.block, "channels": self.channels, "hidden": self.hidden, "frozen": self.frozen,
                "head": self.head}

    def linears(self) -> list[nn.Linear]:
        """The MLP's dense layers, input first (ReLU between consecutive ones)."""
        return [m for m in self.mlp if isinstance(m, nn.Linear)]

    def coarse_grain(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, b², b²) or (batch, 1, b², b²) spins -> (batch, channels, b, b) in (-1, 1)."""
        if x.dim() == 3:
            x = x[:, None]
        return torch.tanh(self.conv(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logit of P(correlated), shape (batch,)."""
        return self.mlp(self.coarse_grain(x)).squeeze(-1)

    def kernel(self) -> torch.Tensor:
        """The learned coarse-graining kernels, (channels, b, b)."""
        return self.conv.weight.detach()[:, 0]


class CoarseCNNLearner(PatchLearner):
    batched_repeats = True      # hundreds of tiny repeats: K of them trained at once as one batched model

    @classmethod
    def build(cls, args):
        # files written before the `head` option existed were all trained with the relu_on_coarse MLP
        return CoarseCNN(**{"head": "relu_on_coarse", **args})

    def model_args(self, lattice_shape, temperatures):
        s = self.spec
        return {"block": s.block, "channels": s.channels, "hidden": s.hidden, "frozen": s.frozen, "head": s.head}

    def tasks(self, model, data, device):
        return [PatchTask(model, data["x_train"], data["y_train"], data["x_test"], data["y_test"], device)]

    def train_group(self, models, data, opts, device) -> list[dict]:
        """Repeats trained at once (`batched_cnn.train_group`): the metrics of each."""
        from hpc_rg.learn.batched_cnn import train_group   # batched_cnn imports this module: not at the top
        return train_group(models, data, opts, device)

    def repeat_extras(self, model):
        return {"kernel": model.kernel().detach().cpu().numpy()}

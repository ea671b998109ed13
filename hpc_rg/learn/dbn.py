"""Stacked RBMs (deep belief network), trained greedily layer by layer (seeds 001 and 002).

Layer l is an `RBM(layers[l], layers[l+1])` whose visible units are the hidden units of layer l-1. The up
pass maps data to each layer's hidden representation (conditional means or samples); the down pass maps a
top-layer representation back to the visible layer through the transposed weights: together they give the
reconstructions of seed 001 (Fig. 3E) and the hidden configurations whose <v h> correlators seed 002 plots.
"""
from __future__ import annotations

import torch
from torch import nn

from hpc_rg.learn.learner import Learner, stacked_weights
from hpc_rg.learn.objectives import RBMTask
from hpc_rg.learn.rbm import RBM, Noise, likelihood_metrics
from hpc_rg.plugins import Plugin

PLUGINS = (Plugin("learner", "dbn", "DBNLearner", spec="hpc_rg.learn.specs:DBNSpec",
                  doc="stacked RBMs trained greedily layer by layer (seeds 001, 002)"),)


class DBN(nn.Module):
    def __init__(self, layers: list[int] | tuple[int, ...], units: str = "binary", init_scale: float = 0.01):
        """`init_scale`: standard deviation of the initial weights (matrbm, the code seed 001 cites: 0.1)."""
        super().__init__()
        self.sizes = tuple(int(n) for n in layers)
        self.units = units
        self.rbms = nn.ModuleList(RBM(n_v, n_h, units, init_scale)
                                  for n_v, n_h in zip(self.sizes[:-1], self.sizes[1:]))

    def args(self) -> dict:
        return {"layers": list(self.sizes), "units": self.units}

    @property
    def n_layers(self) -> int:
        return len(self.rbms)

    def weights(self) -> list[torch.Tensor]:
        """W of every layer, bottom first; W[l] has shape (sizes[l], sizes[l+1])."""
        return [r.W for r in self.rbms]

    def receptive_fields(self, layer: int) -> torch.Tensor:
        """r^(l) = W^(1) W^(2) ... W^(l) (seed 001, appendix B): (n_visible, sizes[layer]); layer is 1-based."""
        r = self.rbms[0].W
        for rbm in self.rbms[1:layer]:
            r = r @ rbm.W
        return r

    def up(self, v: torch.Tensor, to_layer: int | None = None, sample: bool = False,
           noise: Noise | None = None) -> list[torch.Tensor]:
        """Hidden representations of layers 1..to_layer (default all): means, or samples when `sample`."""
        out = []
        x = v
        for rbm in self.rbms[: self.n_layers if to_layer is None else to_layer]:
            if sample:
                x = rbm.sample_h(x, noise(rbm.n_hidden) if noise else None)
            else:
                x = rbm.p_h_given_v(x)
            out.append(x)
        return out

    def down(self, h: torch.Tensor, from_layer: int | None = None, sample: bool = False,
             noise: Noise | None = None) -> torch.Tensor:
        """Map a representation of layer `from_layer` (default top) back to the visible layer."""
        x = h
        for rbm in reversed(self.rbms[: self.n_layers if from_layer is None else from_layer]):
            if sample:
                x = rbm.sample_v(x, noise(rbm.n_visible) if noise else None)
            else:
                x = rbm.p_v_given_h(x)
        return x

    def reconstruct(self, v: torch.Tensor, depth: int | None = None) -> torch.Tensor:
        """Means up to layer `depth` (default top) and back down (seed 001 Fig. 3E reconstructions)."""
        depth = self.n_layers if depth is None else depth
        return self.down(self.up(v, depth)[-1], depth)


class DBNLearner(Learner):
    @classmethod
    def build(cls, args):
        return DBN(**args)

    def model_args(self, lattice_shape, temperatures):
        s = self.spec
        return {"layers": list(s.layers), "units": s.units, "init_scale": s.init_scale}

    def n_parameters(self, lattice_shape):
        return stacked_weights(self.spec.layers)

    def tasks(self, model, data, device):
        """One phase per layer: layer l trains on the layers below's conditional means (or samples)."""
        s = self.spec
        tasks = []
        for layer in range(model.n_layers):
            def lift(x, noise, layer=layer):
                with torch.no_grad():
                    return model.up(x, layer, sample=s.propagate == "sample", noise=noise)[-1] if layer else x
            tasks.append(RBMTask(model.rbms[layer], *data, device, s.units, s.cd_k, s.persistent, s.l1, lift=lift,
                                 average_last=s.average_last))
        return tasks

    def phase_tag(self, phase):
        return {"layer": phase + 1}

    def metrics(self, model, tasks, history):
        suffixes = [f"_layer{layer + 1}" for layer in range(len(tasks))]
        return {**super().metrics(model, tasks, history),
                **likelihood_metrics(list(model.rbms), tasks, self.spec, suffixes)}

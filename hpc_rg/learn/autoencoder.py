"""Deep autoencoder of seed 003: ReLU encoder, tanh decoder, MSE (or RMSE) + L1 reconstruction loss.

Encoder sizes (n_0, n_1, ..., n_k), e.g. 1600-400-100-25 ("LargeNet") or 1600-100-25 ("SmallNet"); the
decoder mirrors them. Inputs are ±1 spins, so the tanh output lives on the same scale.

Options (the paper names none; the TensorFlow library it most likely used, yadlt, is the reference):
  tied        the decoder's weights are the encoder's transposed (yadlt's default), only its biases its own
  init        "default": torch's nn.Linear initialisation; "truncated_normal": weights from a normal of
              standard deviation `init_scale` cut at ±2σ (tf.truncated_normal, yadlt 0.1), biases 0
  pretraining "rbm": a Gaussian–Bernoulli RBM (first layer) and {0,1} RBMs above it, trained greedily before
              the fine-tuning, are kept in `self.pretrain`; `adopt_pretraining()` copies them into the encoder
              (W/σ, hidden bias) and decoder (σW or the tied transpose, visible bias) once.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hpc_rg.learn.gaussian_rbm import GaussianRBM
from hpc_rg.learn.learner import Learner, stacked_weights
from hpc_rg.learn.objectives import autoencoder_tasks
from hpc_rg.learn.rbm import RBM
from hpc_rg.plugins import Plugin

PLUGINS = (Plugin("learner", "autoencoder", "AutoencoderLearner", spec="hpc_rg.learn.specs:AutoencoderSpec",
                  doc="deep autoencoder, optionally RBM-pretrained (seed 003)"),)


class Autoencoder(nn.Module):
    def __init__(self, layers: list[int] | tuple[int, ...], tied: bool = False, init: str = "default",
                 init_scale: float = 0.1, pretraining: str = "none", learn_sigma: bool = False):
        super().__init__()
        if init not in ("default", "truncated_normal") or pretraining not in ("none", "rbm"):
            raise ValueError(f"init = {init!r}, pretraining = {pretraining!r}")
        self.sizes = tuple(int(n) for n in layers)
        self.tied, self.pretraining, self.learn_sigma = bool(tied), pretraining, bool(learn_sigma)
        pairs = list(zip(self.sizes[:-1], self.sizes[1:]))
        self.encoder = nn.ModuleList(nn.Linear(a, b) for a, b in pairs)
        self.decoder = nn.ModuleList(nn.Linear(b, a) for a, b in reversed(pairs))
        if self.tied:     # the decoder keeps its biases only; its weights are the encoder's transposed
            for lin in self.decoder:
                del lin.weight
                lin.register_parameter("weight", None)
        if init == "truncated_normal":
            with torch.no_grad():
                for lin in self.linears():
                    if lin.weight is not None:
                        nn.init.trunc_normal_(lin.weight, std=init_scale, a=-2 * init_scale, b=2 * init_scale)
                    lin.bias.zero_()
        if pretraining == "rbm":
            self.pretrain = nn.ModuleList(
                [GaussianRBM(*pairs[0], learn_sigma=learn_sigma)] + [RBM(a, b, "binary") for a, b in pairs[1:]])
            # 0 until the pretrained weights are copied in (a buffer: saved with checkpoints, so a resumed
            # fine-tuning does not copy them again over its progress)
            self.register_buffer("adopted", torch.zeros((), dtype=torch.int64))

    def args(self) -> dict:
        return {"layers": list(self.sizes), "tied": self.tied, "pretraining": self.pretraining,
                "learn_sigma": self.learn_sigma}

    def linears(self) -> list[nn.Linear]:
        return [*self.encoder, *self.decoder]

    def fine_tuned_parameters(self) -> list[nn.Parameter]:
        """The parameters the reconstruction loss trains (not the pretraining RBMs')."""
        return [p for lin in self.linears() for p in (lin.weight, lin.bias) if p is not None]

    def _decoder_weight(self, k: int) -> torch.Tensor:
        """Weight (n_out, n_in) of decoder layer k (k = 0 maps the code up one layer)."""
        if self.tied:
            return self.encoder[len(self.encoder) - 1 - k].weight.T
        return self.decoder[k].weight

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        for lin in self.encoder:
            x = torch.relu(lin(x))
        return x

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        for k, lin in enumerate(self.decoder):
            z = torch.tanh(F.linear(z, self._decoder_weight(k), lin.bias))
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

    def penalised(self, placement: str = "all", target: str = "weights") -> list[torch.Tensor]:
        """The tensors an L1 term sums |.| over: placement "encoder" | "all" (encoder and decoder) | "none";
        target "weights" | "weights+biases" (yadlt: encoder weights and biases)."""
        if placement == "none":
            return []
        lins = list(self.encoder) + (list(self.decoder) if placement == "all" else [])
        out = [lin.weight for lin in lins if lin.weight is not None]
        if target == "weights+biases":
            out += [lin.bias for lin in lins]
        return out

    def l1(self, placement: str = "all", target: str = "weights") -> torch.Tensor:
        return sum((p.abs().sum() for p in self.penalised(placement, target)), torch.zeros(()))

    @torch.no_grad()
    def adopt_pretraining(self) -> bool:
        """Copy the pretrained RBMs into the encoder and decoder (once); True when it copied."""
        if self.pretraining != "rbm" or int(self.adopted):
            return False
        n = len(self.encoder)
        for l, rbm in enumerate(self.pretrain):
            W = rbm.W
            if l == 0:                       # Gaussian visibles: hidden input (v/σ)·W, visible mean a + σ W h
                s = rbm.sigma[:, None]
                enc_w, dec_w = W / s, W * s
            else:
                enc_w, dec_w = W, W
            self.encoder[l].weight.copy_(enc_w.T)
            self.encoder[l].bias.copy_(rbm.b)
            dec = self.decoder[n - 1 - l]
            if not self.tied:
                dec.weight.copy_(dec_w)
            dec.bias.copy_(rbm.a)
        self.adopted.fill_(1)
        return True


class AutoencoderLearner(Learner):
    @classmethod
    def build(cls, args):
        return Autoencoder(**args)

    def model_args(self, lattice_shape, temperatures):
        s = self.spec
        return {"layers": list(s.layers), "tied": s.tied, "init": s.init, "init_scale": s.init_scale,
                "pretraining": s.pretraining, "learn_sigma": s.learn_sigma}

    def n_parameters(self, lattice_shape):
        return stacked_weights(self.spec.layers)

    def tasks(self, model, data, device):
        return autoencoder_tasks(model, self.spec, *data, device)

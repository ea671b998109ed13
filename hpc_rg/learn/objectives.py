"""What "a training step" and "a monitor" mean for each model kind (the trainer's tasks).

A task binds a model to its data: `inputs(idx)` reads rows of the source and makes tensors, `loss(x, y,
noise)` returns (loss, batch metrics), `eval_sums(x, y, noise)` the test monitors summed over a batch, and
`trainable` is the module whose parameters the optimiser updates (one layer of a stack at a time).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hpc_rg.learn.data import to_units
from hpc_rg.learn.rbm import RBM


class Task:
    trainable: nn.Module
    device: torch.device
    train_idx: np.ndarray
    test_idx: np.ndarray
    l1: float = 0.0

    def __init__(self, source, train_idx, test_idx, device, dtype=torch.float32):
        self.source, self.train_idx, self.test_idx = source, np.asarray(train_idx), np.asarray(test_idx)
        self.device, self.dtype = device, dtype
        self._cache: tuple[np.ndarray, np.ndarray] | None = None
        shape = getattr(source, "lattice_shape", ())
        self.row_bytes = int(np.prod(shape)) if shape else 1    # int8 spins per configuration

    def inputs(self, idx):
        raise NotImplementedError

    def prefetch(self, idx: np.ndarray | None) -> None:
        """Read the configurations at `idx` in one sorted pass and serve `rows()` from memory until the next
        call (None drops them)."""
        if idx is None or self.source is None:
            self._cache = None
            return
        keys = np.unique(idx)
        self._cache = (keys, self.source.read(keys))

    def rows(self, idx) -> np.ndarray:
        """Configurations at flat indices `idx` (from the prefetched window when it holds them)."""
        idx = np.asarray(idx, dtype=np.int64)
        if self._cache is not None and len(idx):
            keys, block = self._cache
            pos = np.minimum(np.searchsorted(keys, idx), len(keys) - 1)
            if np.array_equal(keys[pos], idx):
                return block[pos]
        return self.source.read(idx)

    def l1_term(self) -> torch.Tensor:
        ws = [p for p in self.trainable.parameters() if p.requires_grad and p.dim() >= 2]
        return self.l1 * sum(w.abs().sum() for w in ws) if (self.l1 and ws) else torch.zeros((), device=self.device)

    def eval_keys(self) -> list[str]:
        raise NotImplementedError

    def state(self) -> dict:
        return {}

    def load_state(self, extra: dict, world) -> None:
        pass


class LatticeVectors(Task):
    """Whole lattices as visible vectors (seeds 001-003), in 'spin' (±1) or 'binary' ({0,1}) units."""

    def __init__(self, source, train_idx, test_idx, device, units="spin", dtype=torch.float32):
        super().__init__(source, train_idx, test_idx, device, dtype)
        self.units = units

    def inputs(self, idx):
        x = to_units(self.rows(idx), self.units).reshape(len(idx), -1)
        return torch.from_numpy(x).to(self.device, self.dtype), None


class RBMTask(LatticeVectors):
    """CD-k / persistent CD on one RBM; `lift(x, noise)` maps data to this RBM's visible layer (the up
    pass through the trained layers below, for greedy stacks)."""

    def __init__(self, rbm: RBM, source, train_idx, test_idx, device, units, cd_k=1, persistent=False, l1=0.0,
                 lift=None, dtype=torch.float32, average_last=0):
        super().__init__(source, train_idx, test_idx, device, units, dtype)
        self.rbm, self.trainable = rbm, rbm
        self.cd_k, self.persistent, self.l1 = cd_k, persistent, l1
        self.lift = lift
        self.chains: torch.Tensor | None = None   # this rank's rows of the persistent chains
        # matrbm's weight averaging: over the last `average_last` epochs, the running mean of the parameters
        # after every update becomes the layer's parameters at the end (Polyak averaging)
        self.average_last = int(average_last)
        self.avg: dict[str, torch.Tensor] | None = None   # sums of the parameters after each update
        self.avg_n = 0                                     # updates summed
        self.avg_on = False                                # inside the averaging window
        self.avg_skip = False                              # the next call sees the window's starting weights

    def _params(self):
        return (("W", self.rbm.W), ("a", self.rbm.a), ("b", self.rbm.b))

    def _accumulate(self):
        """Add the current parameters (those after the last update) to the running sums."""
        with torch.no_grad():
            if self.avg is None:
                self.avg = {k: p.detach().clone() for k, p in self._params()}
            else:
                for k, p in self._params():
                    self.avg[k].add_(p.detach())
        self.avg_n += 1

    def end_epoch(self, done: int, total: int) -> None:
        """Called by the trainer after each epoch's updates (`done` epochs of `total` completed): opens the
        averaging window `average_last` epochs before the end and, after the last epoch, replaces the
        parameters by their average over every update inside the window."""
        if not self.average_last:
            return
        if done == total - self.average_last:
            self.avg_on, self.avg_skip, self.avg, self.avg_n = True, True, None, 0
        if done == total and self.avg_on:
            self._accumulate()
            with torch.no_grad():
                for k, p in self._params():
                    p.copy_(self.avg[k] / self.avg_n)
            self.avg_on, self.avg, self.avg_n = False, None, 0

    def _average_step(self):
        """Before an update inside the window: sum the parameters the previous update left."""
        if not self.avg_on:
            return
        if self.avg_skip:       # the weights the window starts from are not an update's result
            self.avg_skip = False
        else:
            self._accumulate()

    def _visible(self, x, noise):
        return self.lift(x, noise) if self.lift is not None else x

    def _statistics(self, x, noise, scale=1.0, out=None):
        v0 = self._visible(x, noise)
        start = None
        if self.persistent:
            start = v0 if self.chains is None else self.chains
        grads, vk, recon = self.rbm.cd_statistics(v0, self.cd_k, noise, start, scale, out)
        if self.persistent:
            self.chains = vk
        return grads, {} if recon is None else {"reconstruction": recon.item()}

    def loss(self, x, y, noise):
        """The CD update as the gradient of a surrogate (for autograd; the trainer uses `gradients`)."""
        self._average_step()
        grads, metrics = self._statistics(x, noise)
        return self.rbm.surrogate(grads) + self.l1_term(), metrics

    def gradients(self, x, y, noise, weight=1.0):
        """Write `weight` times the CD descent direction (plus the L1 subgradient l1 sign(W)) into the
        parameters' .grad directly: the same update as `loss(...).backward()` without the surrogate's three
        extra passes over W and the autograd graph (the L1 term's backward is sign(W), as here). A .grad that
        is already set is overwritten in place (the trainer's flat buffer: no copy), else it is created;
        `weight` (this rank's share of the global batch) is folded into the products' small factor."""
        self._average_step()
        rbm = self.rbm
        named = (("W", rbm.W), ("a", rbm.a), ("b", rbm.b))
        out = {k: p.grad for k, p in named if p.grad is not None and p.grad.shape == p.shape}
        grads, metrics = self._statistics(x, noise, scale=-float(weight), out=out)
        if self.l1:
            grads["W"].add_(torch.sign(rbm.W.detach()), alpha=self.l1 * weight)
        for name, p in named:
            if p.requires_grad and name not in out:
                p.grad = grads[name]
        return metrics

    def eval_keys(self):
        return ["reconstruction", "free_energy", "pseudo_log_likelihood"]

    def eval_sums(self, x, y, noise):
        v = self._visible(x, noise)
        sites = (noise(1)[:, 0] * self.rbm.n_visible).long().clamp_max(self.rbm.n_visible - 1)
        return {"reconstruction": self.rbm.reconstruction_error(v, noise(self.rbm.n_hidden)).sum(),
                "free_energy": self.rbm.free_energy(v).sum(),
                "pseudo_log_likelihood": self.rbm.pseudo_log_likelihood(v, sites).sum()}

    def state(self):
        # every entry is gathered over ranks and concatenated along axis 0 by the stage, then split evenly by
        # `load_state`: the averaging sums (the same on every rank) travel as one copy per rank
        out = {"chains": None if self.chains is None else self.chains.cpu().numpy()}
        if self.average_last:
            out["avg_flags"] = np.array([self.avg_n, int(self.avg_on), int(self.avg_skip)], dtype=np.int64)
            for k, v in (self.avg or {}).items():
                out[f"avg_{k}"] = v.cpu().numpy()
        return out

    def load_state(self, extra, world):
        def local(x):
            n = len(x) // world.size
            return x[world.rank * n:(world.rank + 1) * n]
        chains = extra.get("chains")
        if chains is not None:
            self.chains = torch.from_numpy(local(chains)).to(self.device)
        flags = extra.get("avg_flags")
        if self.average_last and flags is not None:
            self.avg_n, on, skip = (int(x) for x in local(flags))
            self.avg_on, self.avg_skip = bool(on), bool(skip)
            self.avg = ({k: torch.from_numpy(local(extra[f"avg_{k}"])).to(self.device) for k in ("W", "a", "b")}
                        if f"avg_W" in extra and extra["avg_W"] is not None else None)


class _ParameterSet(nn.Module):
    """A module holding given parameters (what the optimiser and DDP of one phase see)."""

    def __init__(self, params):
        super().__init__()
        self.params = nn.ParameterList(params)


class AutoencoderTask(LatticeVectors):
    """Reconstruction loss (MSE, or its square root as yadlt's "mean_squared") plus l1 · Σ|θ| over the
    tensors `model.penalised(placement, target)`; the monitor is the MSE whatever the loss."""

    def __init__(self, model, source, train_idx, test_idx, device, l1=5e-4, dtype=torch.float32,
                 l1_placement="all", l1_target="weights", loss="mse"):
        super().__init__(source, train_idx, test_idx, device, "spin", dtype)
        self.model = model
        self.trainable = _ParameterSet(model.fine_tuned_parameters())
        self.l1, self.l1_placement, self.l1_target, self.loss_kind = l1, l1_placement, l1_target, loss

    def l1_term(self) -> torch.Tensor:
        if not self.l1 or self.l1_placement == "none":
            return torch.zeros((), device=self.device)
        return self.l1 * sum(p.abs().sum() for p in self.model.penalised(self.l1_placement, self.l1_target))

    def loss(self, x, y, noise):
        if getattr(self.model, "pretraining", "none") != "none":
            self.model.adopt_pretraining()      # once, at the first fine-tuning step
        mse = F.mse_loss(self.model(x), x)
        rec = torch.sqrt(mse) if self.loss_kind == "rmse" else mse
        return rec + self.l1_term(), {"mse": mse.item()}

    def eval_keys(self):
        return ["mse"]

    def eval_sums(self, x, y, noise):
        return {"mse": ((self.model(x) - x) ** 2).mean(-1).sum()}


class GaussianRBMTask(LatticeVectors):
    """CD-k on a Gaussian–Bernoulli RBM over ±1 spins taken as real values (the autoencoder's pretraining)."""

    def __init__(self, rbm, source, train_idx, test_idx, device, cd_k=1, dtype=torch.float32):
        super().__init__(source, train_idx, test_idx, device, "spin", dtype)
        self.rbm = self.trainable = rbm
        self.cd_k = cd_k

    def loss(self, x, y, noise):
        vk, recon = self.rbm.negative_sample(x, self.cd_k, noise)
        return self.rbm.cd_loss(x, vk), {"reconstruction": recon.item()}

    def eval_keys(self):
        return ["reconstruction", "free_energy"]

    def eval_sums(self, x, y, noise):
        return {"reconstruction": self.rbm.reconstruction_error(x, noise(self.rbm.n_hidden)).sum(),
                "free_energy": self.rbm.free_energy(x).sum()}


def autoencoder_tasks(model, spec, source, train_idx, test_idx, device) -> list:
    """The phases of an autoencoder: greedy RBM pretraining of each layer (when `spec.pretraining` is "rbm";
    Gaussian visibles first, then {0,1} RBMs on the conditional means below; SGD with the spec's momentum at
    `pretrain_lr` for `pretrain_epochs`: `task.options` overrides the trainer options), then the fine-tuning
    of the reconstruction loss with the spec's optimiser."""
    tasks = []
    if getattr(spec, "pretraining", "none") == "rbm":
        phase = {"epochs": spec.pretrain_epochs, "lr": spec.pretrain_lr, "optimizer": "sgd",
                 "lr_schedule": "constant"}
        first = GaussianRBMTask(model.pretrain[0], source, train_idx, test_idx, device, spec.pretrain_cd_k)
        first.options = phase
        tasks.append(first)
        for layer in range(1, len(model.pretrain)):
            def lift(x, noise, layer=layer):
                with torch.no_grad():
                    for rbm in model.pretrain[:layer]:
                        x = rbm.p_h_given_v(x)
                    return x
            t = RBMTask(model.pretrain[layer], source, train_idx, test_idx, device, "spin", spec.pretrain_cd_k,
                        lift=lift)
            t.options = phase
            tasks.append(t)
    tasks.append(AutoencoderTask(model, source, train_idx, test_idx, device, spec.l1,
                                 l1_placement=getattr(spec, "l1_placement", "all"),
                                 l1_target=getattr(spec, "l1_target", "weights"), loss=getattr(spec, "loss", "mse")))
    return tasks


class PatchTask(Task):
    """Correlated (1) vs scrambled (0) patches, in memory (seed 000)."""

    def __init__(self, model, x_train, y_train, x_test, y_test, device, dtype=torch.float32):
        x = np.concatenate([x_train, x_test]).astype(np.float32)
        y = np.concatenate([y_train, y_test]).astype(np.float32)
        n = len(x_train)
        super().__init__(None, np.arange(n), np.arange(n, len(x)), device, dtype)
        self.x, self.y = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
        self.model = self.trainable = model

    def inputs(self, idx):
        idx = torch.as_tensor(np.asarray(idx), device=self.device)
        return self.x[idx], self.y[idx]

    def loss(self, x, y, noise):
        logit = self.model(x)
        loss = F.binary_cross_entropy_with_logits(logit, y)
        return loss, {"bce": loss.item(), "accuracy": ((logit > 0).float() == y).float().mean().item()}

    def eval_keys(self):
        return ["bce", "accuracy"]

    def eval_sums(self, x, y, noise):
        logit = self.model(x)
        return {"bce": F.binary_cross_entropy_with_logits(logit, y, reduction="sum"),
                "accuracy": ((logit > 0).float() == y).float().sum()}


class ThermometerTask(Task):
    """Lattices labelled by the index of their temperature (seed 002)."""

    def __init__(self, model, source, train_idx, test_idx, device, dtype=torch.float32):
        super().__init__(source, train_idx, test_idx, device, dtype)
        self.model = self.trainable = model

    def inputs(self, idx):
        x = torch.from_numpy(self.rows(idx).astype(np.float32)).to(self.device)
        y = torch.from_numpy(self.source.labels(idx)).to(self.device)
        return x, y

    def loss(self, x, y, noise):
        logits = self.model(x)
        loss = F.cross_entropy(logits, y)
        return loss, {"cross_entropy": loss.item(), "accuracy": (logits.argmax(-1) == y).float().mean().item()}

    def eval_keys(self):
        return ["cross_entropy", "accuracy", "abs_error_T"]

    def eval_sums(self, x, y, noise):
        logits = self.model(x)
        p = torch.softmax(logits, -1)
        t = self.model.temperatures
        return {"cross_entropy": F.cross_entropy(logits, y, reduction="sum"),
                "accuracy": (logits.argmax(-1) == y).float().sum(),
                "abs_error_T": (p @ t - t[y]).abs().sum()}

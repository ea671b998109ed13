"""K repeats of seed 000's coarse-graining CNN trained at once, as one batched model in one process.

The CNN is tiny (a b x b conv with stride b, an MLP of `hidden` units), so training one copy is pure
per-op overhead (~1.8 ms per step on one core, ~5 s per repeat at the paper's 30 epochs x 100 steps).
Stacking the K repeats' parameters along a leading axis and running every op on (K, batch, ...) pays that
overhead once per K repeats.

Same training as K separate `trainer.fit` runs, up to float summation order:
  - repeat k starts from the weights of the `CoarseCNN` it was built from (`BatchedCoarseCNN(models)`),
  - its mini-batches in epoch e are `local_batches(train_idx, batch_size, 1, 0, seed_sequence(job_seed,
    *key_k, 1, e, purpose="train"))` with key_k = (model index, repeat, layer 0) from its `Options`,
    gathered per repeat (each repeat sees its own patches),
  - the loss summed over repeats is sum_k mean-BCE_k, whose gradient with respect to repeat k's parameters
    is exactly repeat k's own gradient (the repeats share no parameters),
  - the optimiser (Adam or SGD, the spec's lr, schedule, and L2 on weights only, as `make_optimizer`) is
    elementwise, so one optimiser over the stacked tensors updates each repeat as its own would,
  - the last epoch's train monitors (mean over steps of the per-step BCE and accuracy) and test monitors
    (sums over the test set in blocks of 1000, divided by its size) are those of `fit`'s last history row.

Layout (K repeats, P = b^2 pixels of a block, N_b = b^2 blocks of a patch, C channels, H hidden units):
  patches are unfolded once to (N, N_b, P) (block (i, j) row-major, pixel (u, v) row-major in the block);
  conv weight (K, C, P), conv bias (K, C, 1): the convolution is one bmm (K, C, P) @ (K, P, B*N_b) (the long
  axis last: ~3x faster on one core than (K, B*N_b, P) @ (K, P, C) for C <= 3); the features are then
  flattened as the CoarseCNN does, c*N_b + blk, so each dense layer's weight is its Linear's weight
  transposed, (K, n_in, n_out), bias (K, 1, n_out) (two layers C*N_b -> H -> 1 for the relu_on_coarse head,
  three C*N_b -> N_b -> H -> 1 for dense_input).  With `frozen` the coarse-graining
  is one fixed function for all repeats, so it is applied to the whole data set once and the steps train
  only the stacked MLPs.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hpc_rg.learn.coarse_cnn import CoarseCNN
from hpc_rg.learn.data import local_batches
from hpc_rg.learn.trainer import Options, lr_factor
from hpc_rg.parallel import seed_sequence

EVAL_BLOCK = 1000   # test patches per evaluation block (as trainer.evaluate)


def unfold_patches(x: torch.Tensor, block: int) -> torch.Tensor:
    """(N, b², b²) patches -> (N, b² blocks, b² pixels): the receptive fields of the stride-b convolution."""
    n = x.shape[0]
    b = block
    return x.reshape(n, b, b, b, b).permute(0, 1, 3, 2, 4).reshape(n, b * b, b * b).contiguous()


class BatchedCoarseCNN(nn.Module):
    """K `CoarseCNN`s of one architecture as stacked parameters; forward maps (K, B, N_b, P) unfolded
    patches (or (K, B, N_b*C) coarse-grained features when frozen) to (K, B) logits."""

    def __init__(self, models: list[CoarseCNN]):
        super().__init__()
        m0 = models[0]
        if any(m.args() != m0.args() for m in models):
            raise ValueError("a group of repeats must share one architecture")
        self.block, self.channels, self.hidden, self.frozen = m0.block, m0.channels, m0.hidden, m0.frozen
        self.relu_on_coarse = m0.head == "relu_on_coarse"
        pix, c = self.block ** 2, self.channels

        def stack(f):
            return nn.Parameter(torch.stack([f(m).detach() for m in models]).contiguous())
        self.conv_weight = stack(lambda m: m.conv.weight.reshape(c, pix))               # (K, C, P)
        self.conv_bias = stack(lambda m: m.conv.bias.reshape(c, 1))                      # (K, C, 1)
        # the MLP's dense layers, input first: weight (K, n_in, n_out) (the Linear's weight transposed),
        # bias (K, 1, n_out); ReLU between consecutive layers, none after the last (the logit)
        n_lin = len(m0.linears())
        self.mlp_w = nn.ParameterList([stack(lambda m, i=i: m.linears()[i].weight.T) for i in range(n_lin)])
        self.mlp_b = nn.ParameterList([stack(lambda m, i=i: m.linears()[i].bias.reshape(1, -1))
                                       for i in range(n_lin)])
        if self.frozen:
            if not all(torch.equal(m.conv.weight, m0.conv.weight) and torch.equal(m.conv.bias, m0.conv.bias)
                       for m in models):
                raise ValueError("frozen repeats must share the fixed kernel")
            self.conv_weight.requires_grad_(False)
            self.conv_bias.requires_grad_(False)

    @property
    def k(self) -> int:
        return self.conv_weight.shape[0]

    def weights(self) -> list[nn.Parameter]:
        """The trainable tensors that are weights of the per-repeat model (L2 applies), then the biases."""
        return [p for p in (self.conv_weight, *self.mlp_w) if p.requires_grad]

    def biases(self) -> list[nn.Parameter]:
        return [p for p in (self.conv_bias, *self.mlp_b) if p.requires_grad]

    def features(self, xu: torch.Tensor, weight=None, bias=None) -> torch.Tensor:
        """(K, B, N_b, P) unfolded patches -> (K, B, C*N_b): tanh(conv) (ReLU'd for the relu_on_coarse
        head), flattened as CoarseCNN."""
        weight = self.conv_weight if weight is None else weight
        bias = self.conv_bias if bias is None else bias
        k, bsz, nb, p = xu.shape
        z = torch.baddbmm(bias, weight, xu.reshape(k, bsz * nb, p).transpose(1, 2))    # (K, C, B*N_b)
        a = torch.tanh(z)
        if self.relu_on_coarse:
            a = torch.relu(a)
        a = a.reshape(k, self.channels, bsz, nb)
        return a.transpose(1, 2).reshape(k, bsz, self.channels * nb)

    def frozen_features(self, xu: torch.Tensor) -> torch.Tensor:
        """(N, N_b, P) -> (N, C*N_b) with the one fixed kernel shared by all repeats (frozen only)."""
        return self.features(xu[None], self.conv_weight[:1], self.conv_bias[:1])[0]

    def head(self, a: torch.Tensor) -> torch.Tensor:
        """(K, B, N_b*C) features -> (K, B) logits."""
        last = len(self.mlp_w) - 1
        for i, (w, b) in enumerate(zip(self.mlp_w, self.mlp_b)):
            a = torch.baddbmm(b, a, w)
            if i < last:
                a = torch.relu(a)
        return a.squeeze(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x if self.frozen else self.features(x))

    @torch.no_grad()
    def unstack(self, models: list[CoarseCNN]) -> None:
        """Copy repeat k's weights back into models[k] (a plain CoarseCNN: its state_dict, kernel())."""
        c = self.channels
        for k, m in enumerate(models):
            m.conv.weight.copy_(self.conv_weight[k].reshape(c, 1, self.block, self.block))
            m.conv.bias.copy_(self.conv_bias[k].reshape(c))
            for lin, w, b in zip(m.linears(), self.mlp_w, self.mlp_b):
                lin.weight.copy_(w[k].T)
                lin.bias.copy_(b[k].reshape(-1))


def make_group_optimizer(net: BatchedCoarseCNN, opts: Options) -> torch.optim.Optimizer:
    """`trainer.make_optimizer` for the stacked tensors: L2 on the weights, none on the biases, fused
    kernels where this torch has them (same arithmetic either way)."""
    groups = [{"params": net.weights(), "weight_decay": opts.l2}, {"params": net.biases(), "weight_decay": 0.0}]
    groups = [g for g in groups if g["params"]]
    cls = torch.optim.SGD if opts.optimizer == "sgd" else torch.optim.Adam
    kw = {"momentum": opts.momentum} if opts.optimizer == "sgd" else {}
    try:
        return cls(groups, lr=opts.lr, fused=True, **kw)
    except (RuntimeError, TypeError):
        return cls(groups, lr=opts.lr, **kw)


def epoch_batches(n_train: int, opts: list[Options], epoch: int) -> np.ndarray:
    """(K, steps, batch) training indices: repeat k's batches of `epoch`, exactly as `trainer.fit` on one
    rank draws them (key (model, repeat, layer), stream 1)."""
    train_idx = np.arange(n_train)
    return np.stack([np.stack(list(local_batches(train_idx, o.batch_size, 1, 0,
                                                 seed_sequence(o.job_seed, *o.key, 1, epoch, purpose="train"))))
                     for o in opts])


def train_group(models: list[CoarseCNN], data: dict, opts: list[Options], device=None) -> list[dict]:
    """Train the K `models` (one per repeat, already initialised) on the patches `data` (x_train, y_train,
    x_test, y_test) with repeat k's options opts[k] (equal but for `key`); the trained weights are copied
    back into `models`. Returns per repeat the last epoch's monitors, as `fit`'s last history row:
    {"train_bce", "train_accuracy", "test_accuracy", "test_bce"}."""
    o0 = opts[0]
    if len(opts) != len(models) or any((o.epochs, o.batch_size, o.optimizer, o.lr, o.momentum, o.l2,
                                        o.lr_schedule, o.lr_gamma) != (o0.epochs, o0.batch_size, o0.optimizer,
                                                                       o0.lr, o0.momentum, o0.l2, o0.lr_schedule,
                                                                       o0.lr_gamma) for o in opts):
        raise ValueError("one Options per model, equal but for the key")
    device = torch.device(device) if device is not None else models[0].conv.weight.device
    n_train, n_test = len(data["x_train"]), len(data["x_test"])
    n_steps = n_train // o0.batch_size
    if n_steps == 0:
        raise ValueError(f"{o0.label}: {n_train} training samples < batch_size = {o0.batch_size}")
    net = BatchedCoarseCNN(models).to(device)
    block = net.block

    def inputs(x):
        xu = unfold_patches(torch.from_numpy(np.asarray(x, dtype=np.float32)).to(device), block)
        if net.frozen:
            with torch.no_grad():
                return net.frozen_features(xu)
        return xu
    x_train, x_test = inputs(data["x_train"]), inputs(data["x_test"])
    y_train = torch.from_numpy(np.asarray(data["y_train"], dtype=np.float32)).to(device)
    y_test = torch.from_numpy(np.asarray(data["y_test"], dtype=np.float32)).to(device)
    opt = make_group_optimizer(net, o0)
    k = net.k
    sums = torch.zeros(2, k, dtype=torch.float64, device=device)
    for epoch in range(o0.epochs):
        for g in opt.param_groups:
            g["lr"] = o0.lr * lr_factor(o0, epoch)
        batches = torch.from_numpy(epoch_batches(n_train, opts, epoch)).to(device)   # (K, steps, B)
        sums.zero_()
        for s in range(n_steps):
            idx = batches[:, s].reshape(-1)    # index_select: ~3x faster than advanced indexing here
            xb = x_train.index_select(0, idx).view(k, -1, *x_train.shape[1:])
            yb = y_train.index_select(0, idx).view(k, -1)
            logit = net(xb)
            loss = F.binary_cross_entropy_with_logits(logit, yb, reduction="none").mean(1)    # (K,)
            opt.zero_grad(set_to_none=True)
            loss.sum().backward()
            opt.step()
            with torch.no_grad():
                sums[0] += loss.detach()
                sums[1] += ((logit.detach() > 0).float() == yb).float().mean(1)
    train = (sums / n_steps).cpu().tolist()
    test = evaluate_group(net, x_test, y_test) if n_test else None
    net.unstack(models)
    out = []
    for j in range(k):
        row = {"train_bce": train[0][j], "train_accuracy": train[1][j]}
        if test is not None:
            row.update(test_accuracy=test[1][j], test_bce=test[0][j])
        out.append(row)
    return out


def evaluate_group(net: BatchedCoarseCNN, x: torch.Tensor, y: torch.Tensor) -> list[list[float]]:
    """[[test BCE per repeat], [test accuracy per repeat]] over the whole test set (every repeat sees every
    patch), summed in blocks of EVAL_BLOCK like `trainer.evaluate`."""
    k, n = net.k, len(x)
    sums = np.zeros((2, k))
    with torch.no_grad():
        for start in range(0, n, EVAL_BLOCK):
            xb, yb = x[start:start + EVAL_BLOCK], y[start:start + EVAL_BLOCK]
            logit = net(xb.expand(k, *xb.shape).contiguous())
            yk = yb.expand(k, -1)
            sums[0] += F.binary_cross_entropy_with_logits(logit, yk, reduction="none").sum(1).double().cpu().numpy()
            sums[1] += ((logit > 0).float() == yk).float().sum(1).double().cpu().numpy()
    return (sums / n).tolist()

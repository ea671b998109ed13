"""One training loop for every model kind: data-parallel over the MPI world on any number of ranks, with
seeded, rank-count-independent randomness, per-epoch checkpoints, stop requests, and rank-0 progress logging.

Determinism. Every random choice is keyed on the job seed and the run's identity, never on the rank:
  shuffle of epoch e    seed_sequence(job_seed, model, repeat, layer, 1, e, purpose="train")
  Monte Carlo noise     a generator (xoshiro256** on the CPU, torch on a GPU) seeded from (..., 2, e); the
                        uniforms of a row of the *global* batch do not depend on which rank draws them (on
                        the CPU each row has its own stream, so a rank draws only its rows), so N ranks
                        reproduce one rank with the global batch (up to float summation order), and a
                        resumed run continues the uninterrupted one exactly (streams restart at epochs).
  evaluation noise      (..., 3, e)
Any rank count. Each global batch of `batch_size` rows is split over the ranks by `parallel.deal` (shares
differ by at most one row; ranks beyond the batch size get none). Each rank's gradient is its share's mean
times (share / batch_size), the ranks' gradients are summed, so the step uses the global-batch mean whatever
the split. The sum is one reduction of a flat buffer per step (`GradientSync`: the parameters' .grad are
views of it; through shared memory between the ranks of a node, MPI between nodes, torch.distributed for GPU
tensors); on a node each rank then takes the optimiser step for its slice of the parameters, which live in
the node's shared memory during an epoch's updates (`ShardedOptimizer`). A rank with an empty share
contributes zeros and still joins every collective. Each epoch's rows
are read from the ensemble in a few sorted passes (`prefetch_windows`).
"""
from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hpc_rg.io.atomic import atomic_path
from hpc_rg.learn.data import local_batches
from hpc_rg.learn.gradient_sum import GradientSync
from hpc_rg.learn.uniforms import UniformStream
from hpc_rg.parallel import World, deal, get_logger, local_rank, seed_sequence
from hpc_rg.progress import Progress, duration


def torch_seed(seq: np.random.SeedSequence) -> int:
    return int(seq.generate_state(1, np.uint64)[0] & np.uint64(0x7FFF_FFFF_FFFF_FFFF))


def resolve_device(choice: str, world: World) -> torch.device:
    if choice == "cpu" or (choice == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RuntimeError("device = \"cuda\" but no CUDA device is available")
    return torch.device("cuda", local_rank() % torch.cuda.device_count())


def share_threads(world: World) -> None:
    """Ranks sharing a node split its cores (avoids oversubscription; one thread per rank when crowded)."""
    if world.size == 1:
        return
    import socket
    hosts = world.allgather(socket.gethostname())
    on_node = hosts.count(socket.gethostname())
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // on_node))


class Noise:
    """Uniform random numbers for one global batch: each call is a (global_rows, n) draw of which this rank
    gets its rows [lo, hi).  On the CPU the stream is a `UniformStream` (xoshiro256**, float32 or float64),
    whose rows are keyed on (call, row), so a rank generates only its own rows; on a GPU it is a
    torch.Generator, which draws the whole global batch on the device and slices it (cheap there)."""

    def __init__(self, generator, global_rows: int, lo: int, hi: int, device, dtype):
        self.g, self.rows, self.lo, self.hi, self.device, self.dtype = generator, global_rows, lo, hi, device, dtype

    def __call__(self, n: int) -> torch.Tensor:
        if isinstance(self.g, UniformStream):
            return torch.from_numpy(self.g.rows(self.rows, n, self.lo, self.hi)).to(self.dtype)
        u = torch.rand(self.rows, n, generator=self.g, device=self.device, dtype=self.dtype)
        return u[self.lo:self.hi]


def noise_generator(seq: np.random.SeedSequence, device: torch.device, dtype=torch.float32):
    """The generator behind `Noise` for a stream keyed by `seq`: xoshiro (float32, or float64 with 53-bit
    uniforms) on the CPU, torch on a GPU."""
    if device.type == "cpu":
        return UniformStream(seq, np.float64 if dtype == torch.float64 else np.float32)
    gen = torch.Generator(device=device)
    gen.manual_seed(torch_seed(seq))
    return gen


@dataclass
class Options:
    epochs: int
    batch_size: int
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.0
    l2: float = 0.0
    lr_schedule: str = "constant"
    lr_gamma: float = 0.99
    job_seed: int = 0
    key: tuple[int, ...] = (0, 0, 0)   # (model index, repeat, layer)
    label: str = "model"
    tag: dict = field(default_factory=dict)   # extra entries of every history row (e.g. the layer)
    verbose: bool = True                # progress lines (off for the many small repeats)
    dtype: torch.dtype = torch.float32


@dataclass
class State:
    """What a checkpoint holds besides the weights."""
    epoch: int = 0                                   # epochs completed (of the current layer)
    history: list[dict] = field(default_factory=list)
    optimizer: dict | None = None
    extra: dict = field(default_factory=dict)


def param_groups(params: list[nn.Parameter], opts: Options) -> list[dict]:
    """L2 (weight decay) on the weights, none on the biases."""
    weights = [p for p in params if p.dim() >= 2]
    biases = [p for p in params if p.dim() < 2]
    groups = [{"params": weights, "weight_decay": opts.l2}, {"params": biases, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def make_optimizer(params: list[nn.Parameter] | list[dict], opts: Options) -> torch.optim.Optimizer:
    """The optimiser of `opts` over parameters (grouped by `param_groups`) or over param-group dicts."""
    groups = params if params and isinstance(params[0], dict) else param_groups(params, opts)
    # fused kernels update each tensor in one pass (measured at 1600x400 on one core: SGD with momentum
    # 0.61 -> 0.36 ms, Adam 1.54 -> 0.57 ms per step); same arithmetic, so the same training
    cls = torch.optim.SGD if opts.optimizer == "sgd" else torch.optim.Adam
    kw = {"momentum": opts.momentum} if opts.optimizer == "sgd" else {}
    try:
        return cls(groups, lr=opts.lr, fused=True, **kw)
    except (RuntimeError, TypeError):   # a device or dtype without the fused kernel
        return cls(groups, lr=opts.lr, **kw)


def lr_factor(opts: Options, epoch: int) -> float:
    if opts.lr_schedule == "exponential":
        return opts.lr_gamma ** epoch
    if opts.lr_schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * epoch / opts.epochs))
    return 1.0


def evaluate(task, world: World, gen, block: int = 1000) -> dict[str, float]:
    """Test-set monitors: each global block of the test set is dealt over the ranks (with the uniforms of
    the whole block, as in training, so the result does not depend on the rank count); sums are reduced."""
    idx = task.test_idx
    sums: dict[str, float] = {}
    with torch.no_grad():
        for start in range(0, len(idx), block):
            glob = idx[start:start + block]
            share = deal(len(glob), world.size, world.rank)
            x, y = task.inputs(glob[share.start:share.stop])
            noise = Noise(gen, len(glob), share.start, share.stop, task.device, torch.float32)
            if len(share):
                for k, v in task.eval_sums(x, y, noise).items():
                    sums[k] = sums.get(k, 0.0) + float(v)
            else:  # keep this rank's draws in lockstep with the others
                task.eval_sums(x, y, noise)
    keys = sorted(task.eval_keys())
    vec = world.allreduce(np.array([sums.get(k, 0.0) for k in keys], dtype=np.float64))
    return {k: float(vec[i]) / len(idx) for i, k in enumerate(keys)}


# Rows of the epoch's batches read from the ensemble in one sorted pass per window (a few large HDF5 reads
# instead of scattered point selections per step: 37 -> ~10 ms per step for seed 001's 1600-400 layer); the
# window bounds the memory a rank holds to its own share of at most this many bytes of configurations.
PREFETCH_BYTES = 256 << 20


def prefetch_windows(batches: list[np.ndarray], task) -> list[list[np.ndarray]]:
    row = max(1, getattr(task, "row_bytes", 1))
    limit = max(1, PREFETCH_BYTES // row)
    windows: list[list[np.ndarray]] = [[]]
    rows = 0
    for b in batches:
        if rows + len(b) > limit and windows[-1]:
            windows.append([])
            rows = 0
        windows[-1].append(b)
        rows += len(b)
    return [w for w in windows if w]


class Interrupted(Exception):
    """Training stopped at an epoch boundary on a stop request, after the epoch's checkpoint."""


def fit(task, world: World, opts: Options, state: State | None = None,
        checkpoint=None, distributed: bool = False, stop=None) -> State:
    """Train `task.trainable` for opts.epochs epochs (continuing from `state`); `checkpoint(state)` is
    called on every rank after each epoch (the callee writes on rank 0). `distributed`: the ranks of `world`
    share this training (each takes its share of every global batch). `stop()`, asked after each epoch's
    checkpoint but the last, ends the training with `Interrupted` when it returns True (with `distributed`
    it must be collective, e.g. `StopRequests.agree`)."""
    log = get_logger()
    state = state or State()
    params = [p for p in task.trainable.parameters() if p.requires_grad]
    direct = hasattr(task, "gradients")     # the task writes .grad itself (no autograd graph; see below)
    shared = distributed and world.size > 1
    share = deal(opts.batch_size, world.size, world.rank) if shared else range(opts.batch_size)
    lo, hi = share.start, share.stop
    weight = len(share) / opts.batch_size     # this rank's part of each global batch
    n_steps = len(task.train_idx) // opts.batch_size
    if n_steps == 0:
        raise ValueError(f"{opts.label}: {len(task.train_idx)} training samples < batch_size = {opts.batch_size}")
    # one bar on a terminal, else a line with samples/s and ETA every few seconds; the epoch lines only with -v
    progress = Progress(opts.label, opts.epochs * n_steps * opts.batch_size, "samples",
                        start=state.epoch * n_steps * opts.batch_size, is_root=world.is_root, enabled=opts.verbose)
    # after the checks every rank makes alike (the buffers are collective); after the last epoch, or a stop
    # request's Interrupted, the buffers wait for the next training over these ranks (`GradientSum.pooled`)
    sync = GradientSync(params, world) if shared else None
    together = False    # every rank leaves at the same point (the end, or a stop all ranks agreed on)
    try:
        # on the ranks of a node each rank updates a slice of the parameters (`ShardedOptimizer`)
        groups = param_groups(params, opts)
        opt = sync.optimizer(groups, lambda g: make_optimizer(g, opts)) if sync else make_optimizer(groups, opts)
        if state.optimizer:
            opt.load_state_dict(state.optimizer)
        for epoch in range(state.epoch, opts.epochs):
            t0 = time.perf_counter()
            for g in opt.param_groups:
                g["lr"] = opts.lr * lr_factor(opts, epoch)
            gen = noise_generator(seed_sequence(opts.job_seed, *opts.key, 2, epoch, purpose="train"), task.device,
                                  opts.dtype)
            noise = Noise(gen, opts.batch_size, lo, hi, task.device, opts.dtype)   # this rank's rows, every step
            shuffle = seed_sequence(opts.job_seed, *opts.key, 1, epoch, purpose="train")
            task.trainable.train()
            steps_done = epoch * n_steps
            sums: dict[str, float] = {}
            batches = list(local_batches(task.train_idx, opts.batch_size, world.size if shared else 1,
                                         world.rank if shared else 0, shuffle))
            if sync is not None:
                sync.share_parameters()    # sharded optimiser: the node's one copy, for this epoch's updates
            for window in prefetch_windows(batches, task) if len(share) else [batches]:
                if len(share):
                    task.prefetch(np.concatenate(window))
                for idx in window:
                    metrics = {}
                    if sync is not None:    # the .grad become views of this rank's part of the sum
                        sync.attach(zero=not (direct and len(share)))  # no rows: zeros, still joins the sum
                    if len(share):
                        x, y = task.inputs(idx)
                        if direct:
                            # CD-type updates are not gradients of a loss: the task writes them, times this
                            # rank's weight, over .grad (in place: straight into the sum's buffer)
                            metrics = task.gradients(x, y, noise, weight)
                        else:
                            loss, metrics = task.loss(x, y, noise)
                            if sync is None:
                                opt.zero_grad(set_to_none=True)
                            else:
                                loss = loss * weight    # the ranks' sum is then the global-batch mean
                            loss.backward()
                    if sync is not None:
                        sync.reduce(opt)        # the sum over the ranks, and the optimiser's step
                    else:
                        opt.step()
                    for k, v in metrics.items():
                        sums[k] = sums.get(k, 0.0) + float(v) * weight
                    steps_done += 1
                    progress.update(steps_done * opts.batch_size, lambda: f"epoch {epoch + 1}/{opts.epochs}")
            if sync is not None:
                sync.own_parameters()
            task.prefetch(None)
            if hasattr(task, "end_epoch"):   # e.g. weight averaging over the last epochs (RBMTask)
                task.end_epoch(epoch + 1, opts.epochs)
            task.trainable.eval()
            if shared:  # the ranks' shares of the training metrics, weighted like the gradients
                keys = world.bcast(sorted(sums))
                vec = world.allreduce(np.array([sums.get(k, 0.0) for k in keys], dtype=np.float64))
                sums = dict(zip(keys, vec.tolist()))
            train_metrics = {f"train_{k}": v / n_steps for k, v in sums.items()}
            egen = noise_generator(seed_sequence(opts.job_seed, *opts.key, 3, epoch, purpose="train"), task.device)
            eval_world = world if shared else World(None, 0, 1)
            test_metrics = {f"test_{k}": v for k, v in evaluate(task, eval_world, egen).items()} \
                if len(task.test_idx) else {}
            dt = time.perf_counter() - t0
            row = {"epoch": epoch + 1, "lr": opts.lr * lr_factor(opts, epoch), **train_metrics, **test_metrics,
                   "seconds": dt}
            row.update(opts.tag)
            state.history.append(row)
            state.epoch = epoch + 1
            state.optimizer = opt.state_dict()     # sharded: gathered over the node (collective)
            if checkpoint is not None:
                checkpoint(state)
            shown = " ".join(f"{k}={v:.4g}" for k, v in row.items() if k not in ("epoch", "seconds", "lr", *opts.tag))
            if log.isEnabledFor(logging.DEBUG):    # -v: a line per epoch (the periodic progress line otherwise)
                log.debug(f"{opts.label}: epoch {epoch + 1}/{opts.epochs} {shown} ({dt:.2f} s/epoch, "
                          f"ETA {duration(progress.eta())})")
            if stop is not None and epoch + 1 < opts.epochs and stop():
                together = True     # with `distributed`, stop() is collective
                raise Interrupted(f"{opts.label}: stopped after epoch {epoch + 1}/{opts.epochs}")
        together = True
    finally:
        progress.close()
        if sync is not None:
            sync.close(collective=together)
    return state


def save_atomic(obj: Any, path: Path) -> None:
    """torch.save that readers (and a resume after a crash) see whole or not at all."""
    with atomic_path(path, durable=True) as tmp:
        torch.save(obj, tmp)

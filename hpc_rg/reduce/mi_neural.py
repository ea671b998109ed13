"""Neural (variational) lower bounds on the mutual information I(X; Y), in bits, for blocks, coarse variables
or any paired data (binary ±1, real, several channels): the estimators of RSMI-NE (Gökmen et al., PRL 2021)
beside the exact histogram MI of `mutual_info`.

A critic f(x, y) is trained to maximise a lower bound on samples of the joint p(x, y); the product of the
marginals is represented by the *other* rows of the same batch (negatives), and each row of a batch is drawn
from a different configuration, so that negatives are independent of the positive they are compared with.
  InfoNCE (van den Oord et al. 2018):  I ≥ E[ f(x_i, y_i) − log (1/K) Σ_j exp f(x_i, y_j) ]   (≤ log K)
  NWJ / MINE-f (Nguyen, Wainwright & Jordan 2010; Belghazi et al. 2018):
                                       I ≥ E_p[f] − e^{-1} E_{p(x)p(y)}[e^f]
InfoNCE has low variance but is capped at log K (K = batch); NWJ is unbiased in the limit but noisier.
Critics: `separable` f = g(x)·h(y) + c (two MLPs, K evaluations per batch), or `concat` f = MLP([x, y])
(K² evaluations: more expressive, costlier).

Protocol (`estimate`): the configurations are split once into training and held-out sets (seeded); for each
of `seeds` independent critics (initialisation and batches from `seeding.sequence(job_seed, *key, s)`, key =
(reduction name, unit of work)), `steps` Adam steps on training batches, then the bound is evaluated on every
held-out batch (fixed, in order). Reported: the mean over seeds and its spread (standard deviation over seeds:
the estimator's variance from training), each seed's held-out standard error (finite evaluation data), and
the train − held-out gap (over-fitting: a held-out bound below the train one is the honest one). The seeds
are dealt over MPI ranks (`parallel.deal`) and gathered in seed order, so the result does not depend on the
rank count (each seed is deterministic on the CPU for a fixed thread count).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from hpc_rg.parallel import World, deal
from hpc_rg.reduce.seeding import sequence

LN2 = math.log(2.0)
ESTIMATORS = ("infonce", "nwj")
CRITICS = ("separable", "concat")


@dataclass(frozen=True)
class BoundOptions:
    """How one critic is trained and evaluated."""
    estimator: str = "infonce"
    critic: str = "separable"
    hidden: int = 64          # units per hidden layer of the critic MLP(s)
    layers: int = 2           # hidden layers
    embed: int = 16           # separable critic: dimension of g(x), h(y)
    steps: int = 2000         # optimiser steps
    batch: int = 128          # K: rows per batch (InfoNCE ≤ log K)
    lr: float = 1e-3


def _mlp(n_in: int, hidden: int, layers: int, n_out: int) -> nn.Sequential:
    mods, width = [], n_in
    for _ in range(layers):
        mods += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    mods.append(nn.Linear(width, n_out))
    return nn.Sequential(*mods)


class SeparableCritic(nn.Module):
    """f(x_i, y_j) = g(x_i)·h(y_j)/√embed + c for all i, j at once."""

    def __init__(self, dx: int, dy: int, hidden: int = 64, layers: int = 2, embed: int = 16):
        super().__init__()
        self.g, self.h = _mlp(dx, hidden, layers, embed), _mlp(dy, hidden, layers, embed)
        self.c = nn.Parameter(torch.zeros(()))
        self.scale = 1.0 / math.sqrt(embed)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(K, dx), (K, dy) -> (K, K) scores, [i, j] = f(x_i, y_j)."""
        return self.g(x) @ self.h(y).T * self.scale + self.c


class ConcatCritic(nn.Module):
    """f(x_i, y_j) = MLP([x_i, y_j]) evaluated on all K² pairs."""

    def __init__(self, dx: int, dy: int, hidden: int = 64, layers: int = 2):
        super().__init__()
        self.f = _mlp(dx + dy, hidden, layers, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        k = x.shape[0]
        pairs = torch.cat([x[:, None, :].expand(k, k, x.shape[1]), y[None, :, :].expand(k, k, y.shape[1])], -1)
        return self.f(pairs).squeeze(-1)


def make_critic(dx: int, dy: int, opts: BoundOptions) -> nn.Module:
    if opts.critic == "separable":
        return SeparableCritic(dx, dy, opts.hidden, opts.layers, opts.embed)
    if opts.critic == "concat":
        return ConcatCritic(dx, dy, opts.hidden, opts.layers)
    raise ValueError(f"critic {opts.critic!r}: expected one of {CRITICS}")


def infonce_rows(scores: torch.Tensor) -> torch.Tensor:
    """Per-row terms of the InfoNCE bound (nats) of a (K, K) score matrix with the positives on the diagonal:
    f_ii − log (1/K) Σ_j exp f_ij; their mean is the bound."""
    return scores.diagonal() - torch.logsumexp(scores, dim=1) + math.log(scores.shape[0])


def nwj_rows(scores: torch.Tensor) -> torch.Tensor:
    """Per-row terms of the NWJ / MINE-f bound (nats): f_ii − e^{-1} mean_{j≠i} exp f_ij (the diagonal is a
    sample of the joint, the off-diagonal of the product of the marginals)."""
    k = scores.shape[0]
    off = ~torch.eye(k, dtype=torch.bool, device=scores.device)
    # exp of large scores overflows long before the bound means anything: clamp (a critic that wrong is
    # pushed back by the diagonal term anyway)
    neg = torch.exp(scores.clamp(max=30.0) - 1.0).masked_fill(~off, 0.0).sum(1) / (k - 1)
    return scores.diagonal() - neg


BOUNDS = {"infonce": infonce_rows, "nwj": nwj_rows}


def bound_rows(scores: torch.Tensor, estimator: str) -> torch.Tensor:
    if estimator not in BOUNDS:
        raise ValueError(f"estimator {estimator!r}: expected one of {ESTIMATORS}")
    return BOUNDS[estimator](scores)


def bound(scores: torch.Tensor, estimator: str) -> torch.Tensor:
    """The bound (nats) of one batch's (K, K) scores."""
    return bound_rows(scores, estimator).mean()


def _flat(a: np.ndarray) -> np.ndarray:
    """(N, P, ...) -> (N, P, d): a pair's variables as one vector (int8 spins stay int8 until batched)."""
    a = np.asarray(a)
    a = a.reshape(a.shape[0], a.shape[1], -1)
    return a if a.dtype in (np.int8, np.float32) else a.astype(np.float32)


def _batch_rows(rng: np.random.Generator, configs: np.ndarray, n_pairs: int, k: int):
    """K distinct configurations (negatives from other configurations) and one random pair of each."""
    c = rng.choice(configs, size=k, replace=False)
    return c, rng.integers(0, n_pairs, size=k)


def fit_bound(x: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, opts: BoundOptions,
              seed: np.random.SeedSequence) -> dict:
    """Train one critic and evaluate its bound on held-out configurations.

    x, y: (N configurations, P pairs per configuration, ...) arrays (pair p of configuration n is (x[n, p],
    y[n, p])); train, test: configuration indices. Returns bits: the held-out bound (mean over every
    held-out batch: each of ⌊|test|/K⌋ disjoint groups of K configurations × every pair index), its
    standard error over those groups, the mean bound over the last tenth of the training steps, and timings."""
    x, y = _flat(x), _flat(y)
    n_pairs = x.shape[1]
    k = min(opts.batch, len(train), len(test))
    if k < 2:
        raise ValueError(f"need at least 2 training and 2 held-out configurations (have {len(train)}, {len(test)})")
    rng = np.random.default_rng(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed.generate_state(1, np.uint64)[0] & np.uint64(0x7FFF_FFFF_FFFF_FFFF)))
        critic = make_critic(x.shape[2], y.shape[2], opts)
    opt = torch.optim.Adam(critic.parameters(), lr=opts.lr)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    tail = []
    t0 = time.perf_counter()
    critic.train()
    for step in range(opts.steps):
        c, p = _batch_rows(rng, train, n_pairs, k)
        ci, pi = torch.from_numpy(c), torch.from_numpy(p)
        value = bound(critic(xt[ci, pi].float(), yt[ci, pi].float()), opts.estimator)
        opt.zero_grad(set_to_none=True)
        (-value).backward()
        opt.step()
        if step >= opts.steps - max(1, opts.steps // 10):
            tail.append(value.item())
    t_train = time.perf_counter() - t0
    critic.eval()
    t0 = time.perf_counter()
    order = np.asarray(test)[: len(test) // k * k].reshape(-1, k)
    per_config = np.zeros(order.shape)
    with torch.no_grad():
        for g, cs in enumerate(order):
            gi = torch.from_numpy(cs)
            for q in range(n_pairs):
                per_config[g] += bound_rows(critic(xt[gi, q].float(), yt[gi, q].float()), opts.estimator).numpy()
    t_eval = time.perf_counter() - t0
    # a held-out configuration's value: its rows' terms averaged over its pairs; the bound is their mean,
    # and its standard error is taken over configurations (pairs of one configuration are correlated)
    vals = per_config.ravel() / n_pairs / LN2
    return {"bits": float(vals.mean()), "stderr_bits": float(vals.std(ddof=1) / math.sqrt(len(vals))),
            "train_bits": float(np.mean(tail)) / LN2, "batch": k,
            "seconds_per_step": t_train / max(opts.steps, 1),
            "seconds_per_estimate": t_eval, "eval_configurations": int(len(vals)), "eval_batches": int(order.size // k * n_pairs)}


def split_configurations(n: int, test_fraction: float, seed: np.random.SeedSequence) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) configuration indices: a seeded permutation cut at test_fraction."""
    perm = np.random.default_rng(seed).permutation(n)
    n_test = max(2, int(round(test_fraction * n)))
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def estimate(x: np.ndarray, y: np.ndarray, opts: BoundOptions, seeds: int = 3, job_seed: int = 0,
             key: tuple = ("mi_neural",), test_fraction: float = 0.25, world: World | None = None) -> dict:
    """The bound over `seeds` independent critics (dealt to the ranks of `world`), on one train/held-out
    split of the configurations. Returns mean and spread (sd over seeds) in bits, the per-seed results and
    the mean train − held-out gap; the same on every rank and for any rank count."""
    world = world or World(None, 0, 1)
    train, test = split_configurations(len(x), test_fraction, sequence(job_seed, *key, 1 << 20))
    mine = {s: fit_bound(x, y, train, test, opts, sequence(job_seed, *key, s))
            for s in deal(seeds, world.size, world.rank)}
    per_seed = {}
    for part in world.allgather(mine):
        per_seed.update(part)
    rows = [per_seed[s] for s in range(seeds)]
    vals = np.array([r["bits"] for r in rows])
    return {"bits": float(vals.mean()), "spread_bits": float(vals.std(ddof=1)) if seeds > 1 else float("nan"),
            "stderr_bits": float(np.mean([r["stderr_bits"] for r in rows])),
            "gap_bits": float(np.mean([r["train_bits"] - r["bits"] for r in rows])),
            "per_seed": rows, "log2_batch": math.log2(rows[0]["batch"]), "n_train": len(train), "n_test": len(test)}


def _tiles(spins: np.ndarray, b: int) -> np.ndarray:
    """(N, Ly, Lx) -> (N, Ly//b, Lx//b, b, b): the b×b tiling (as `mutual_info.block_codes` cuts it)."""
    n, ly, lx = spins.shape
    ny, nx = ly // b, lx // b
    return spins[:, :ny * b, :nx * b].reshape(n, ny, b, nx, b).transpose(0, 1, 3, 2, 4)


def neighbour_block_pairs(spins: np.ndarray, b: int) -> tuple[np.ndarray, np.ndarray]:
    """Every tile and its right neighbour, then every tile and the one below (periodic tile grid, the pairs
    of `mutual_info.neighbour_pairs`): (N, 2·n_tiles, b·b) arrays x, y, in the spins' dtype. The lattice
    side must be a multiple of b, or the wrap-around pairs would not be neighbours."""
    n, ly, lx = spins.shape
    if ly % b or lx % b:
        raise ValueError(f"lattice {ly}x{lx} is not tiled by {b}x{b} blocks (wrap-around pairs would not touch)")
    t = _tiles(spins, b)
    x = np.concatenate([t.reshape(n, -1, b * b)] * 2, axis=1)
    y = np.concatenate([np.roll(t, -1, axis=2).reshape(n, -1, b * b), np.roll(t, -1, axis=1).reshape(n, -1, b * b)],
                       axis=1)
    return x, y


def environment_mask(b: int, buffer: int, shell: int) -> np.ndarray:
    """(w, w) bool mask, w = b + 2(buffer + shell): the environment ring of width `shell` around the central
    b×b block beyond a `buffer` of ignored sites."""
    w = b + 2 * (buffer + shell)
    m = np.ones((w, w), bool)
    inner = shell
    m[inner:w - inner, inner:w - inner] = False
    return m


def block_environment_pairs(spins: np.ndarray, b: int, buffer: int = 0, shell: int = 1,
                            stride: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(V, E) for blocks at every `stride` (default b) sites of each periodic lattice: V (N, P, b·b), the
    block; E (N, P, n_env), its environment ring (`environment_mask`)."""
    stride = stride or b
    n, ly, lx = spins.shape
    off = buffer + shell
    w = b + 2 * off
    rows, cols = np.arange(0, ly - ly % stride, stride), np.arange(0, lx - lx % stride, stride)
    ys = (rows[:, None, None, None] - off + np.arange(w)[None, None, :, None]) % ly      # (R, 1, w, 1)
    xs = (cols[None, :, None, None] - off + np.arange(w)[None, None, None, :]) % lx      # (1, C, 1, w)
    win = spins[:, ys, xs]                                     # (N, R, C, w, w)
    win = win.reshape(n, len(rows) * len(cols), w, w)
    mask = environment_mask(b, buffer, shell)
    v = win[:, :, off:off + b, off:off + b].reshape(n, -1, b * b)
    return v, win[:, :, mask]


def gaussian_mi_bits(rho: float, dims: int = 1) -> float:
    """Exact I(X; Y) of `dims` independent pairs of unit Gaussians with correlation rho: −½ log(1 − ρ²) each."""
    return -0.5 * dims * math.log(1.0 - rho * rho) / LN2

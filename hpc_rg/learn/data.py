"""Training data from ensembles: lattice sources, splits, per-rank shards, and seed 000's patch sets.

A *source* is a flat, indexable view of configurations: `EnsembleSource` reads rows of an ensemble.h5
lazily (each rank reads only the rows of its own shard, never the whole file), `ArraySource` wraps an
in-memory array (derived data, tests). Flat index i runs over (selected temperature, chain, sample).

Seed 000 data (`patch_dataset`): "correlated" b²×b² patches cut at random positions (periodic wrap) of random
configurations, and "scrambled" patches tiled from b×b blocks cut at random positions of random
configurations: each block has exactly the single-block statistics of the ensemble, but blocks are
independent, so correlations between blocks vanish.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from hpc_rg.io.ensemble import open_ensemble
from hpc_rg.parallel import deal


class ArraySource:
    """In-memory configurations (n, *shape) with optional integer labels."""

    def __init__(self, data: np.ndarray, labels: np.ndarray | None = None, temperatures=()):
        self.data = np.asarray(data)
        self.n = len(self.data)
        self.lattice_shape = tuple(self.data.shape[1:])
        self._labels = None if labels is None else np.asarray(labels, dtype=np.int64)
        self.temperatures = tuple(float(t) for t in temperatures)

    def read(self, idx: np.ndarray) -> np.ndarray:
        return self.data[np.asarray(idx, dtype=np.int64)]

    def labels(self, idx: np.ndarray) -> np.ndarray:
        if self._labels is None:
            raise ValueError("this source has no labels")
        return self._labels[np.asarray(idx, dtype=np.int64)]

    def close(self) -> None:
        pass


class EnsembleSource:
    """Configurations of an ensemble file at the selected temperatures (default all), lazily read.

    `samples` > 0 keeps only the first `samples` configurations per temperature (over chains in order).
    Labels are the index of the temperature within the selection."""

    def __init__(self, path: str | Path, temperatures=(), samples: int = 0):
        self.path = Path(path)
        self.ens = open_ensemble(self.path)
        e = self.ens
        if temperatures:
            self.t_index = [e.temperature_index(T, tol=1e-6) for T in temperatures]
        else:
            self.t_index = list(range(e.n_temperatures))
        self.temperatures = tuple(float(e.temperatures[t]) for t in self.t_index)
        self.n_chains, self.n_samples = e.n_chains, e.n_samples
        self.per_t = e.n_chains * e.n_samples
        if samples:
            self.per_t = min(self.per_t, int(samples))
        self.n = self.per_t * len(self.t_index)
        self.lattice_shape = e.lattice_shape
        self.attrs = e.attrs

    def _locate(self, idx: np.ndarray):
        ti, r = np.divmod(idx, self.per_t)
        c, s = np.divmod(r, self.n_samples)
        return np.asarray(self.t_index)[ti], c, s

    def read(self, idx: np.ndarray) -> np.ndarray:
        """Configurations at flat indices `idx` (any order, repeats allowed), int8 (k, *shape)."""
        idx = np.asarray(idx, dtype=np.int64)
        out = np.empty((len(idx), *self.lattice_shape), dtype=np.int8)
        if len(idx) == 0:
            return out
        order = np.argsort(idx, kind="stable")
        t, c, s = self._locate(idx[order])
        key = t * self.n_chains + c
        cuts = np.flatnonzero(np.diff(key)) + 1
        for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, len(order)]):
            ss = s[lo:hi]
            s0, s1 = int(ss[0]), int(ss[-1]) + 1
            # one contiguous read when the rows are dense, else a point selection of unique rows
            if (s1 - s0) <= 4 * (hi - lo):
                block = self.ens.spins[int(t[lo]), int(c[lo]), s0:s1]
                out[order[lo:hi]] = block[ss - s0]
            else:
                uniq, inv = np.unique(ss, return_inverse=True)
                block = self.ens.spins[int(t[lo]), int(c[lo]), uniq.tolist()]
                out[order[lo:hi]] = block[inv]
        return out

    def labels(self, idx: np.ndarray) -> np.ndarray:
        return np.asarray(idx, dtype=np.int64) // self.per_t

    def close(self) -> None:
        self.ens.close()


def to_units(spins: np.ndarray, units: str) -> np.ndarray:
    """±1 spins -> float32 ±1 ("spin") or {0,1} ("binary", v = (s + 1) / 2)."""
    x = spins.astype(np.float32)
    return (x + 1) * 0.5 if units == "binary" else x


def split(n: int, test_fraction: float, seed: np.random.SeedSequence) -> tuple[np.ndarray, np.ndarray]:
    """A seeded (train, test) partition of range(n); independent of the rank count."""
    perm = np.random.default_rng(seed).permutation(n)
    n_test = int(round(test_fraction * n))
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def local_batches(train: np.ndarray, batch_size: int, size: int, rank: int,
                  seed: np.random.SeedSequence) -> Iterator[np.ndarray]:
    """DistributedSampler-style: one global shuffle per epoch (from `seed`), global batches of
    `batch_size` (the incomplete last one dropped, so every step has the same global weight), rank r taking
    the r-th contiguous share `parallel.deal(batch_size, size, r)` of each global batch: shares differ by at
    most one row, and a rank beyond the batch size gets empty shares (it still joins every collective)."""
    perm = train[np.random.default_rng(seed).permutation(len(train))]
    share = deal(batch_size, size, rank)
    for k in range(len(perm) // batch_size):
        g = perm[k * batch_size:(k + 1) * batch_size]
        yield g[share.start:share.stop]


def read_blocks(source, idx: np.ndarray, block: int = 1024) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(indices, configurations) in blocks of `block`: bounded memory for evaluation passes."""
    for lo in range(0, len(idx), block):
        part = idx[lo:lo + block]
        yield part, source.read(part)


# --------------------------------------------------------------------------------------------- seed 000
def cut(lattices: np.ndarray, ys: np.ndarray, xs: np.ndarray, size: int) -> np.ndarray:
    """Periodic size×size windows with top-left corners (ys, xs) of lattices (k, Ly, Lx) -> (k, size, size)."""
    ly, lx = lattices.shape[1:]
    rows = (ys[:, None] + np.arange(size)) % ly
    cols = (xs[:, None] + np.arange(size)) % lx
    k = np.arange(len(lattices))[:, None, None]
    return lattices[k, rows[:, :, None], cols[:, None, :]]


def _cut_requests(source, config: np.ndarray, ys: np.ndarray, xs: np.ndarray, size: int,
                  chunk: int = 256) -> np.ndarray:
    """Cut windows for many (config, y, x) requests, reading each needed configuration once, `chunk`
    configurations at a time (bounded memory; no full copy of the ensemble)."""
    out = np.empty((len(config), size, size), dtype=np.int8)
    order = np.argsort(config, kind="stable")
    needed = np.unique(config)
    for lo in range(0, len(needed), chunk):
        part = needed[lo:lo + chunk]
        lattices = source.read(part)
        sel = order[(config[order] >= part[0]) & (config[order] <= part[-1])]
        pos = np.searchsorted(part, config[sel])
        out[sel] = cut(lattices[pos], ys[sel], xs[sel], size)
    return out


def correlated_patches(source, n: int, b: int, rng: np.random.Generator) -> np.ndarray:
    """n patches of b²×b² cut at random positions of random configurations, int8 (n, b², b²)."""
    ly, lx = source.lattice_shape
    cfg = rng.integers(source.n, size=n)
    return _cut_requests(source, cfg, rng.integers(ly, size=n), rng.integers(lx, size=n), b * b)


def scrambled_patches(source, n: int, b: int, rng: np.random.Generator) -> np.ndarray:
    """n patches of b×b tiles, each b×b block cut at a random position of a random configuration."""
    ly, lx = source.lattice_shape
    m = n * b * b
    blocks = _cut_requests(source, rng.integers(source.n, size=m), rng.integers(ly, size=m),
                           rng.integers(lx, size=m), b)
    # (n, by, bx, b, b) -> (n, by*b, bx*b)
    return blocks.reshape(n, b, b, b, b).transpose(0, 1, 3, 2, 4).reshape(n, b * b, b * b)


def patch_dataset(source, n_train: int, n_test: int, b: int, seed: np.random.SeedSequence,
                  control: bool = False) -> dict[str, np.ndarray]:
    """Balanced correlated (label 1) vs scrambled (label 0) patches, shuffled, split n_train / n_test.
    `control`: the "correlated" class is scrambled too (a leak check: no classifier can beat 0.5)."""
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    n_pos = n // 2
    pos = scrambled_patches(source, n_pos, b, rng) if control else correlated_patches(source, n_pos, b, rng)
    neg = scrambled_patches(source, n - n_pos, b, rng)
    x = np.concatenate([pos, neg])
    y = np.r_[np.ones(n_pos, np.int64), np.zeros(n - n_pos, np.int64)]
    # stratified split so both parts stay balanced
    tr, te = [], []
    for label in (1, 0):
        ids = rng.permutation(np.flatnonzero(y == label))
        k = int(round(n_test * len(ids) / n))
        te.append(ids[:k])
        tr.append(ids[k:])
    tr, te = rng.permutation(np.concatenate(tr)), rng.permutation(np.concatenate(te))
    return {"x_train": x[tr], "y_train": y[tr], "x_test": x[te], "y_test": y[te]}

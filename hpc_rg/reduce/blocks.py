"""Streaming, rank-parallel block sums over an ensemble's samples: the backbone of every reduction.

A temperature's samples are cut into `n_blocks` *segments* (contiguous stretches of one chain, the same for
any number of ranks); segments are dealt to ranks; each rank streams its segments' spins in batches
(`Ensemble.iter_spins`-style, memory bounded by the batch), and a per-sample primary-quantity function is
summed per segment.  An allreduce gives every rank the (n_blocks, ...) block means, from which derived
quantities and their jackknife errors follow (`stats.jackknife_blocks`).  Results therefore do not depend on
the number of ranks (up to floating-point summation order).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from hpc_rg.parallel import deal


def segments(n_chains: int, n_samples: int, n_blocks: int) -> list[tuple[int, int, int]]:
    """(chain, start, stop) stretches: n_blocks in total (at least one per chain), balanced per chain."""
    per_chain = max(1, n_blocks // n_chains)
    per_chain = min(per_chain, n_samples)
    out = []
    for c in range(n_chains):
        edges = np.linspace(0, n_samples, per_chain + 1).astype(int)
        out += [(c, int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]
    return out


def iter_segment(spins, t: int, seg: tuple[int, int, int], batch: int):
    """Yield (start, int8 array (k, *shape)) batches of one segment of the h5py spins dataset."""
    c, a, b = seg
    for s0 in range(a, b, batch):
        yield s0, spins[t, c, s0:min(b, s0 + batch)]


# float64 temporaries a reduction keeps per site of a batch (FFT maps, energy density, ...): bounds the batch
BYTES_PER_SITE = 96


def bounded_batch(batch: int, n_sites: int, max_bytes: float = 2 ** 30) -> int:
    """The batch size, cut so that a batch's temporaries stay under `max_bytes` (4096²: 1 sample)."""
    return max(1, min(batch, int(max_bytes // (n_sites * BYTES_PER_SITE))))


def block_means(ens, t: int, fn: Callable[[np.ndarray, tuple], np.ndarray], world, n_blocks: int = 32,
                batch: int = 64, max_samples: int = 0, max_bytes: float = 2 ** 30) -> tuple[np.ndarray, np.ndarray]:
    """Per-segment means of fn(spins_batch, (t, chain, start)) -> (k, ...) array, combined over ranks.

    Returns (means (n_seg, ...), counts (n_seg,)).  `max_samples` > 0 uses only the first samples per chain;
    the batch is cut so one batch's temporaries stay under `max_bytes` per rank."""
    batch = bounded_batch(batch, int(np.prod(ens.lattice_shape)), max_bytes)
    n_samples = ens.n_samples if max_samples <= 0 else min(max_samples, ens.n_samples)
    segs = segments(ens.n_chains, n_samples, n_blocks)
    mine = deal(len(segs), world.size, world.rank)
    sums = None
    counts = np.zeros(len(segs))
    for i in mine:
        c = segs[i][0]
        for s0, x in iter_segment(ens.spins, t, segs[i], batch):
            v = np.asarray(fn(np.asarray(x), (t, c, s0)), dtype=np.float64)
            if sums is None:
                sums = np.zeros((len(segs),) + v.shape[1:])
            sums[i] += v.sum(axis=0)
            counts[i] += v.shape[0]
    # ranks without work still need the shape: take it from whoever had some
    shape = world.allgather(None if sums is None else sums.shape)
    shape = next(s for s in shape if s is not None)
    if sums is None:
        sums = np.zeros(shape)
    sums = world.allreduce(sums, op="sum")
    counts = world.allreduce(counts, op="sum")
    return sums / counts.reshape((-1,) + (1,) * (sums.ndim - 1)), counts


def t_indices(ens, temperatures) -> list[int]:
    """Indices of the stored temperatures nearest to `temperatures` (sorted, each once; empty: all)."""
    if not temperatures:
        return list(range(ens.n_temperatures))
    return sorted({int(np.argmin(np.abs(ens.temperatures - T))) for T in temperatures})

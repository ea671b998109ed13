"""Walker's alias method: O(1) draws from a fixed discrete distribution (Vose's O(n) construction).

A table of n cells holds `prob[c]` (the chance of keeping cell c) and `alias[c]` (where to go otherwise);
a draw picks a uniform cell and one uniform double, so it costs two RNG calls whatever n is.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from hpc_rg.rng import next_double


def alias_table(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(prob float64[n], alias int64[n]) for drawing index k with probability weights[k] / sum(weights).

    Weights must be >= 0 with a positive sum.  Cells with zero weight are never drawn: they keep prob 0 and
    alias to a cell with weight."""
    w = np.asarray(weights, dtype=np.float64).ravel()
    if w.size == 0 or np.any(w < 0) or not np.isfinite(w).all() or w.sum() <= 0:
        raise ValueError("alias_table needs finite non-negative weights with a positive sum")
    n = w.size
    scaled = w * (n / w.sum())
    prob = np.zeros(n)
    alias = np.arange(n, dtype=np.int64)
    small = [i for i in range(n) if scaled[i] < 1.0]
    large = [i for i in range(n) if scaled[i] >= 1.0]
    while small and large:
        s = small.pop()
        g = large.pop()
        prob[s] = scaled[s]
        alias[s] = g
        scaled[g] = (scaled[g] + scaled[s]) - 1.0
        (small if scaled[g] < 1.0 else large).append(g)
    # leftovers are 1 up to rounding
    for i in large + small:
        prob[i] = 1.0
        alias[i] = i
    # a zero-weight leftover (only by rounding) must still never be drawn
    for i in np.flatnonzero((w == 0) & (prob == 1.0)):
        prob[i] = 0.0
        alias[i] = int(np.argmax(w))
    return prob, alias


def alias_probabilities(prob: np.ndarray, alias: np.ndarray) -> np.ndarray:
    """The distribution a table encodes (for tests): P(k) = (prob[k] + sum_{c: alias[c]=k} (1 - prob[c])) / n."""
    n = prob.size
    p = prob.copy()
    np.add.at(p, alias, 1.0 - prob)
    return p / n


@njit(inline="always")
def uniform_index(s, n):
    """Uniform integer in [0, n) from 53 random bits (bias below n / 2**53; `rng.next_below` keeps only 32
    bits, a relative bias up to n / 2**32, too coarse for exact detailed balance on large tables)."""
    k = np.int64(next_double(s) * n)
    return k if k < n else n - 1


@njit(inline="always")
def alias_draw(s, prob, alias):
    """One index drawn from the table with stream `s`."""
    c = uniform_index(s, prob.size)
    if next_double(s) < prob[c]:
        return c
    return alias[c]

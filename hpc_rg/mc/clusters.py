"""Union-find and cluster flips shared by the cluster algorithms (Swendsen-Wang here, the long-range
Fukui-Todo sampler in `hpc_rg.mc.longrange_cluster`).

Sites are flat indices 0..N-1.  `parent` (int64[N]) is the forest, `size` (int64[N]) the cluster size, valid at
roots.  All functions are numba-compiled and callable from other njit kernels:

    reset(parent, size)                      every site its own cluster
    find(parent, i) -> root                  with path halving
    union(parent, size, i, j) -> root        union by size (no-op when already joined)
    flip_clusters(spins, parent, size, rng, decision, beta_h) -> change of sum(spins)
        spins: int8[N] ±1 (flat view), rng: uint64[4] xoshiro state, decision: int8[N] scratch.
        Every cluster is flipped with probability 1/2 (beta_h == 0) or, with a field, gets its new sign from
        the heat bath P(sign = +1) = 1 / (1 + exp(-2 beta_h n_C)) (n_C its size; requires aligned clusters).
"""
from __future__ import annotations

import numpy as np
from numba import njit, uint64

from hpc_rg.mc.rng_extra import as_double, step


@njit(cache=True)
def reset(parent, size):
    for i in range(parent.shape[0]):
        parent[i] = i
        size[i] = 1


@njit(inline="always")
def find(parent, i):
    while parent[i] != i:
        parent[i] = parent[parent[i]]   # path halving: every other node skips its grandparent
        i = parent[i]
    return i


@njit(inline="always")
def union(parent, size, i, j):
    a = find(parent, i)
    b = find(parent, j)
    if a == b:
        return a
    if size[a] < size[b]:
        a, b = b, a
    parent[b] = a
    size[a] += size[b]
    return a


@njit(cache=True)
def flip_clusters(spins, parent, size, rng, decision, beta_h):
    """Flip each cluster with probability 1/2 (beta_h = 0) or heat-bath its sign in the field; see module doc."""
    n = spins.shape[0]
    s0, s1, s2, s3 = rng[0], rng[1], rng[2], rng[3]
    bits = uint64(0)
    left = 0
    for i in range(n):
        if parent[i] == i:
            if beta_h == 0.0:
                if left == 0:           # one random word serves 64 roots
                    bits, s0, s1, s2, s3 = step(s0, s1, s2, s3)
                    left = 64
                decision[i] = np.int8(bits & uint64(1))
                bits >>= uint64(1)
                left -= 1
            else:
                r, s0, s1, s2, s3 = step(s0, s1, s2, s3)
                p_up = 1.0 / (1.0 + np.exp(-2.0 * beta_h * size[i]))
                new = 1 if as_double(r) < p_up else -1
                decision[i] = np.int8(new != spins[i])
    dmag = np.int64(0)
    for i in range(n):
        if decision[find(parent, i)]:
            dmag -= 2 * np.int64(spins[i])
            spins[i] = -spins[i]
    rng[0], rng[1], rng[2], rng[3] = s0, s1, s2, s3
    return dmag

"""Union-find and cluster signs shared by the Swendsen-Wang samplers (nearest-neighbour here, the long-range
Fukui-Todo sampler in `hpc_rg.mc.longrange_cluster`).

Sites are flat indices 0..N-1.  The forest is one int32 array `parent`: a root holds minus its cluster size,
every other site its parent.  One 4-byte array instead of parent and size arrays of 8 bytes each keeps the
forest of a 1024^2 lattice in 4 MiB (SW at L = 1024 is memory bound).  All functions are numba-compiled and
callable from other njit kernels:

    reset(parent)                            every site its own cluster (-1)
    find(parent, i) -> root                  with full path compression
    union(parent, i, j)                      union by size (no-op when already joined)
    cluster_signs(parent, rng, newspin, two_beta_h)
        newspin[root] = the new sign (±1) of every cluster: ±1 with probability 1/2 each at h = 0 (one random
        word serves 64 roots), else the heat bath in the field, P(+1) = 1 / (1 + exp(-2 beta h |C|)),
        exact for Swendsen-Wang with a field; rng: uint64[4] xoshiro state.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, uint64

from hpc_rg.rng import as_double, step

_U1 = uint64(1)


@njit(cache=True)
def reset(parent):
    for i in range(parent.shape[0]):
        parent[i] = -1


@njit(inline="always")
def find(parent, i):
    r = i
    while parent[r] >= 0:
        r = parent[r]
    while parent[i] >= 0 and parent[i] != r:   # second pass: point the whole path at the root
        nxt = parent[i]
        parent[i] = r
        i = nxt
    return r


@njit(inline="always")
def union(parent, i, j):
    a = find(parent, i)
    b = find(parent, j)
    if a != b:
        if parent[a] > parent[b]:      # a is the smaller tree (sizes are negative)
            a, b = b, a
        parent[a] += parent[b]
        parent[b] = a


@njit(cache=True)
def cluster_signs(parent, rng, newspin, two_beta_h):
    s0, s1, s2, s3 = rng[0], rng[1], rng[2], rng[3]
    bits = uint64(0)
    left = 0
    for i in range(parent.shape[0]):
        if parent[i] < 0:
            if two_beta_h == 0.0:
                if left == 0:
                    bits, s0, s1, s2, s3 = step(s0, s1, s2, s3)
                    left = 64
                newspin[i] = np.int8(2 * np.int64(bits & _U1) - 1)
                bits >>= _U1
                left -= 1
            else:
                r, s0, s1, s2, s3 = step(s0, s1, s2, s3)
                p_up = 1.0 / (1.0 + math.exp(two_beta_h * parent[i]))   # parent[i] = -|C|
                newspin[i] = 1 if as_double(r) < p_up else -1
    rng[0], rng[1], rng[2], rng[3] = s0, s1, s2, s3

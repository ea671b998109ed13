"""Integer Bernoulli draws on top of `hpc_rg.mc.rng`: probabilities become 63-bit integer thresholds.

A probability p is stored as thr = round(p * 2**63) (uint64, at most 2**63).  The event "(next_u64 >> 1) < thr"
has probability thr / 2**63, so p = 1 is exact (thr = 2**63 beats every 63-bit draw) and p = 0 never fires;
the rounding error is below 2**-64.  Comparing integers avoids the int->double conversion and a branch on p >= 1.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, uint64

from hpc_rg.mc.rng import next_u64

ONE63 = 1 << 63
_U1 = uint64(1)


def threshold(p: float) -> np.uint64:
    """The uint64 threshold of probability p (clipped to [0, 1])."""
    p = min(max(float(p), 0.0), 1.0)
    return np.uint64(min(ONE63, int(round(math.ldexp(p, 63)))))


def thresholds(p: np.ndarray) -> np.ndarray:
    """Elementwise `threshold` of an array of probabilities (same shape, uint64)."""
    p = np.asarray(p, dtype=np.float64)
    return np.array([threshold(x) for x in p.ravel()], dtype=np.uint64).reshape(p.shape)


@njit(inline="always")
def bernoulli(s, thr):
    """True with probability thr / 2**63 (one draw from stream `s`)."""
    return (next_u64(s) >> _U1) < thr


_U5, _U7, _U9, _U17, _U45, _U64 = uint64(5), uint64(7), uint64(9), uint64(17), uint64(45), uint64(64)


@njit(inline="always")
def _rotl(x, k):
    return (x << k) | (x >> (_U64 - k))


@njit(inline="always")
def step(s0, s1, s2, s3):
    """xoshiro256** on a state held in four scalars: returns (64 random bits, s0, s1, s2, s3).

    The same generator as `rng.next_u64`, for hot loops: a state kept in locals stays in registers, while an
    array state must be reloaded after every store to a spin array that might alias it.  Load the state with
    `s0, s1, s2, s3 = s[0], s[1], s[2], s[3]` and store it back when the loop ends."""
    result = _rotl(s1 * _U5, _U7) * _U9
    t = s1 << _U17
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = _rotl(s3, _U45)
    return result, s0, s1, s2, s3


_U32 = uint64(32)


@njit(inline="always")
def below(r, n):
    """Uniform integer in [0, n) from 64 random bits r (multiply-shift as `rng.next_below`; n < 2**32)."""
    return np.int64((r >> _U32) * uint64(n) >> _U32)


@njit(inline="always")
def as_double(r):
    """Uniform double in [0, 1) from 64 random bits r (the top 53)."""
    return np.float64(r >> uint64(11)) * (1.0 / 9007199254740992.0)

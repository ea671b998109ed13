"""Random streams for samplers and trainer: xoshiro256** in numba, state in a uint64[4] array.

Every chain owns one state array, derived from `SeedSequence(job_seed, spawn_key=(ladder, T index,
purpose))` (see `hpc_rg.parallel.seed_sequence`), never from the rank; the array is the whole RNG state, so a
checkpoint stores it and a restart continues the stream bit for bit. Kernels take the array and call
`next_u64` / `next_double` inline, which is several times cheaper than calling a numpy Generator from numba.

Integer Bernoulli draws: a probability p is stored as thr = round(p * 2**63) (uint64, at most 2**63). The
event "(next_u64 >> 1) < thr" has probability thr / 2**63, so p = 1 is exact (thr = 2**63 beats every 63-bit
draw) and p = 0 never fires; the rounding error is below 2**-64. Comparing integers avoids the int->double
conversion and a branch on p >= 1.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, uint64

_U5, _U7, _U9, _U17, _U45, _U11, _U64 = (uint64(5), uint64(7), uint64(9), uint64(17), uint64(45),
                                         uint64(11), uint64(64))
_INV53 = 1.0 / 9007199254740992.0  # 2**-53


def new_state(seed_sequence: np.random.SeedSequence) -> np.ndarray:
    """A fresh xoshiro256** state (never all zero) from a SeedSequence."""
    state = seed_sequence.generate_state(4, dtype=np.uint64)
    if not state.any():
        state[0] = 0x9E3779B97F4A7C15
    return state


@njit(inline="always")
def _rotl(x, k):
    return (x << k) | (x >> (_U64 - k))


@njit(inline="always")
def next_u64(s):
    """Advance state `s` (uint64[4]) and return 64 random bits."""
    result = _rotl(s[1] * _U5, _U7) * _U9
    t = s[1] << _U17
    s[2] ^= s[0]
    s[3] ^= s[1]
    s[1] ^= s[2]
    s[0] ^= s[3]
    s[2] ^= t
    s[3] = _rotl(s[3], _U45)
    return result


@njit(inline="always")
def next_double(s):
    """Uniform double in [0, 1) with 53 random bits."""
    return np.float64(next_u64(s) >> _U11) * _INV53


@njit(inline="always")
def next_below(s, n):
    """Uniform integer in [0, n) from 53 random bits: relative bias < n / 2**53 (1e-11 at n = 2**20 sites)."""
    k = np.int64(next_double(s) * n)
    return k if k < n else np.int64(n - 1)   # guard against rounding up (cannot happen for n < 2**52)


@njit
def fill_doubles(s, out):
    for i in range(out.size):
        out[i] = next_double(s)


# ---- integer thresholds and a register-held state, for hot loops ----

ONE63 = 1 << 63


def threshold(p: float) -> np.uint64:
    """The uint64 threshold of probability p (clipped to [0, 1])."""
    p = min(max(float(p), 0.0), 1.0)
    return np.uint64(min(ONE63, int(round(math.ldexp(p, 63)))))


def thresholds(p: np.ndarray) -> np.ndarray:
    """Elementwise `threshold` of an array of probabilities (same shape, uint64)."""
    p = np.asarray(p, dtype=np.float64)
    return np.array([threshold(x) for x in p.ravel()], dtype=np.uint64).reshape(p.shape)


@njit(inline="always")
def step(s0, s1, s2, s3):
    """xoshiro256** on a state held in four scalars: returns (64 random bits, s0, s1, s2, s3).

    The same generator as `next_u64`, for hot loops: a state kept in locals stays in registers, while an
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
    """Uniform integer in [0, n) from 64 random bits r (multiply-shift as `next_below`; n < 2**32)."""
    return np.int64((r >> _U32) * uint64(n) >> _U32)


@njit(inline="always")
def as_double(r):
    """Uniform double in [0, 1) from 64 random bits r (the top 53)."""
    return np.float64(r >> uint64(11)) * (1.0 / 9007199254740992.0)

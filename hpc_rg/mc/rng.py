"""Per-chain random streams: xoshiro256** in numba, state in a uint64[4] array.

Every chain owns one state array, derived from `SeedSequence(job_seed, spawn_key=(ladder, T index,
purpose))` (see `hpc_rg.parallel.seed_sequence`), never from the rank; the array is the whole RNG state, so a
checkpoint stores it and a restart continues the stream bit for bit. Kernels take the array and call
`next_u64` / `next_double` inline, which is several times cheaper than calling a numpy Generator from numba.
"""
from __future__ import annotations

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

"""Multi-spin-coded checkerboard Metropolis for the 2D nearest-neighbour Ising model (h = 0), 64 independent
replicas at one beta packed into the bits of one uint64 per site, on a CUDA GPU (numba-cuda) or, with the
same kernel source, on the CPU.

Bit r of word (y, x) is the spin of replica r at site (y, x): 1 means s = +1, 0 means s = -1. One update =
one sweep (even sublattice, then odd; Ly, Lx even). A word is updated with bit logic for all 64 replicas at
once: with e_i the lanes where neighbour i is "satisfied" (aligned for J > 0, anti-aligned for J < 0), a
flip costs dE = 4|J|(m - 2) where m = #satisfied neighbours, so lanes with m <= 2 always flip, lanes with
m = 3 flip with probability p = exp(-4 beta |J|), lanes with m = 4 with p**2 (two independent Bernoulli(p)
draws, both must succeed).

Every replica makes its own acceptance decision from its own random bits (the replicas are independent
Markov chains, not one chain with shared randomness): a Bernoulli(p) mask over 64 lanes compares, bit by bit
from the most significant end, 64 independent uniform numbers (one bit of each per random word) with the
binary expansion of P = floor(p * 2**64); a lane is decided at its first bit that differs from P's and the
loop ends when every lane that needs a decision is decided (about 8 words; at most 64). The result is
exactly Bernoulli(P / 2**64) per lane. Random words come from Philox4x32-10 with counter (site, half-sweep,
draw), key mixed from the 64 replicas' SeedSequences (hpc_rg.mc.gpu_common).

Energies per site (E = -J sum_<ij> s_i s_j), magnetization per site (signed), k_B = 1.
"""
from __future__ import annotations

import functools
import math

import numpy as np
from numba import njit

from hpc_rg.mc.gpu_common import (PURPOSE_INIT, PURPOSE_UPDATE, blocks, counter_words,
                                  cuda_device_function, cuda_kernel, fixed_point_64, group_key, philox4x32,
                                  philox4x32_src, resolve_device, row_threads, to_device,
                                  to_host)
from hpc_rg.mc.sampler import Sampler
from hpc_rg.plugins import Plugin

PLUGINS = (
    Plugin("sampler", "multispin", "GpuMultiSpin", device="cuda", models=("ising2d",),
           doc="multi-spin coded Metropolis on a CUDA device"),
)

LANES = 64
_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)
_ONE = np.uint64(1)
_S32 = np.uint64(32)


# ----------------------------------------------------------------------------------------------------
# Kernel bodies (plain Python, compiled for the CPU below and for CUDA in _cuda_kernels)
# ----------------------------------------------------------------------------------------------------

def _bernoulli_src(need, P, k0, k1, c0, c1, c2, draw):
    """(mask, draw'): lanes of `need` set independently with probability P / 2**64; draw counts the
    Philox calls used so far at this (site, half-sweep)."""
    result = np.uint64(0)
    undecided = need
    bit = np.int64(63)
    while undecided != 0 and bit >= 0:
        r0, r1, r2, r3 = philox4x32(c0, c1, c2, draw, k0, k1)
        draw += _ONE
        for half in range(2):
            if undecided != 0 and bit >= 0:
                if half == 0:
                    rnd = (r0 << _S32) | r1
                else:
                    rnd = (r2 << _S32) | r3
                if (P >> np.uint64(bit)) & _ONE:
                    result |= undecided & ~rnd
                    undecided &= rnd
                else:
                    undecided &= ~rnd
                bit -= 1
    return result, draw


_bernoulli = njit(inline="always", cache=True)(_bernoulli_src)


def _update_src(words, P, always, antiferro, k0, k1, c1, c2, parity, y, i):
    """Thread (y, i): the i-th site of colour `parity` in row y. Philox counter word 0 = y Lx/2 + i."""
    ly, lx = words.shape
    x = (i << 1) + ((y + parity) & 1)
    w = words[y, x]
    if always:
        words[y, x] = w ^ _ALL
        return
    n1 = words[y - 1 if y > 0 else ly - 1, x]
    n2 = words[y + 1 if y < ly - 1 else 0, x]
    n3 = words[y, x - 1 if x > 0 else lx - 1]
    n4 = words[y, x + 1 if x < lx - 1 else 0]
    if antiferro:
        e1 = w ^ n1
        e2 = w ^ n2
        e3 = w ^ n3
        e4 = w ^ n4
    else:
        e1 = ~(w ^ n1)
        e2 = ~(w ^ n2)
        e3 = ~(w ^ n3)
        e4 = ~(w ^ n4)
    all4 = e1 & e2 & e3 & e4
    ge3 = (e1 & e2 & (e3 | e4)) | (e3 & e4 & (e1 | e2))
    c0 = np.uint64(y * (lx >> 1) + i)
    a, draw = _bernoulli(ge3, P, k0, k1, c0, c1, c2, np.uint64(0))
    b, draw = _bernoulli(all4 & a, P, k0, k1, c0, c1, c2, draw)
    flip = ~ge3 | (a & (~all4 | b))
    words[y, x] = w ^ flip


_update = njit(inline="always", cache=True)(_update_src)


def _init_src(words, k0, k1, c1, c2, y, i):
    """Thread (y, i): words (y, 2i) and (y, 2i+1), every bit an independent fair coin."""
    ly, lx = words.shape
    r0, r1, r2, r3 = philox4x32(np.uint64(y * (lx >> 1) + i), c1, c2, np.uint64(0), k0, k1)
    x = i << 1
    words[y, x] = (r0 << _S32) | r1
    words[y, x + 1] = (r2 << _S32) | r3


_init = njit(inline="always", cache=True)(_init_src)


def _lane_row_src(words, lane, y):
    """(anti-aligned bonds to the right and below, up spins) of replica `lane` along row y."""
    ly, lx = words.shape
    yd = y + 1 if y < ly - 1 else 0
    r = np.uint64(lane)
    diff = np.uint64(0)
    ones = np.uint64(0)
    for x in range(lx):
        w = words[y, x]
        diff += ((w ^ words[y, x + 1 if x < lx - 1 else 0]) >> r) & _ONE
        diff += ((w ^ words[yd, x]) >> r) & _ONE
        ones += (w >> r) & _ONE
    return np.int64(diff), np.int64(ones)


_lane_row = njit(inline="always", cache=True)(_lane_row_src)


@njit(cache=True)
def _halfsweep_cpu(words, P, always, antiferro, k0, k1, c1, c2, parity):
    ly, lx = words.shape
    for y in range(ly):
        for i in range(lx >> 1):
            _update(words, P, always, antiferro, k0, k1, c1, c2, parity, y, i)


@njit(cache=True)
def _init_cpu(words, k0, k1, c1, c2):
    ly, lx = words.shape
    for y in range(ly):
        for i in range(lx >> 1):
            _init(words, k0, k1, c1, c2, y, i)


@njit(cache=True)
def _measure_cpu(words, out):
    ly, lx = words.shape
    for lane in range(64):
        d = 0
        o = 0
        for y in range(ly):
            a, b = _lane_row(words, lane, y)
            d += a
            o += b
        out[lane, 0] = d
        out[lane, 1] = o


# CUDA kernels: grid (x: half-row, y: rows), so no thread divides to find its site.

def _update_kernel_src(words, P, always, antiferro, k0, k1, c1, c2, parity):
    i = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    if i < (words.shape[1] >> 1):
        _update(words, P, always, antiferro, k0, k1, c1, c2, parity, cuda.blockIdx.y, i)


def _init_kernel_src(words, k0, k1, c1, c2):
    i = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    if i < (words.shape[1] >> 1):
        _init(words, k0, k1, c1, c2, cuda.blockIdx.y, i)


def _measure_kernel_src(words, out):
    # block = 64 threads (one per lane) on one row: they read the same words (broadcast loads).
    lane = cuda.threadIdx.x
    d, o = _lane_row(words, lane, cuda.blockIdx.x)
    cuda.atomic.add(out, (lane, 0), d)
    cuda.atomic.add(out, (lane, 1), o)


@functools.lru_cache(maxsize=None)
def _cuda_kernels():
    philox = cuda_device_function(philox4x32_src)
    bern = cuda_device_function(_bernoulli_src, philox4x32=philox)
    update = cuda_device_function(_update_src, _bernoulli=bern)
    init = cuda_device_function(_init_src, philox4x32=philox)
    lane_row = cuda_device_function(_lane_row_src)
    return (cuda_kernel(_update_kernel_src, _update=update), cuda_kernel(_init_kernel_src, _init=init),
            cuda_kernel(_measure_kernel_src, _lane_row=lane_row))


# ----------------------------------------------------------------------------------------------------
# The sampler
# ----------------------------------------------------------------------------------------------------

class GpuMultiSpin(Sampler):
    """64 independent replicas (width = needs_width = 64; one SeedSequence each), h = 0 only.
    `device`: "cuda", "cpu" (same kernels, serial) or "auto" (cuda when available)."""

    width = LANES
    needs_width = LANES

    def __init__(self, lattice, beta, seeds, device: str = "auto"):
        super().__init__(lattice, beta, seeds)
        if lattice.dim != 2:
            raise ValueError("GpuMultiSpin is for the 2D square lattice")
        if lattice.h != 0:
            raise ValueError("GpuMultiSpin supports h = 0 only (use GpuMetropolis for a field)")
        ly, lx = lattice.shape
        if ly % 2 or lx % 2:
            raise ValueError(f"GpuMultiSpin needs even Ly and Lx, got {lattice.shape}")
        if len(seeds) != LANES:
            raise ValueError(f"GpuMultiSpin advances {LANES} replicas: pass {LANES} seeds, got {len(seeds)}")
        self.device = resolve_device(device)
        self.key = group_key(seeds)
        self.words = to_device(np.zeros((ly, lx), dtype=np.uint64), self.device)
        c1, c2 = counter_words(0, PURPOSE_INIT)
        k0, k1 = self.key
        if self.device == "cuda":
            tx = row_threads(lx >> 1)
            _cuda_kernels()[1][(blocks(lx >> 1, tx), ly), tx](self.words, k0, k1, c1, c2)
        else:
            _init_cpu(self.words, k0, k1, c1, c2)
        self.counter = 0          # half-sweeps done
        self._measure()

    def _halfsweep(self, P, always, antiferro):
        c1, c2 = counter_words(self.counter, PURPOSE_UPDATE)
        parity = np.int64(self.counter & 1)
        k0, k1 = self.key
        if self.device == "cuda":
            ly, lx = self.lattice.shape
            tx = row_threads(lx >> 1)
            _cuda_kernels()[0][(blocks(lx >> 1, tx), ly), tx](self.words, P, always, antiferro, k0, k1, c1, c2,
                                                             parity)
        else:
            _halfsweep_cpu(self.words, P, always, antiferro, k0, k1, c1, c2, parity)
        self.counter += 1

    def _measure(self):
        """Anti-aligned bond count and up-spin count of every replica into self._counts (64, 2)."""
        if self.device == "cuda":
            from numba import cuda
            out = cuda.to_device(np.zeros((LANES, 2), dtype=np.int64))
            _cuda_kernels()[2][self.lattice.shape[0], LANES](self.words, out)
            self._counts = out.copy_to_host()
        else:
            out = np.zeros((LANES, 2), dtype=np.int64)
            _measure_cpu(self.words, out)
            self._counts = out

    def _flip_probability(self) -> tuple[np.uint64, bool]:
        """(floor(p 2**64), p == 1) for p = exp(-4 beta |J|)."""
        p = math.exp(-4.0 * self.beta * abs(self.lattice.J))
        return np.uint64(fixed_point_64(p)), bool(p >= 1.0)

    def run(self, n, energy, magnetization, every=1):
        P, always = self._flip_probability()
        antiferro = bool(self.lattice.J < 0)
        for k in range(n):
            self._halfsweep(P, always, antiferro)
            self._halfsweep(P, always, antiferro)
            if (k + 1) % every == 0:
                self._measure()
                t = (k + 1) // every - 1
                energy[:, t] = self.energy()
                magnetization[:, t] = self.magnetization()
        if n % every:
            self._measure()

    def energy(self):
        n = self.lattice.n_sites
        bonds = 2 * n - 2 * self._counts[:, 0]
        return -self.lattice.J * bonds / n

    def magnetization(self):
        n = self.lattice.n_sites
        return (2 * self._counts[:, 1] - n) / n

    def packed(self) -> np.ndarray:
        """The (Ly, Lx) uint64 words on the host (bit r = replica r, 1 = up)."""
        return to_host(self.words, self.device)

    def configurations(self):
        return unpack(self.packed())

    def state(self):
        return {"words": self.packed(), "key": self.key.copy(),
                "counter": np.array([self.counter], dtype=np.uint64)}

    def load_state(self, state):
        words = np.ascontiguousarray(state["words"], dtype=np.uint64)
        if words.shape != tuple(self.lattice.shape):
            raise ValueError(f"state words have shape {words.shape}, expected {self.lattice.shape}")
        self.key = np.ascontiguousarray(state["key"], dtype=np.uint64).copy()
        self.words = to_device(words, self.device)
        self.counter = int(np.asarray(state["counter"]).reshape(-1)[0])
        self._measure()


def unpack(words: np.ndarray) -> np.ndarray:
    """(Ly, Lx) uint64 -> int8 (64, Ly, Lx) spins +-1 (replica r from bit r)."""
    lanes = np.arange(LANES, dtype=np.uint64)[:, None, None]
    bits = (words[None] >> lanes) & np.uint64(1)
    return (2 * bits.astype(np.int8) - 1).astype(np.int8)


def pack(spins: np.ndarray) -> np.ndarray:
    """int8 (64, Ly, Lx) +-1 -> (Ly, Lx) uint64 (inverse of unpack)."""
    bits = (np.asarray(spins) > 0).astype(np.uint64)
    lanes = np.arange(LANES, dtype=np.uint64)[:, None, None]
    return np.bitwise_or.reduce(bits << lanes, axis=0)

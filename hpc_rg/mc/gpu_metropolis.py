"""Checkerboard Metropolis and heat bath for the 2D nearest-neighbour Ising model, one byte per spin, on a
CUDA GPU (numba-cuda) or, with the same kernel source, on the CPU.

`width` chains (one per SeedSequence given) at one beta live in one (width, Ly, Lx) int8 array that stays on
the device between runs; only measured energies and magnetizations (2 numbers per chain) come back per
measurement, and configurations only when asked for. One update = one sweep = the even sublattice, then the
odd one (Ly, Lx even, so a colour's neighbours all have the other colour and its sites update in parallel).

A thread updates 4 sites of one colour in 8 consecutive columns with the 4 words of one Philox call
(counter = (site group, half-sweep)). Acceptance compares a 32-bit uniform u with a threshold
floor(p * 2**32), so each probability is represented to 2**-32 (p = 1 is exact: always accepted).

Energies are per site, E = -J sum_<ij> s_i s_j - h sum_i s_i, k_B = 1; magnetization per site, signed.
"""
from __future__ import annotations

import functools
import math

import numpy as np
from numba import njit

from hpc_rg.mc.gpu_common import (PURPOSE_INIT, PURPOSE_UPDATE, blocks, chain_key, counter_words,
                                  cuda_device_function, cuda_kernel, philox4x32, philox4x32_src,
                                  resolve_device, row_threads, simulator_active, to_device,
                                  to_host)
from hpc_rg.mc.sampler import Sampler
from hpc_rg.plugins import Plugin

PLUGINS = (
    Plugin("sampler", "metropolis", "GpuMetropolis", device="cuda", models=("ising2d",),
           doc="checkerboard Metropolis on a CUDA device (numba-cuda, Philox streams)"),
    Plugin("sampler", "heatbath", "GpuHeatBath", device="cuda", models=("ising2d",),
           doc="checkerboard heat bath on a CUDA device"),
)

_TWO32 = 1 << 32
_HALF = np.uint64(0x80000000)


def thresholds(beta: float, J: float, h: float, heatbath: bool) -> np.ndarray:
    """uint64 (2, 5) table indexed by ((s+1)//2, (nb+4)//2), nb the neighbour sum, values in [0, 2**32].
    Metropolis: accept a flip of s when u < t[s, nb], t = 2**32 min(1, exp(-2 beta s (J nb + h))).
    Heat bath: the new spin is +1 when u < t[1, nb] = 2**32 / (1 + exp(-2 beta (J nb + h))) (row 0 = row 1)."""
    t = np.empty((2, 5), dtype=np.uint64)
    for si, s in enumerate((-1, 1)):
        for k in range(5):
            local = J * (2 * k - 4) + h
            if heatbath:
                x = -2.0 * beta * local
                p = 0.0 if x > 700 else 1.0 / (1.0 + math.exp(x))
            else:
                de = 2.0 * s * local
                p = 1.0 if de <= 0 else math.exp(-beta * de)
            t[si, k] = _TWO32 if p >= 1.0 else min(int(math.ldexp(p, 32)), _TWO32 - 1)
    return t


# ----------------------------------------------------------------------------------------------------
# Kernel bodies (plain Python, compiled for the CPU below and for CUDA in _cuda_kernels)
# ----------------------------------------------------------------------------------------------------

def _site_src(spins, thr, heatbath, c, y, yu, yd, x, lx, u):
    xl = x - 1 if x > 0 else lx - 1
    xr = x + 1 if x < lx - 1 else 0
    s = np.int64(spins[c, y, x])
    nb = (np.int64(spins[c, yu, x]) + np.int64(spins[c, yd, x]) + np.int64(spins[c, y, xl])
          + np.int64(spins[c, y, xr]))
    k = (nb + 4) >> 1
    if heatbath:
        spins[c, y, x] = 1 if u < thr[1, k] else -1
    elif u < thr[(s + 1) >> 1, k]:
        spins[c, y, x] = -s


_site = njit(inline="always", cache=True)(_site_src)


def _update_src(spins, thr, keys, c1, c2, parity, heatbath, c, y, g):
    """Thread (c, y, g): chain c, row y, group g of 8 columns; updates the 4 sites of colour `parity`
    there. The Philox counter's first word is the group's index within its chain."""
    width, ly, lx = spins.shape
    x0 = (g << 3) + ((y + parity) & 1)
    yu = y - 1 if y > 0 else ly - 1
    yd = y + 1 if y < ly - 1 else 0
    q = np.uint64(y * (lx >> 3) + g)
    r0, r1, r2, r3 = philox4x32(q, c1, c2, np.uint64(0), keys[c, 0], keys[c, 1])
    _site(spins, thr, heatbath, c, y, yu, yd, x0, lx, r0)
    _site(spins, thr, heatbath, c, y, yu, yd, x0 + 2, lx, r1)
    _site(spins, thr, heatbath, c, y, yu, yd, x0 + 4, lx, r2)
    _site(spins, thr, heatbath, c, y, yu, yd, x0 + 6, lx, r3)


_update = njit(inline="always", cache=True)(_update_src)


def _init_src(spins, keys, c1, c2, c, y, g):
    """Thread (c, y, g): sites 4g..4g+3 of row y of chain c set to +-1 with probability 1/2 each."""
    width, ly, lx = spins.shape
    q = np.uint64(y * (lx >> 2) + g)
    r0, r1, r2, r3 = philox4x32(q, c1, c2, np.uint64(0), keys[c, 0], keys[c, 1])
    x = g << 2
    spins[c, y, x] = 1 if r0 < _HALF else -1
    spins[c, y, x + 1] = 1 if r1 < _HALF else -1
    spins[c, y, x + 2] = 1 if r2 < _HALF else -1
    spins[c, y, x + 3] = 1 if r3 < _HALF else -1


_init = njit(inline="always", cache=True)(_init_src)


def _terms_src(spins, c, y, x):
    """(s (s_right + s_down), s) at site (y, x) of chain c: each bond counted once."""
    width, ly, lx = spins.shape
    s = np.int64(spins[c, y, x])
    right = np.int64(spins[c, y, x + 1 if x < lx - 1 else 0])
    down = np.int64(spins[c, y + 1 if y < ly - 1 else 0, x])
    return s * (right + down), s


_terms = njit(inline="always", cache=True)(_terms_src)


@njit(cache=True)
def _halfsweep_cpu(spins, thr, keys, c1, c2, parity, heatbath):
    width, ly, lx = spins.shape
    for c in range(width):
        for y in range(ly):
            for g in range(lx >> 3):
                _update(spins, thr, keys, c1, c2, parity, heatbath, c, y, g)


@njit(cache=True)
def _init_cpu(spins, keys, c1, c2):
    width, ly, lx = spins.shape
    for c in range(width):
        for y in range(ly):
            for g in range(lx >> 2):
                _init(spins, keys, c1, c2, c, y, g)


@njit(cache=True)
def _measure_cpu(spins, out):
    width, ly, lx = spins.shape
    for c in range(width):
        bonds = 0
        mag = 0
        for y in range(ly):
            for x in range(lx):
                b, s = _terms(spins, c, y, x)
                bonds += b
                mag += s
        out[c, 0] = bonds
        out[c, 1] = mag


# CUDA kernels: thin launch wrappers around the same bodies. Grid (x: column groups, y: rows, z: chains),
# so no thread divides to find its site.

def _update_kernel_src(spins, thr, keys, c1, c2, parity, heatbath):
    g = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    if g < (spins.shape[2] >> 3):
        _update(spins, thr, keys, c1, c2, parity, heatbath, cuda.blockIdx.z, cuda.blockIdx.y, g)


def _init_kernel_src(spins, keys, c1, c2):
    g = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    if g < (spins.shape[2] >> 2):
        _init(spins, keys, c1, c2, cuda.blockIdx.z, cuda.blockIdx.y, g)


def _measure_kernel_src(spins, out):
    # grid (row blocks, chains), a power of two (<= 256) of threads striding along rows; block tree
    # reduction in shared memory, one atomic per block and counter.
    c = cuda.blockIdx.y
    tid = cuda.threadIdx.x
    width, ly, lx = spins.shape
    bonds = 0
    mag = 0
    for y in range(cuda.blockIdx.x, ly, cuda.gridDim.x):
        for x in range(tid, lx, cuda.blockDim.x):
            b, s = _terms(spins, c, y, x)
            bonds += b
            mag += s
    sb = cuda.shared.array(256, dtype=np.int64)
    sm = cuda.shared.array(256, dtype=np.int64)
    sb[tid] = bonds
    sm[tid] = mag
    cuda.syncthreads()
    step = cuda.blockDim.x >> 1
    while step > 0:
        if tid < step:
            sb[tid] += sb[tid + step]
            sm[tid] += sm[tid + step]
        cuda.syncthreads()
        step >>= 1
    if tid == 0:
        cuda.atomic.add(out, (c, 0), sb[0])
        cuda.atomic.add(out, (c, 1), sm[0])


@functools.lru_cache(maxsize=None)
def _cuda_kernels():
    philox = cuda_device_function(philox4x32_src)
    site = cuda_device_function(_site_src)
    update = cuda_device_function(_update_src, philox4x32=philox, _site=site)
    init = cuda_device_function(_init_src, philox4x32=philox)
    terms = cuda_device_function(_terms_src)
    return (cuda_kernel(_update_kernel_src, _update=update), cuda_kernel(_init_kernel_src, _init=init),
            cuda_kernel(_measure_kernel_src, _terms=terms))


# ----------------------------------------------------------------------------------------------------
# The sampler
# ----------------------------------------------------------------------------------------------------

class GpuCheckerboard(Sampler):
    """`width` = len(seeds) chains advanced together (any number >= 1; needs_width = 1).
    `device`: "cuda", "cpu" (same kernels, serial) or "auto" (cuda when available)."""

    width = 1
    needs_width = 1
    heatbath = False

    def __init__(self, lattice, beta, seeds, device: str = "auto"):
        super().__init__(lattice, beta, seeds)
        if lattice.dim != 2:
            raise ValueError("GPU checkerboard samplers are for the 2D square lattice")
        ly, lx = lattice.shape
        if ly % 2 or lx % 8:
            raise ValueError(f"GPU checkerboard needs Ly even and Lx a multiple of 8, got {lattice.shape}")
        self.width = len(seeds)
        self.device = resolve_device(device)
        keys = np.stack([chain_key(s) for s in seeds])
        self.keys = to_device(keys, self.device)
        self._keys_host = keys
        self.spins = to_device(np.zeros((self.width, ly, lx), dtype=np.int8), self.device)
        c1, c2 = counter_words(0, PURPOSE_INIT)
        self._launch_init(c1, c2)
        self.counter = 0          # half-sweeps done
        self._measure()

    # -- kernels ------------------------------------------------------------------------------------
    def _launch_init(self, c1, c2):
        if self.device == "cuda":
            ly, lx = self.lattice.shape
            tx = row_threads(lx >> 2)
            _cuda_kernels()[1][(blocks(lx >> 2, tx), ly, self.width), tx](self.spins, self.keys, c1, c2)
        else:
            _init_cpu(self.spins, self.keys, c1, c2)

    def _halfsweep(self, thr):
        c1, c2 = counter_words(self.counter, PURPOSE_UPDATE)
        parity = np.int64(self.counter & 1)
        heatbath = bool(self.heatbath)
        if self.device == "cuda":
            ly, lx = self.lattice.shape
            tx = row_threads(lx >> 3)
            _cuda_kernels()[0][(blocks(lx >> 3, tx), ly, self.width), tx](self.spins, thr, self.keys, c1, c2, parity, heatbath)
        else:
            _halfsweep_cpu(self.spins, thr, self.keys, c1, c2, parity, heatbath)
        self.counter += 1

    def _measure(self):
        """Bond sum and spin sum of every chain (exact integers) into self._bonds_mag."""
        if self.device == "cuda":
            from numba import cuda
            out = cuda.to_device(np.zeros((self.width, 2), dtype=np.int64))
            ly, lx = self.lattice.shape
            # enough blocks to fill the GPU; two under the simulator (still several blocks' atomics)
            nb = 2 if simulator_active() else min(ly, max(1, 4096 // self.width))
            tx = 1 << (row_threads(lx) - 1).bit_length()
            _cuda_kernels()[2][(nb, self.width), tx](self.spins, out)
            self._bonds_mag = out.copy_to_host()
        else:
            out = np.zeros((self.width, 2), dtype=np.int64)
            _measure_cpu(self.spins, out)
            self._bonds_mag = out

    # -- Sampler -----------------------------------------------------------------------------------
    def run(self, n, energy, magnetization, every=1):
        lat = self.lattice
        thr = to_device(thresholds(self.beta, lat.J, lat.h, self.heatbath), self.device)
        for k in range(n):
            self._halfsweep(thr)
            self._halfsweep(thr)
            if (k + 1) % every == 0:
                self._measure()
                t = (k + 1) // every - 1
                energy[:, t] = self.energy()
                magnetization[:, t] = self._bonds_mag[:, 1] / lat.n_sites
        if n % every:
            self._measure()       # keeps energy() current (O(1) afterwards)

    def energy(self):
        bonds, mag = self._bonds_mag[:, 0], self._bonds_mag[:, 1]
        return (-self.lattice.J * bonds - self.lattice.h * mag) / self.lattice.n_sites

    def magnetization(self):
        return self._bonds_mag[:, 1] / self.lattice.n_sites

    def configurations(self):
        return to_host(self.spins, self.device)

    def state(self):
        return {"spins": self.configurations(), "keys": self._keys_host.copy(),
                "counter": np.array([self.counter], dtype=np.uint64)}

    def load_state(self, state):
        spins = np.ascontiguousarray(state["spins"], dtype=np.int8)
        if spins.shape != (self.width, *self.lattice.shape):
            raise ValueError(f"state spins have shape {spins.shape}, expected {(self.width, *self.lattice.shape)}")
        self._keys_host = np.ascontiguousarray(state["keys"], dtype=np.uint64).copy()
        self.keys = to_device(self._keys_host, self.device)
        self.spins = to_device(spins, self.device)
        self.counter = int(np.asarray(state["counter"]).reshape(-1)[0])
        self._measure()


class GpuMetropolis(GpuCheckerboard):
    """Checkerboard Metropolis, one byte per spin (see module docstring)."""
    heatbath = False


class GpuHeatBath(GpuCheckerboard):
    """Checkerboard heat bath (Glauber), one byte per spin: each visited spin is redrawn from its
    conditional distribution P(s = +1) = 1 / (1 + exp(-2 beta (J nb + h)))."""
    heatbath = True

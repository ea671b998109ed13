"""What the GPU samplers share: Philox4x32-10 counter-based random numbers, per-chain keys, device choice,
and the trick that runs one kernel source on the GPU and on the CPU.

Random numbers. Every random word is `philox4x32(counter, key)` (Salmon et al., SC'11, "Parallel random
numbers: as easy as 1, 2, 3"; the 10-round Philox4x32 of Random123, checked against its known-answer
vectors in the tests). The key (2 x 32 bits) comes from the chain's SeedSequence; the counter (4 x 32 bits)
names the draw: (site group, half-sweep index low 32 bits, half-sweep high 30 bits | purpose << 30, draw
number). A draw therefore depends only on (chain, site, half-sweep, draw), never on the thread layout, the
launch order or the device, so the GPU, the CPU backend and a restarted run produce the same chain bit for
bit, and the whole RNG state of a sampler is its keys plus one 64-bit half-sweep counter.

One source, two targets. Kernel bodies are written once as plain Python functions over scalars and arrays
(`*_src`). `njit` compiles them for the CPU backend, whose driver loops over the thread index serially; the
CUDA kernels are the same functions compiled by `numba.cuda.jit(device=True)` with their global names
re-pointed to CUDA device functions (`retarget`). Updates within a checkerboard half-sweep are independent,
so the serial loop and the parallel grid compute identical results. CI (no GPU) runs the CPU backend for
the statistics tests and the CUDA kernels themselves under numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1).

Why numba-cuda (over CuPy raw kernels, Triton or torch): the project's CPU kernels are numba already, and
only numba lets one Python source compile to both a CUDA kernel and a fast CPU loop, so CI (no GPU) tests the
exact kernel code twice (CPU compilation for statistics against exact results, numba's CUDA simulator for the
CUDA launch path) with nothing beyond numba installed; CuPy has no CPU backend, Triton's interpreter needs
triton installed and its tl.rand is not our Philox stream, and torch elementwise ops cannot express the
bit-sliced per-lane Bernoulli loop of multi-spin coding without one kernel launch per operation.

All values inside the Philox code are uint64 holding 32-bit quantities: numba widens small integers to 64
bits anyway, and a 32 x 32 -> 64 bit product is exactly the mulhilo that Philox needs.
"""
from __future__ import annotations

import functools
import math
import types

import numpy as np
from numba import njit

PURPOSE_UPDATE = 0
PURPOSE_INIT = 1

_M0 = np.uint64(0xD2511F53)
_M1 = np.uint64(0xCD9E8D57)
_W0 = np.uint64(0x9E3779B9)
_W1 = np.uint64(0xBB67AE85)
MASK32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)


def philox4x32_src(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 of counter (c0..c3) under key (k0, k1); inputs and outputs are uint64 < 2**32.
    Works on numba scalars (CPU and CUDA) and elementwise on numpy uint64 arrays."""
    for _ in range(10):
        p0 = _M0 * c0
        p1 = _M1 * c2
        n0 = ((p1 >> _S32) ^ c1 ^ k0) & MASK32
        n2 = ((p0 >> _S32) ^ c3 ^ k1) & MASK32
        c1 = p1 & MASK32
        c3 = p0 & MASK32
        c0 = n0
        c2 = n2
        k0 = (k0 + _W0) & MASK32
        k1 = (k1 + _W1) & MASK32
    return c0, c1, c2, c3


philox4x32 = njit(inline="always", cache=True)(philox4x32_src)


def philox_numpy(counter: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Vectorised Philox4x32-10 on the host: counter (..., 4), key (..., 2) -> (..., 4) uint32."""
    c = np.asarray(counter, dtype=np.uint64)
    k = np.asarray(key, dtype=np.uint64)
    with np.errstate(over="ignore"):
        out = philox4x32_src(c[..., 0], c[..., 1], c[..., 2], c[..., 3], k[..., 0], k[..., 1])
    return np.stack(out, axis=-1).astype(np.uint32)


def chain_key(seed: np.random.SeedSequence) -> np.ndarray:
    """The Philox key (2 words, uint64 < 2**32) of one chain."""
    return seed.generate_state(2, dtype=np.uint32).astype(np.uint64)


def group_key(seeds: list[np.random.SeedSequence]) -> np.ndarray:
    """One Philox key for a group of chains that share a stream (the bit lanes of multi-spin coding):
    mixed from every chain's SeedSequence, so a different set of chains gets a different stream."""
    entropy = [int(w) for s in seeds for w in s.generate_state(2, dtype=np.uint32)]
    return np.random.SeedSequence(entropy).generate_state(2, dtype=np.uint32).astype(np.uint64)


def counter_words(half_sweep: int, purpose: int) -> tuple[np.uint64, np.uint64]:
    """(c1, c2) of the Philox counter for a half-sweep index (< 2**62) and a purpose (< 4)."""
    if not 0 <= half_sweep < 1 << 62:
        raise OverflowError("half-sweep counter exhausted (2**62)")
    return np.uint64(half_sweep & 0xFFFFFFFF), np.uint64((half_sweep >> 32) | (purpose << 30))


def fixed_point_64(p: float) -> int:
    """floor(p * 2**64) for 0 <= p < 1 (exact: p is a double, scaling by 2**64 is exact)."""
    return int(math.ldexp(p, 64)) if p < 1.0 else (1 << 64) - 1


# ----------------------------------------------------------------------------------------------------
# Devices
# ----------------------------------------------------------------------------------------------------

def _cuda_module():
    try:
        from numba import cuda
    except Exception:          # a numba without its CUDA target and no numba-cuda installed
        return None
    return cuda


def simulator_active() -> bool:
    from numba import config
    return bool(getattr(config, "ENABLE_CUDASIM", 0))


def gpu_present() -> bool:
    """True when a real CUDA device is usable (not the simulator)."""
    cuda = _cuda_module()
    if cuda is None or simulator_active():
        return False
    try:
        return bool(cuda.is_available())
    except Exception:
        return False


def cuda_usable() -> bool:
    """True when CUDA kernels can run: a real device or numba's CUDA simulator."""
    cuda = _cuda_module()
    return cuda is not None and (simulator_active() or gpu_present())


def resolve_device(device: str) -> str:
    """"cpu" | "cuda" | "auto" -> "cpu" or "cuda" (auto: cuda when a device, or the simulator, is there)."""
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, not {device!r}")
    if device == "cpu":
        return "cpu"
    if cuda_usable():
        select_gpu()
        return "cuda"
    if device == "cuda":
        raise RuntimeError('device = "cuda" but no CUDA device (and no NUMBA_ENABLE_CUDASIM) is available')
    return "cpu"


@functools.lru_cache(maxsize=None)
def select_gpu() -> int:
    """Bind this process to one GPU: local rank modulo the visible devices (one MPI rank per GPU when the
    launcher sets CUDA_VISIBLE_DEVICES per rank, or ranks of a node shared round-robin otherwise)."""
    if simulator_active():
        return 0
    cuda = _cuda_module()
    from hpc_rg.parallel import local_rank
    n = len(cuda.gpus)
    index = local_rank() % n if n > 1 else 0
    cuda.select_device(index)
    return index


def retarget(pyfunc, jit, **names):
    """Compile `pyfunc` with `jit` after re-pointing the global `names` it calls (to CUDA device functions)."""
    g = dict(pyfunc.__globals__)
    g.update(names)
    f = types.FunctionType(pyfunc.__code__, g, pyfunc.__name__, pyfunc.__defaults__, pyfunc.__closure__)
    return jit(f)


def cuda_device_function(pyfunc, **names):
    cuda = _cuda_module()
    return retarget(pyfunc, cuda.jit(device=True, inline=True), **names)


def cuda_kernel(pyfunc, **names):
    cuda = _cuda_module()
    return retarget(pyfunc, cuda.jit, cuda=cuda, **names)


def to_device(array: np.ndarray, device: str):
    if device == "cuda":
        return _cuda_module().to_device(np.ascontiguousarray(array))
    return np.ascontiguousarray(array).copy()


def to_host(array, device: str) -> np.ndarray:
    return array.copy_to_host() if device == "cuda" else np.array(array, copy=True)


def row_threads(n: int, most: int = 256) -> int:
    """Threads per block for n threads along a row: a multiple of the 32-thread warp, at most `most`
    (under the simulator, where every idle thread costs a Python thread, just n)."""
    if simulator_active():
        return max(1, min(most, n))
    return min(most, max(32, (n + 31) // 32 * 32))


def blocks(n: int, threads: int) -> int:
    return max(1, (n + threads - 1) // threads)

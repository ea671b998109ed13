"""Multi-spin coded checkerboard Metropolis: 64 independent replicas of a 2D torus packed bit-wise in uint64.

Bit b of word (y, x) is the spin of replica (chain) b at site (y, x): bit 1 means s = -1.  All 64 replicas run at
the same beta with h = 0 and J > 0 (the job validator enforces h = 0).  Per site the bit-sliced sum of the
four "anti-aligned neighbour" words a in {0..4} gives dE = 4J(2 - a): lanes with a >= 3 flip, a = 2 (dE = 0)
with probability 1/2 (one random word; see `metropolis.flip_probability_metropolis` for why not 1), lanes with
a = 1 with p1 = exp(-4 beta J), lanes with a = 0 with p2 = exp(-8 beta J).

Each lane gets its own acceptance bit: a bit-sliced comparison U < p of a per-lane uniform U, whose binary digits
are the lane's bits of successive random words, against the lane's threshold (p1 or p2, 63-bit).  Digits are
drawn only while some lane with dE > 0 is still undecided (a lane is decided at its first digit that differs
from the threshold's), so the comparison is exact to 2**-63 and costs ~log2(64) + 2 words per site.  Every lane
consumes fresh independent bits, so the replicas are independent chains although they share one xoshiro256**
pair of xoshiro256** streams (seeded from all 64 chains' SeedSequences; two streams so that consecutive
digits' generator steps run in parallel).  One update = one sweep (even sites, then odd sites).

Energy and magnetisation of every lane are counted after each sweep with bit-sliced (vertical) counters.
"""
from __future__ import annotations

import numpy as np
from numba import njit, uint64

from hpc_rg.rng import new_state
from hpc_rg.rng import ONE63, step, threshold
from hpc_rg.mc.sampler import Sampler
from hpc_rg.plugins import Plugin

PLUGINS = (
    Plugin("sampler", "multispin", "MultiSpinMetropolis", models=("ising2d",),
           doc="Metropolis with multi-spin coding: 64 chains in the bits of a word, h = 0"),
)

WIDTH = 64
_U0, _U1 = uint64(0), uint64(1)


_BYTE_LSB = uint64(0x0101010101010101)
_FF = uint64(0xFF)


@njit(inline="always")
def _add_bytes(a, o, counts):
    """Add the 8 byte counters of a (lane 8 B + o in byte B) to the per-lane totals."""
    for byte in range(8):
        counts[8 * byte + o] += np.int64((a >> uint64(8 * byte)) & _FF)


@njit(cache=True)
def measure(words, down_bits, anti_bonds):
    """Per lane: number of down spins and of anti-aligned bonds (right and down bond of every site).

    Bits are summed in byte lanes: for bit offset o, (w >> o) & 0x0101..01 holds lanes o, 8 + o, ... one per
    byte, and a plain uint64 sum over at most 127 sites (2 bond words each: <= 254) cannot overflow a byte.
    The 16 accumulators are scalars (unrolled) so that they live in registers."""
    ly, lx = words.shape
    down_bits[:] = 0
    anti_bonds[:] = 0
    for i in range(ly):
        row = words[i]
        dn = words[i + 1 if i < ly - 1 else 0]
        for j0 in range(0, lx, 127):
            a0 = _U0
            b0 = _U0
            a1 = _U0
            b1 = _U0
            a2 = _U0
            b2 = _U0
            a3 = _U0
            b3 = _U0
            a4 = _U0
            b4 = _U0
            a5 = _U0
            b5 = _U0
            a6 = _U0
            b6 = _U0
            a7 = _U0
            b7 = _U0
            for j in range(j0, min(j0 + 127, lx)):
                w = row[j]
                xr = w ^ row[j + 1 if j < lx - 1 else 0]
                xd = w ^ dn[j]
                a0 += (w >> uint64(0)) & _BYTE_LSB
                b0 += ((xr >> uint64(0)) & _BYTE_LSB) + ((xd >> uint64(0)) & _BYTE_LSB)
                a1 += (w >> uint64(1)) & _BYTE_LSB
                b1 += ((xr >> uint64(1)) & _BYTE_LSB) + ((xd >> uint64(1)) & _BYTE_LSB)
                a2 += (w >> uint64(2)) & _BYTE_LSB
                b2 += ((xr >> uint64(2)) & _BYTE_LSB) + ((xd >> uint64(2)) & _BYTE_LSB)
                a3 += (w >> uint64(3)) & _BYTE_LSB
                b3 += ((xr >> uint64(3)) & _BYTE_LSB) + ((xd >> uint64(3)) & _BYTE_LSB)
                a4 += (w >> uint64(4)) & _BYTE_LSB
                b4 += ((xr >> uint64(4)) & _BYTE_LSB) + ((xd >> uint64(4)) & _BYTE_LSB)
                a5 += (w >> uint64(5)) & _BYTE_LSB
                b5 += ((xr >> uint64(5)) & _BYTE_LSB) + ((xd >> uint64(5)) & _BYTE_LSB)
                a6 += (w >> uint64(6)) & _BYTE_LSB
                b6 += ((xr >> uint64(6)) & _BYTE_LSB) + ((xd >> uint64(6)) & _BYTE_LSB)
                a7 += (w >> uint64(7)) & _BYTE_LSB
                b7 += ((xr >> uint64(7)) & _BYTE_LSB) + ((xd >> uint64(7)) & _BYTE_LSB)
            _add_bytes(a0, 0, down_bits)
            _add_bytes(b0, 0, anti_bonds)
            _add_bytes(a1, 1, down_bits)
            _add_bytes(b1, 1, anti_bonds)
            _add_bytes(a2, 2, down_bits)
            _add_bytes(b2, 2, anti_bonds)
            _add_bytes(a3, 3, down_bits)
            _add_bytes(b3, 3, anti_bonds)
            _add_bytes(a4, 4, down_bits)
            _add_bytes(b4, 4, anti_bonds)
            _add_bytes(a5, 5, down_bits)
            _add_bytes(b5, 5, anti_bonds)
            _add_bytes(a6, 6, down_bits)
            _add_bytes(b6, 6, anti_bonds)
            _add_bytes(a7, 7, down_bits)
            _add_bytes(b7, 7, anti_bonds)


@njit(inline="always")
def _row_pass(row, up, dn, j0, tm1, tm2, rng, fl, mh, ms1, ms0):
    """Update the parity-j0 sites of one row of words (see `metropolis._row_pass` for why a row's sites of one
    parity can be prepared together; an odd row length defers the last even site to a second round)."""
    lx = row.shape[0]
    count = (lx - j0 + 1) >> 1
    deferred = (lx & 1) == 1 and j0 == 0
    if deferred:
        count -= 1
    for m in range(count):
        j = 2 * m + j0
        w = row[j]
        fl[m], mh[m], ms1[m], ms0[m] = _classify(w ^ up[j], w ^ dn[j], w ^ row[j - 1 if j > 0 else lx - 1],
                                                 w ^ row[j + 1 if j < lx - 1 else 0])
    s0, s1, s2, s3 = rng[0, 0], rng[0, 1], rng[0, 2], rng[0, 3]
    q0, q1, q2, q3 = rng[1, 0], rng[1, 1], rng[1, 2], rng[1, 3]
    p1_one = tm1[63]
    p2_one = tm2[63]
    for rnd in range(2):
        if rnd == 1:
            if not deferred:
                break
            j = lx - 1   # the seam site, now with its updated neighbour row[0]
            w = row[j]
            fl[0], mh[0], ms1[0], ms0[0] = _classify(w ^ up[j], w ^ dn[j], w ^ row[j - 1], w ^ row[0])
            first, last = 0, 1
        else:
            first, last = 0, count
        for m in range(first, last):
            # lanes of m1 (m0) accept if their uniform U < p1 (p2): compare digit by digit from the top,
            # digits alternating between the two streams (their generator steps overlap in the pipeline)
            m1 = ms1[m]
            m0 = ms0[m]
            flip = fl[m] | (m1 & p1_one) | (m0 & p2_one)
            if mh[m] != _U0:                    # dE = 0: flip with probability 1/2 (ergodicity, see
                r, s0, s1, s2, s3 = step(s0, s1, s2, s3)   # metropolis.flip_probability_metropolis)
                flip |= mh[m] & r
            m1 &= ~p1_one
            m0 &= ~p2_one
            undecided = m1 | m0
            k = 0
            while undecided != _U0 and k < 63:
                ra, s0, s1, s2, s3 = step(s0, s1, s2, s3)
                rb, q0, q1, q2, q3 = step(q0, q1, q2, q3)
                pw = (m1 & tm1[k]) | (m0 & tm2[k])
                diff = undecided & (ra ^ pw)    # lanes whose digit differs from their threshold's digit
                flip |= diff & pw               # digit 0 where the threshold has 1: U < p, accept
                undecided &= ~diff
                pw = (m1 & tm1[k + 1]) | (m0 & tm2[k + 1])
                diff = undecided & (rb ^ pw)
                flip |= diff & pw
                undecided &= ~diff
                k += 2
            j = lx - 1 if rnd == 1 else 2 * m + j0
            row[j] ^= flip
    rng[0, 0], rng[0, 1], rng[0, 2], rng[0, 3] = s0, s1, s2, s3
    rng[1, 0], rng[1, 1], rng[1, 2], rng[1, 3] = q0, q1, q2, q3


@njit(inline="always")
def _classify(x1, x2, x3, x4):
    """Anti-aligned neighbour words -> (lanes with dE < 0, dE = 0, dE = 4J, dE = 8J)."""
    c0 = x1 ^ x2                    # bit-sliced a = x1 + x2 + x3 + x4 = (b2 b1 b0)
    c1 = x1 & x2
    e0 = x3 ^ x4
    e1 = x3 & x4
    b0 = c0 ^ e0
    cy = c0 & e0
    b1 = c1 ^ e1 ^ cy
    b2 = (c1 & e1) | (cy & (c1 ^ e1))
    return b2 | (b1 & b0), b1 & ~b0 & ~b2, b0 & ~b1 & ~b2, ~(b0 | b1 | b2)


def digit_masks(p: float) -> np.ndarray:
    """uint64[64]: [k] all-ones iff binary digit k+1 of the 63-bit threshold of p is 1; [63] all-ones iff p = 1."""
    t = int(threshold(p))
    out = np.zeros(65, np.uint64)
    if t >= ONE63:
        out[63] = np.uint64(0xFFFFFFFFFFFFFFFF)
        return out
    for k in range(63):
        if (t >> (62 - k)) & 1:
            out[k] = np.uint64(0xFFFFFFFFFFFFFFFF)
    return out


@njit(cache=True)
def sweeps(words, tm1, tm2, rng, n, every, J, energy, magnetization, bufs, down_bits, anti_bonds):
    """n checkerboard sweeps of all 64 lanes; tm1, tm2: `digit_masks` of exp(-4 beta J), exp(-8 beta J)."""
    ly, lx = words.shape
    nsite = ly * lx
    for k in range(n):
        for parity in range(2):
            for i in range(ly):
                _row_pass(words[i], words[i - 1 if i > 0 else ly - 1], words[i + 1 if i < ly - 1 else 0],
                          (i + parity) & 1, tm1, tm2, rng, bufs[0], bufs[1], bufs[2], bufs[3])
        if (k + 1) % every == 0:
            t = (k + 1) // every - 1
            measure(words, down_bits, anti_bonds)
            for b in range(64):
                energy[b, t] = -J * (2 * nsite - 2 * anti_bonds[b]) / nsite
                magnetization[b, t] = (nsite - 2 * down_bits[b]) / nsite


@njit(cache=True)
def random_words(rng, out):
    s0, s1, s2, s3 = rng[0], rng[1], rng[2], rng[3]
    flat = out.ravel()
    for i in range(flat.size):
        r, s0, s1, s2, s3 = step(s0, s1, s2, s3)
        flat[i] = r
    rng[0], rng[1], rng[2], rng[3] = s0, s1, s2, s3


def pack(spins: np.ndarray) -> np.ndarray:
    """int8 ±1 (64, *shape) -> uint64 words (*shape), bit b = (spin of replica b == -1)."""
    bits = (spins < 0).astype(np.uint64)
    return np.bitwise_or.reduce(bits << np.arange(WIDTH, dtype=np.uint64).reshape((WIDTH,) + (1,) * (spins.ndim - 1)),
                                axis=0)


def unpack(words: np.ndarray) -> np.ndarray:
    """uint64 words (*shape) -> int8 ±1 (64, *shape)."""
    b = np.arange(WIDTH, dtype=np.uint64).reshape((WIDTH,) + (1,) * words.ndim)
    return (1 - 2 * ((words[None] >> b) & np.uint64(1)).astype(np.int8)).astype(np.int8)


class MultiSpinMetropolis(Sampler):
    width = WIDTH
    needs_width = WIDTH

    def __init__(self, lattice, beta, seeds):
        super().__init__(lattice, beta, seeds)
        if len(seeds) != WIDTH:
            raise ValueError(f"MultiSpinMetropolis needs {WIDTH} seeds (one per replica), got {len(seeds)}")
        if lattice.dim != 2 or min(lattice.shape) < 2:
            raise ValueError(f"MultiSpinMetropolis is for 2D tori with sides >= 2, got {lattice.shape}")
        if lattice.h != 0.0 or lattice.J <= 0.0:
            raise ValueError("MultiSpinMetropolis needs h = 0 and J > 0")
        # one stream for the 64 lanes; its seed depends on every replica's seed
        entropy = [int(x) for sq in seeds for x in sq.generate_state(2, dtype=np.uint32)]
        self.rng = np.stack([new_state(sq) for sq in np.random.SeedSequence(entropy).spawn(2)])
        self.words = np.empty(lattice.shape, np.uint64)
        random_words(self.rng[0], self.words)
        self._bufs = np.zeros((4, lattice.shape[1]), np.uint64)  # row-pass scratch
        self._down = np.zeros(WIDTH, np.int64)
        self._anti = np.zeros(WIDTH, np.int64)
        self._recount()

    def _recount(self):
        measure(self.words, self._down, self._anti)
        n = self.lattice.n_sites
        self._energy = -self.lattice.J * (2 * n - 2 * self._anti) / n

    def run(self, n, energy, magnetization, every=1):
        bj = self.beta * self.lattice.J
        tm1, tm2 = digit_masks(np.exp(-4.0 * bj)), digit_masks(np.exp(-8.0 * bj))
        sweeps(self.words, tm1, tm2, self.rng, int(n), int(every), float(self.lattice.J), energy, magnetization,
               self._bufs, self._down, self._anti)
        self._recount()

    def configurations(self):
        return unpack(self.words)

    def energy(self):
        return self._energy.copy()

    def state(self):
        return {"words": self.words.copy(), "rng": self.rng.copy()}

    def load_state(self, state):
        self.words = np.ascontiguousarray(state["words"], dtype=np.uint64).reshape(self.lattice.shape).copy()
        self.rng = np.ascontiguousarray(state["rng"], dtype=np.uint64).reshape(2, 4).copy()
        self._recount()

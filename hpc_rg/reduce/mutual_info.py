"""Mutual information (bits) between neighbouring b×b blocks, their coarse-grained images, and a block and
its environment shell (seed 000 eq 1, Table 2):  I(A;B) = Σ p(a,b) log2[p(a,b) / (p(a) p(b))].

A block's state is the integer code Σ_k 2^k (s_k + 1)/2 over its b² spins (row-major), so a block has
2^{b²} states; an image under a kernel is a level index (majority: 2, average: b²+1, a real kernel w: the
finite set of distinct values w·s over the 2^{b²} block states, or `levels` equal-width bins).
Joint histograms are accumulated sparsely per sample block (streamed), then
  plug-in:         H = −Σ p log p
  Miller–Madow:    H + (K − 1) / (2N)            (K occupied bins)
  Grassberger 03:  log N − (1/N) Σ n_i G(n_i),  G(n) = ψ(n) + ½(−1)^n [ψ((n+1)/2) − ψ(n/2)]
and I = H(A) + H(B) − H(A,B).  Errors: bootstrap (or jackknife) over blocks of samples.
"""
from __future__ import annotations

import numpy as np
from scipy.special import digamma

LN2 = np.log(2.0)


# ------------------------------------------------------------------------------------------------------
# Codes and kernels
# ------------------------------------------------------------------------------------------------------

def block_codes(spins: np.ndarray, b: int, offset: tuple[int, int] = (0, 0)) -> np.ndarray:
    """(k, Ly, Lx) ±1 -> (k, Ly//b, Lx//b) int64 codes of the b×b tiling shifted by `offset`."""
    x = np.roll(spins, (-offset[0], -offset[1]), axis=(1, 2))
    k, ly, lx = x.shape
    bits = ((x[:, :ly // b * b, :lx // b * b] > 0).astype(np.int64)
            .reshape(k, ly // b, b, lx // b, b).transpose(0, 1, 3, 2, 4).reshape(k, ly // b, lx // b, b * b))
    return bits @ (np.int64(1) << np.arange(b * b, dtype=np.int64))


def all_block_states(b: int) -> np.ndarray:
    """(2^{b²}, b, b) ±1 spins of every block state, indexed by code."""
    codes = np.arange(1 << (b * b), dtype=np.int64)
    bits = (codes[:, None] >> np.arange(b * b)) & 1
    return (2 * bits - 1).reshape(-1, b, b).astype(np.int8)


def kernel_levels(kernel: str | np.ndarray, b: int, levels: int = 0, seed: int = 0) -> np.ndarray:
    """Lookup table code -> image level (int) for a kernel: "majority" (ties: seeded coin, fixed per state),
    "average", "decimation" (top-left spin) or a real (b, b) weight array (its distinct values, or `levels`
    equal-width bins of w·s when levels > 0)."""
    states = all_block_states(b).astype(np.float64)
    if isinstance(kernel, str):
        tot = states.sum(axis=(1, 2))
        if kernel == "majority":
            rng = np.random.default_rng(seed)
            tie = rng.integers(0, 2, tot.size)
            return np.where(tot > 0, 1, np.where(tot < 0, 0, tie)).astype(np.int64)
        if kernel == "average":
            return ((tot + b * b) // 2).astype(np.int64)
        if kernel == "decimation":
            return (states[:, 0, 0] > 0).astype(np.int64)
        raise ValueError(f"unknown kernel {kernel!r}")
    w = np.asarray(kernel, dtype=np.float64).reshape(b, b)
    v = (states * w).sum(axis=(1, 2))
    if levels > 0:
        edges = np.linspace(v.min(), v.max(), levels + 1)[1:-1]
        return np.digitize(v, edges).astype(np.int64)
    _, inv = np.unique(np.round(v, 10), return_inverse=True)
    return inv.astype(np.int64)


def neighbour_pairs(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All horizontally and vertically adjacent block pairs (periodic block grid) -> (a, b) flat arrays."""
    a = np.concatenate([codes.ravel(), codes.ravel()])
    b = np.concatenate([np.roll(codes, -1, axis=2).ravel(), np.roll(codes, -1, axis=1).ravel()])
    return a, b


def shell_codes(spins: np.ndarray, b: int, width: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(block code, environment code) for every b×b tile: the environment is the shell of `width` sites
    around it ((b+2w)² − b² spins; at most 31 bits for the histogram)."""
    k, ly, lx = spins.shape
    n_env = (b + 2 * width) ** 2 - b * b
    if n_env > 62:
        raise ValueError("shell too large for a 64-bit code")
    full = np.roll(spins, (width, width), axis=(1, 2))
    inner = np.zeros((b + 2 * width, b + 2 * width), bool)
    inner[width:width + b, width:width + b] = True
    env_idx = np.argwhere(~inner)
    blk_idx = np.argwhere(inner)
    ny, nx = ly // b, lx // b
    env = np.zeros((k, ny, nx), np.int64)
    blk = np.zeros((k, ny, nx), np.int64)
    for bit, (dy, dx) in enumerate(env_idx):
        rows = (np.arange(ny) * b + dy) % ly
        cols = (np.arange(nx) * b + dx) % lx
        env |= (full[:, rows][:, :, cols] > 0).astype(np.int64) << bit
    for bit, (dy, dx) in enumerate(blk_idx):
        rows = (np.arange(ny) * b + dy) % ly
        cols = (np.arange(nx) * b + dx) % lx
        blk |= (full[:, rows][:, :, cols] > 0).astype(np.int64) << bit
    return blk.ravel(), env.ravel()


# ------------------------------------------------------------------------------------------------------
# Histograms and entropies
# ------------------------------------------------------------------------------------------------------

class JointHistogram:
    """Sparse joint counts of (a, b) pairs, kept per sample block for resampling errors."""

    def __init__(self):
        self.blocks: list[tuple[np.ndarray, np.ndarray]] = []

    def add(self, a: np.ndarray, b: np.ndarray, block: int) -> None:
        if max(a.max(initial=0), b.max(initial=0)) >= (1 << 31):
            raise ValueError("block or environment codes above 31 bits (use a smaller block or shell)")
        joint = (a.astype(np.int64) << 32) | b.astype(np.int64)
        u, c = np.unique(joint, return_counts=True)
        while len(self.blocks) <= block:
            self.blocks.append((np.zeros(0, np.int64), np.zeros(0, np.int64)))
        ou, oc = self.blocks[block]
        if ou.size:
            allu = np.concatenate([ou, u])
            allc = np.concatenate([oc, c])
            u, inv = np.unique(allu, return_inverse=True)
            c = np.bincount(inv, weights=allc).astype(np.int64)
        self.blocks[block] = (u, c)

    def matrix(self) -> tuple[np.ndarray, np.ndarray]:
        """(joint keys (K,), counts (n_blocks, K))."""
        keys = np.unique(np.concatenate([u for u, _ in self.blocks])) if self.blocks else np.zeros(0, np.int64)
        m = np.zeros((len(self.blocks), keys.size))
        for i, (u, c) in enumerate(self.blocks):
            m[i, np.searchsorted(keys, u)] = c
        return keys, m


def entropy(counts: np.ndarray, method: str = "miller_madow") -> float:
    """Entropy in bits of a histogram (zeros ignored): plugin | miller_madow | grassberger."""
    n = counts[counts > 0].astype(np.float64)
    N = n.sum()
    if N == 0:
        return 0.0
    if method == "grassberger":
        odd = np.where(n % 2 == 1, -1.0, 1.0)
        G = digamma(n) + 0.5 * odd * (digamma((n + 1) / 2) - digamma(n / 2))
        return float((np.log(N) - np.sum(n * G) / N) / LN2)
    h = float(-np.sum(n / N * np.log(n / N)))
    if method == "miller_madow":
        h += (n.size - 1) / (2.0 * N)
    elif method != "plugin":
        raise ValueError(f"unknown entropy estimator {method!r}")
    return h / LN2


def mutual_information(keys: np.ndarray, counts: np.ndarray, method: str = "miller_madow") -> float:
    """I(A;B) in bits from joint keys (a << 32 | b) and their counts."""
    keep = counts > 0
    keys, counts = keys[keep], counts[keep]
    a, b = keys >> 32, keys & ((1 << 32) - 1)
    ua, ia = np.unique(a, return_inverse=True)
    ub, ib = np.unique(b, return_inverse=True)
    ca = np.bincount(ia, weights=counts)
    cb = np.bincount(ib, weights=counts)
    return entropy(ca, method) + entropy(cb, method) - entropy(counts, method)


def mi_with_error(hist: JointHistogram, method: str = "miller_madow", n_boot: int = 100, seed: int = 0) -> tuple[float, float]:
    """(I, bootstrap error) resampling whole sample blocks (seeded)."""
    keys, m = hist.matrix()
    total = m.sum(axis=0)
    value = mutual_information(keys, total, method)
    rng = np.random.default_rng(seed)
    n = m.shape[0]
    if n < 2:
        return value, float("nan")
    reps = [mutual_information(keys, np.bincount(rng.integers(0, n, n), minlength=n) @ m, method)
            for _ in range(n_boot)]
    return value, float(np.std(reps, ddof=1))


def exact_pair_mi(c: float) -> float:
    """I(s_1; s_2) in bits of two ±1 spins with ⟨s⟩ = 0 and ⟨s_1 s_2⟩ = c: p(s,s') = (1 + c s s')/4."""
    out = 0.0
    for x in (1 + c, 1 - c):
        if x > 0:
            out += x / 2 * np.log2(x)
    return float(out)

"""A b×b block-spin kernel from an RBM's first-layer filters (issue #21, the fourth rule of `coarse_rules`).

An RBM hidden unit j sees the whole lattice through its weight field W_j (L×L), but on critical Ising data the
fields come out local (Mehta & Schwab 2014, seed 001): most of a unit's weight sits on a small patch. A
block-spin rule needs one b×b kernel w used on every block as sign(w·s), so the fields are reduced to one:

1. per unit, the periodic b×b window carrying the largest share of Σ_i |W_ij| (its "window share";
   b²/N for a field spread evenly, 1 for a field inside one window);
2. units whose window share is below `min_share` are dropped (a delocalised or noise field has no block to
   offer; averaging it in would mix arbitrary patches);
3. each kept window is translated to a common origin (its top-left corner), its sign fixed so that the window
   sum is positive (the Ising Z₂: s → −s with W_j → −W_j is the same model; binary units see
   v = (s + 1)/2, so the part of v·W_j linear in s is W_j/2: the same pattern), scaled to unit Σ|w| so that
   every kept unit weighs the same, and the windows are averaged;
4. the average is returned scaled to unit Σ|w| (the rule sign(w·s) does not depend on the scale).

The hidden biases are left out: the rule is Z₂-symmetric like majority and the other kernels. Fewer than
`min_units` kept units is refused (`NotLocal`, which the reduction turns into a ConfigError): a rule from one
or two units, or from none, would be meaningless. Pure numpy, deterministic: every MPI rank computes the same
kernel from the same file.
"""
from __future__ import annotations

import numpy as np


class NotLocal(ValueError):
    """Too few hidden units have a local enough field for a block rule."""


def window_sums(a: np.ndarray, b: int) -> np.ndarray:
    """Sums of a (n, Ly, Lx) over the periodic b×b windows whose top-left corner is (y, x): (n, Ly, Lx)."""
    box = np.zeros_like(a)
    for dy in range(b):
        for dx in range(b):
            box += np.roll(a, (-dy, -dx), axis=(1, 2))
    return box


def rbm_block_kernel(weights: np.ndarray, shape: tuple[int, int], b: int, min_share: float,
                     min_units: int) -> tuple[np.ndarray, dict]:
    """(b×b kernel with Σ|w| = 1, info) from first-layer weights (n_visible, n_hidden) of an RBM on a lattice
    of `shape` (visible unit i = row-major site i). info: n_units, n_qualified, the mean window share of the
    qualified units (`mean_share`) and of all units (`mean_share_all`), the chance share b²/N, and the
    spread of the qualified windows about their mean (`spread`: RMS over units of the Σ|.| distance between a
    unit's normalised window and the kernel; 0 when all units agree). NotLocal when fewer than `min_units`
    units qualify (or their windows cancel), ValueError when the shapes disagree."""
    w = np.asarray(weights, dtype=np.float64)
    ly, lx = (int(n) for n in shape)
    if w.ndim != 2 or w.shape[0] != ly * lx:
        raise ValueError(f"first-layer weights of shape {w.shape} do not fit a {ly}×{lx} lattice "
                         f"({ly * lx} visible units)")
    if b > min(ly, lx):
        raise ValueError(f"block {b} is larger than the {ly}×{lx} lattice")
    fields = w.T.reshape(-1, ly, lx)                                  # (n_hidden, Ly, Lx)
    mass = np.abs(fields)
    total = mass.reshape(len(fields), -1).sum(1)
    box = window_sums(mass, b).reshape(len(fields), -1)
    corner = box.argmax(1)                     # first maximum in row-major order: a definite tie-break
    share = np.where(total > 0, box[np.arange(len(fields)), corner] / np.where(total > 0, total, 1.0), 0.0)
    keep = np.nonzero((share >= min_share) & (share > 0))[0]
    info = {"n_units": int(len(fields)), "n_qualified": int(len(keep)),
            "mean_share_all": float(share.mean()) if len(share) else 0.0,
            "chance_share": b * b / (ly * lx)}
    if len(keep) < max(1, min_units):
        raise NotLocal(f"only {len(keep)} of {len(fields)} hidden units carry at least {min_share:g} of their "
                         f"weight in one {b}×{b} window (mean window share {info['mean_share_all']:.3f}, "
                         f"{info['chance_share']:.4f} for a field spread evenly); at least {min_units} needed "
                         f"for a local rule")
    iy = (np.arange(b)[:, None] + (corner[keep] // lx)[:, None, None]) % ly      # (k, b, 1)
    ix = (np.arange(b)[None, :] + (corner[keep] % lx)[:, None, None]) % lx       # (k, 1, b)
    win = fields[keep[:, None, None], iy, ix]                                    # (k, b, b)
    win = win * np.where(win.sum((1, 2)) < 0, -1.0, 1.0)[:, None, None]
    win /= np.abs(win).sum((1, 2), keepdims=True)
    kernel = win.mean(0)
    if np.abs(kernel).sum() < 1e-9:     # the windows cancel (e.g. as many of one pattern as of its mirror)
        raise NotLocal(f"the {len(keep)} qualified windows cancel on average: no common {b}×{b} pattern")
    kernel /= np.abs(kernel).sum()
    info["mean_share"] = float(share[keep].mean())
    info["spread"] = float(np.sqrt((np.abs(win - kernel).sum((1, 2)) ** 2).mean()))
    return kernel, info

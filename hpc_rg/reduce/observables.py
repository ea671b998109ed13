"""Thermodynamic observables per temperature, single-histogram reweighting, and T_c from Binder crossings.

Conventions: e = energy per site, m = signed magnetization per site, N sites, β = 1/T, k_B = 1.
χ = N β (⟨m²⟩ − ⟨|m|⟩²) (the finite-lattice susceptibility of |m|), C = N β² (⟨e²⟩ − ⟨e⟩²),
U = 1 − ⟨m⁴⟩ / (3 ⟨m²⟩²) (U* = 0.61069 at the 2D Ising T_c on periodic squares).
Errors: delete-one-block jackknife over chain stretches (blocks ≫ τ_int).
"""
from __future__ import annotations

import numpy as np

from hpc_rg.reduce.blocks import segments
from hpc_rg.reduce.stats import jackknife_blocks, jackknife_error, mean_error

NAMES = ("energy", "abs_m", "m2", "susceptibility", "specific_heat", "binder")


def _moments(e: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Per-sample primaries (..., 6): e, e², |m|, m², m⁴, 1."""
    a = np.abs(m)
    return np.stack([e, e * e, a, m * m, m ** 4, np.ones_like(e)], axis=-1)


def derived(mean: np.ndarray, n_sites: int, T: float) -> np.ndarray:
    e, e2, a, m2, m4 = mean[..., 0], mean[..., 1], mean[..., 2], mean[..., 3], mean[..., 4]
    beta = 1.0 / T
    return np.stack([e, a, m2, n_sites * beta * (m2 - a * a), n_sites * beta ** 2 * (e2 - e * e),
                     1.0 - m4 / (3.0 * m2 * m2)], axis=-1)


def block_moments(e: np.ndarray, m: np.ndarray, n_blocks: int) -> np.ndarray:
    """(n_blocks, 5) means of the primaries over chain stretches; e, m are (n_chains, n_samples)."""
    segs = segments(e.shape[0], e.shape[1], n_blocks)
    return np.array([_moments(e[c, a:b], m[c, a:b]).mean(axis=0)[:5] for c, a, b in segs])


def observables(e: np.ndarray, m: np.ndarray, n_sites: int, T: float, n_blocks: int = 32) -> dict:
    """{name: (value, error)} at one temperature, plus τ_int of e and |m|."""
    blocks = block_moments(e, m, n_blocks)
    val, err = jackknife_blocks(lambda x: derived(x, n_sites, T), blocks)
    out = {k: (float(v), float(s)) for k, v, s in zip(NAMES, val, err)}
    out["tau_int_energy"] = (mean_error(e, axis_chains=True)[2], float("nan"))
    out["tau_int_abs_m"] = (mean_error(np.abs(m), axis_chains=True)[2], float("nan"))
    return out


def reweight(e: np.ndarray, m: np.ndarray, n_sites: int, T0: float, T: np.ndarray) -> np.ndarray:
    """Single-histogram (Ferrenberg–Swendsen) reweighting of samples taken at T0 to temperatures T.

    Returns the derived observables (len(T), 6) in the order of NAMES.  Valid while |T − T0| is within a
    few energy-histogram widths: log-weights −(β − β0) N e are shifted by their maximum for stability."""
    e = np.ravel(e)
    m = np.ravel(m)
    prim = _moments(e, m)[:, :5]
    out = []
    for t in np.atleast_1d(T):
        logw = -(1.0 / t - 1.0 / T0) * n_sites * e
        w = np.exp(logw - logw.max())
        out.append(derived((w[:, None] * prim).sum(axis=0) / w.sum(), n_sites, t))
    return np.array(out)


def reweighted_curve(ladder: np.ndarray, e: np.ndarray, m: np.ndarray, n_sites: int, grid: np.ndarray,
                     mask=None) -> np.ndarray:
    """Observables on a temperature grid, each grid point reweighted from the nearest ladder temperature.

    e, m: (n_T, n_chains, n_samples); mask: optional boolean (n_chains, n_samples) of samples to keep
    (the jackknife deletes a block this way)."""
    out = np.empty((grid.size, len(NAMES)))
    nearest = np.argmin(np.abs(grid[:, None] - ladder[None, :]), axis=1)
    for k in np.unique(nearest):
        sel = nearest == k
        ek, mk = e[k], m[k]
        if mask is not None:
            ek, mk = ek[mask], mk[mask]
        out[sel] = reweight(ek, mk, n_sites, float(ladder[k]), grid[sel])
    return out


def crossing(grid: np.ndarray, y: np.ndarray) -> float:
    """First zero of y(grid) by linear interpolation (nan if y keeps its sign)."""
    s = np.sign(y)
    idx = np.nonzero(s[:-1] * s[1:] <= 0)[0]
    if idx.size == 0:
        return float("nan")
    i = int(idx[0])
    if y[i + 1] == y[i]:
        return float(grid[i])
    return float(grid[i] - y[i] * (grid[i + 1] - grid[i]) / (y[i + 1] - y[i]))


def binder_crossing(small: dict, large: dict, grid: np.ndarray, n_blocks: int = 16,
                    reweighting: bool = True) -> tuple[float, float, float, float]:
    """T_c (and U at the crossing) where U_L(T) = U_L'(T) for two lattice sizes.

    `small`, `large`: dicts with temperatures, e, m (n_T, n_chains, n_samples), n_sites.  The two
    ensembles are independent, so the jackknife variance is the sum of the parts from deleting blocks of
    each.  Without reweighting U(T) is linearly interpolated between ladder points.
    Returns (T_c, error, U_cross, error)."""
    def curve(d, mask=None):
        if reweighting:
            return reweighted_curve(d["temperatures"], d["e"], d["m"], d["n_sites"], grid, mask)[:, 5]
        e, m = d["e"], d["m"]
        if mask is not None:
            e, m = e[:, mask], m[:, mask]
        u = np.array([derived(_moments(e[k], m[k]).reshape(-1, 6).mean(axis=0)[:5], d["n_sites"], T)[5]
                      for k, T in enumerate(d["temperatures"])])
        return np.interp(grid, d["temperatures"], u)

    def estimate(ua, ub):
        tc = crossing(grid, ua - ub)
        return tc, float(np.interp(tc, grid, ua)) if np.isfinite(tc) else float("nan")

    ua, ub = curve(small), curve(large)
    tc, uc = estimate(ua, ub)
    var_t = var_u = 0.0
    for which, d in (("a", small), ("b", large)):
        n_c, n_s = d["e"].shape[1:]
        loo = []
        for c, a, b in segments(n_c, n_s, n_blocks):
            mask = np.ones((n_c, n_s), bool)
            mask[c, a:b] = False
            u = curve(d, mask)
            loo.append(estimate(u, ub) if which == "a" else estimate(ua, u))
        err = jackknife_error(np.array(loo))
        var_t += err[0] ** 2
        var_u += err[1] ** 2
    return tc, float(np.sqrt(var_t)), uc, float(np.sqrt(var_u))

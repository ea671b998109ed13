"""Error bars that respect autocorrelation: Γ-method τ_int with automatic windowing, binning, jackknife.

Convention: τ_int = 1/2 + Σ_{t≥1} ρ(t), so the variance of the mean of N correlated samples is
σ²·2τ_int/N (τ_int = 1/2 for independent data).  The window W is Sokal's: the smallest W with
W ≥ c·τ_int(W), c = 6 by default (as emcee's `integrated_time` and Wolff's Γ-method use).
"""
from __future__ import annotations

import numpy as np


def autocorrelation(x: np.ndarray) -> np.ndarray:
    """Normalised autocorrelation function ρ(t) of a 1D series (FFT, zero-padded, O(N log N))."""
    x = np.asarray(x, dtype=np.float64)
    n = x.size
    d = x - x.mean()
    size = 1 << (2 * n - 1).bit_length()
    f = np.fft.rfft(d, size)
    acf = np.fft.irfft(f * np.conj(f), size)[:n]
    if acf[0] == 0:
        out = np.zeros(n)
        out[0] = 1.0
        return out
    return acf / acf[0]


def integrated_time(x: np.ndarray, c: float = 6.0) -> tuple[float, int]:
    """(τ_int, window) of a 1D series; τ_int = 1/2 for uncorrelated data."""
    x = np.asarray(x, dtype=np.float64)
    if x.size < 2:
        return 0.5, 0
    rho = autocorrelation(x)
    taus = 0.5 + np.cumsum(rho[1:])
    windows = np.arange(1, x.size)
    ok = windows >= c * taus
    w = int(np.argmax(ok)) if ok.any() else x.size - 2
    return float(max(taus[w], 0.5)), int(windows[w])


def mean_error(x: np.ndarray, axis_chains: bool = False) -> tuple[float, float, float]:
    """(mean, standard error, τ_int) of a time series.

    With `axis_chains`, `x` is (n_chains, n_time): independent chains of one process; τ_int is estimated from
    the chain-averaged autocorrelation and the error combines all chains.
    """
    x = np.asarray(x, dtype=np.float64)
    if not axis_chains:
        x = x[None, :]
    n_chains, n = x.shape
    mean = float(x.mean())
    var = float(x.var(ddof=0))
    if n < 2:
        err = float(np.sqrt(x.var(ddof=1) / n_chains)) if n_chains > 1 else float("nan")
        return mean, err, 0.5
    rho = np.mean([autocorrelation(row) * row.var() for row in x], axis=0)
    rho = rho / rho[0] if rho[0] > 0 else rho
    taus = 0.5 + np.cumsum(rho[1:])
    windows = np.arange(1, n)
    ok = windows >= 6.0 * taus
    w = int(np.argmax(ok)) if ok.any() else n - 2
    tau = float(max(taus[w], 0.5))
    err = float(np.sqrt(var * 2.0 * tau / (n * n_chains)))
    return mean, err, tau


# emcee's rule (emcee.autocorr.integrated_time, tol = 50): a chain shorter than 50 autocorrelation times
# gives an unreliable τ, and so unreliable error bars. emcee's τ is 1 + 2Σρ(t), twice this module's τ_int.
TAU_TOL = 50


def min_samples(tau_int) -> np.ndarray:
    """Samples per chain that emcee's rule asks for: 50 τ in emcee's convention = 100 τ_int here."""
    return TAU_TOL * 2.0 * np.asarray(tau_int, dtype=np.float64)


def chains_too_short(n_samples: int, tau_int) -> np.ndarray:
    """True where a chain of `n_samples` holds fewer than 50 τ (emcee's rule) for this τ_int."""
    return np.asarray(n_samples) < min_samples(tau_int)


def tau_int_warning(n_samples: int, tau_int, temperatures, what: str = "E", unit: str = "samples") -> str:
    """'' when every chain holds at least 50 τ, else one sentence for logs and reports: where, how short,
    and how many samples would do. `tau_int` and `temperatures` are per temperature."""
    tau = np.atleast_1d(np.asarray(tau_int, dtype=np.float64))
    short = chains_too_short(n_samples, tau)
    if not short.any():
        return ""
    temps = np.atleast_1d(np.asarray(temperatures, dtype=np.float64))[short]
    shown = ", ".join(f"{T:.6g}" for T in temps[:6]) + (", ..." if len(temps) > 6 else "")
    need = int(np.ceil(min_samples(tau[short].max())))
    return (f"chains of {int(n_samples)} {unit} hold fewer than {TAU_TOL} autocorrelation times (emcee's rule) "
            f"at T = {shown}: tau_int({what}) up to {tau[short].max():.3g} asks for at least {need} {unit} per "
            f"chain; tau_int and the error bars there are unreliable (run longer)")


def binning_error(x: np.ndarray, n_bins: int | None = None) -> tuple[float, float]:
    """(mean, error) from non-overlapping bins (default ~ 10 + N^(1/3) bins, as Carlo.jl does)."""
    x = np.asarray(x, dtype=np.float64)
    if n_bins is None:
        n_bins = int(10 + round(x.size ** (1 / 3)))
    n_bins = max(2, min(n_bins, x.size))
    size = x.size // n_bins
    bins = x[: n_bins * size].reshape(n_bins, size).mean(axis=1)
    return float(x.mean()), float(bins.std(ddof=1) / np.sqrt(n_bins))


def jackknife(f, *series: np.ndarray, n_blocks: int = 32) -> tuple[float, float]:
    """(value, error) of a derived quantity f(mean(a), mean(b), ...) by blocked jackknife.

    Each series is 1D (same length); blocks longer than the autocorrelation time make the error honest.
    `f` receives the block-deleted means of each series."""
    arrays = [np.asarray(s, dtype=np.float64) for s in series]
    n = arrays[0].size
    n_blocks = max(2, min(n_blocks, n))
    size = n // n_blocks
    blocks = [a[: n_blocks * size].reshape(n_blocks, size).sum(axis=1) for a in arrays]
    totals = [b.sum() for b in blocks]
    full = f(*[t / (n_blocks * size) for t in totals])
    loo = np.array([f(*[(t - b[i]) / ((n_blocks - 1) * size) for t, b in zip(totals, blocks)])
                    for i in range(n_blocks)])
    err = np.sqrt((n_blocks - 1) / n_blocks * np.sum((loo - loo.mean()) ** 2))
    return float(full), float(err)


def jackknife_blocks(f, block_means: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(value, error) of f(mean) from per-block means (n_blocks, ...), by delete-one-block jackknife.

    `f` maps a mean array (same trailing shape as the blocks) to a scalar or array; `weights` are the number
    of samples in each block (default equal).  Blocks should be longer than τ_int (e.g. whole stretches of
    a chain) so the error is honest for autocorrelated data."""
    m = np.asarray(block_means, dtype=np.float64)
    n = m.shape[0]
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    shape = (n,) + (1,) * (m.ndim - 1)
    total = (m * w.reshape(shape)).sum(axis=0)
    full = np.asarray(f(total / w.sum()), dtype=np.float64)
    if n < 2:
        return full, np.full_like(full, np.nan)
    loo = np.array([np.asarray(f((total - m[i] * w[i]) / (w.sum() - w[i])), dtype=np.float64) for i in range(n)])
    err = np.sqrt((n - 1) / n * np.sum((loo - loo.mean(axis=0)) ** 2, axis=0))
    return full, err


def jackknife_replicas(f, block_means: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(f(full mean), leave-one-block-out values (n_blocks, ...)) for combining independent data sets:
    the jackknife variance of a function of several ensembles is the sum of each ensemble's part."""
    m = np.asarray(block_means, dtype=np.float64)
    n = m.shape[0]
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    shape = (n,) + (1,) * (m.ndim - 1)
    total = (m * w.reshape(shape)).sum(axis=0)
    full = f(total / w.sum())
    loo = [f((total - m[i] * w[i]) / (w.sum() - w[i])) for i in range(n)]
    return full, loo


def jackknife_error(loo) -> np.ndarray:
    """Error from leave-one-out values (n, ...)."""
    loo = np.asarray(loo, dtype=np.float64)
    n = loo.shape[0]
    return np.sqrt((n - 1) / n * np.sum((loo - loo.mean(axis=0)) ** 2, axis=0))


def bootstrap(f, block_means: np.ndarray, n_boot: int = 200, seed: int = 0,
              weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(f(mean), bootstrap standard error) resampling whole blocks with replacement (seeded)."""
    m = np.asarray(block_means, dtype=np.float64)
    n = m.shape[0]
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    rng = np.random.default_rng(seed)
    shape = (n,) + (1,) * (m.ndim - 1)
    full = np.asarray(f((m * w.reshape(shape)).sum(axis=0) / w.sum()), dtype=np.float64)
    reps = []
    for _ in range(n_boot):
        k = np.bincount(rng.integers(0, n, n), minlength=n) * w
        reps.append(np.asarray(f((m * k.reshape(shape)).sum(axis=0) / k.sum()), dtype=np.float64))
    return full, np.std(np.array(reps), axis=0, ddof=1)


def ar1_tau_int(phi: float) -> float:
    """Exact τ_int of an AR(1) process x_t = φ x_{t-1} + noise: (1 + φ) / (2 (1 − φ))."""
    return (1.0 + phi) / (2.0 * (1.0 - phi))

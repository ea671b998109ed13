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

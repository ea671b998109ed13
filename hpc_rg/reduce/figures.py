"""PNG figures of the built-in reductions (matplotlib, Agg backend; imported lazily by the stage on rank 0).

Each `plot_<name>(result, folder) -> list[Path]` draws from a Result's values/axes only."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    _plt().close(fig)
    return path


def plot_observables(res, folder):
    plt = _plt()
    qs = ("energy", "abs_m", "susceptibility", "specific_heat", "binder")
    fig, axes = plt.subplots(1, len(qs), figsize=(4 * len(qs), 3.2))
    for ax, q in zip(axes, qs):
        for key in sorted(k for k in res.values if k == q or k.startswith(q + "_L")):
            sfx = key[len(q):]
            v, e = res.values[key]
            ax.errorbar(res.axes["temperatures" + sfx], v, e, marker="o", ms=3, label=sfx.strip("_") or None)
        ax.set_xlabel("T")
        ax.set_title(q)
    axes[-1].legend() if len(res.axes.get("L", [])) > 1 else None
    return [_save(fig, folder, "observables")]


def plot_binder(res, folder):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4))
    for k in sorted(k for k in res.axes if k.startswith("U_L")):
        ax.plot(res.axes["grid"], res.axes[k], label=k[2:])
    tc, te = res.values["T_c"]
    for t, e in zip(np.atleast_1d(tc), np.atleast_1d(te)):
        ax.axvspan(t - e, t + e, alpha=0.2, color="grey")
    ax.set_xlabel("T")
    ax.set_ylabel("U")
    ax.legend()
    return [_save(fig, folder, "binder_crossing")]


def plot_correlators(res, folder):
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    r = res.axes["r"]
    for ax, q in zip(axes, ("G_s", "G_eps")):
        v, e = res.values[q]
        for i, T in enumerate(res.axes["temperatures"]):
            ax.errorbar(r[1:], v[i, 1:], e[i, 1:], ms=2, marker="o", lw=0.8, label=f"T={T:.4g}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("r")
        ax.set_title(q)
    axes[0].legend(fontsize=6)
    return [_save(fig, folder, "correlators")]


def plot_scaling(res, folder):
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    T = res.axes["temperatures"]
    for ax, q in zip(axes, ("delta_s", "delta_eps")):
        for key in (f"{q}_plain", f"{q}_chord", f"{q}_fss_m2" if q == "delta_s" else f"{q}_fss_G"):
            if key in res.values:
                v, e = res.values[key]
                ax.errorbar(T, v, e, marker="o", ms=3, label=key)
        ax.set_xlabel("T")
        ax.set_title(q)
        ax.legend(fontsize=7)
    return [_save(fig, folder, "scaling_dimensions")]


def plot_mi(res, folder):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4))
    for k, (v, e) in res.values.items():
        ax.errorbar(res.axes["temperatures"], v, e, marker="o", ms=3, label=k)
    ax.set_xlabel("T")
    ax.set_ylabel("I (bits)")
    ax.legend(fontsize=7)
    return [_save(fig, folder, "mutual_information")]


def plot_block_rg(res, folder):
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for ax, q in zip(axes, ("abs_m", "nn", "binder")):
        v, e = res.values[q]
        for i, T in enumerate(res.axes["temperatures"]):
            ax.errorbar(res.axes["level"], v[i], e[i], marker="o", ms=3, label=f"T={T:.4g}")
        ax.set_xlabel("level")
        ax.set_title(q)
    axes[0].legend(fontsize=6)
    return [_save(fig, folder, "block_rg")]


def plot_mcrg(res, folder):
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, q, exact in zip(axes, ("y_t", "y_h"), (1.0, 15 / 8)):
        v, e = res.values[q]
        for i, T in enumerate(res.axes["temperatures"]):
            ax.errorbar(res.axes["level_from"], v[i], e[i], marker="o", ms=3, label=f"T={T:.4g}")
        ax.axhline(exact, color="grey", ls="--", lw=0.8)
        ax.set_xlabel("level n (n → n+1)")
        ax.set_title(q)
    axes[0].legend(fontsize=6)
    return [_save(fig, folder, "mcrg")]


def plot_decimation(res, folder):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4))
    v, e = res.values["K"]
    x = res.values["K_exact"][0]
    for i, T in enumerate(res.axes["temperatures"]):
        ax.errorbar(res.axes["step"], v[i], e[i], marker="o", ms=3, label=f"T={T:.4g}")
        ax.plot(res.axes["step"], x[i], "k--", lw=0.8)
    ax.set_xlabel("decimation step")
    ax.set_ylabel("K")
    ax.legend(fontsize=6)
    return [_save(fig, folder, "decimation_1d")]

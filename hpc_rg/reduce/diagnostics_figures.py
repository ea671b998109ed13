"""PNG figures of the deep-learning diagnostics (matplotlib Agg, imported lazily; rank 0 only).

Each `plot_<name>(result, folder) -> list[Path]` draws from the Result's values and axes only."""
from __future__ import annotations

import numpy as np

from hpc_rg.reduce.figures import _plt, _save


def _grid(n):
    c = int(np.ceil(np.sqrt(n)))
    return int(np.ceil(n / c)), c


def _images(plt, stack, title, folder, name):
    n = len(stack)
    rows, cols = _grid(n)
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.6 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, img in zip(axes.ravel(), stack):
        img = np.asarray(img)
        img = img.reshape(1, -1) if img.ndim == 1 else img
        lim = float(np.abs(img).max()) or 1.0
        ax.imshow(img, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
    fig.suptitle(title)
    return _save(fig, folder, name)


def plot_receptive_fields(res, folder):
    plt = _plt()
    paths = []
    layers = res.axes["layer"]
    for l in layers:
        paths.append(_images(plt, res.values[f"fields_layer{l}"][0], f"receptive fields, layer {l}", folder,
                             f"receptive_fields_layer{l}"))
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    bins = int(res.attrs.get("bins", 20))
    for l, b in zip(layers, res.axes["window"]):
        axes[0].hist(res.values[f"radius_layer{l}"][0], bins=bins, histtype="step", label=f"layer {l}")
        axes[1].hist(res.values[f"window_fraction_layer{l}"][0], bins=bins, range=(0, 1), histtype="step",
                     label=f"layer {l} (b={b})")
    axes[0].axvline(float(res.values["uniform_radius"][0]), color="grey", ls="--", lw=0.8)
    axes[0].set_xlabel("radius of gyration R_g")
    axes[1].set_xlabel("fraction of |r| in the best b×b window")
    for q, lab in (("radius_mean", "mean R_g"), ("window_fraction_mean", "mean window fraction")):
        v, e = res.values[q]
        axes[2].errorbar(layers, v, e, marker="o", label=lab)
    axes[2].plot(layers, res.values["uniform_window_fraction"][0], "k--", lw=0.8, label="uniform b²/N")
    axes[2].set_xlabel("layer")
    for ax in axes:
        ax.legend(fontsize=7)
    paths.append(_save(fig, folder, "receptive_fields_locality"))
    return paths


def plot_reconstructions(res, folder):
    plt = _plt()
    paths = []
    T = res.axes["temperatures"]
    depth = res.axes["depth"]
    for i in range(len(T)):
        ex = res.values[f"examples_T{i}"][0]   # (samples, 1 + depths, *shape)
        n, m = ex.shape[:2]
        fig, axes = plt.subplots(n, m, figsize=(1.8 * m, 1.8 * n), squeeze=False)
        for r in range(n):
            for c in range(m):
                img = ex[r, c].reshape(1, -1) if ex[r, c].ndim == 1 else ex[r, c]
                axes[r, c].imshow(img, cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
                axes[r, c].axis("off")
                if r == 0:
                    axes[r, c].set_title("data" if c == 0 else f"depth {depth[c - 1]}", fontsize=8)
        fig.suptitle(f"T = {T[i]:.4g}")
        paths.append(_save(fig, folder, f"reconstructions_T{i}"))
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, q in zip(axes, ("mse", "mismatch")):
        v, e = res.values[q]
        for i, t in enumerate(T):
            ax.errorbar(depth, v[i], e[i], marker="o", label=f"T={t:.4g}")
        ax.set_xlabel("depth (layers up and down)")
        ax.set_title(q)
        ax.legend(fontsize=7)
    paths.append(_save(fig, folder, "reconstruction_error"))
    return paths


def plot_rbm_flow(res, folder):
    plt = _plt()
    T = res.axes["temperatures"]
    n = res.axes["length"]
    thermo = "T_thermo" in res.values
    fig, axes = plt.subplots(1, 3 if thermo else 2, figsize=(13 if thermo else 9, 3.6))
    for ax, q, lab in zip(axes, ("delta_s", "delta_eps"), ("Δ_s", "Δ_ε")):
        v, e = res.values[q]
        for i, t in enumerate(T):
            ax.errorbar(n, v[i], e[i], marker="o", ms=3, label=f"start T={t:.4g}")
        ax.set_xlabel("flow length")
        ax.set_ylabel(lab)
        ax.legend(fontsize=7)
    if thermo:
        v, e = res.values["T_thermo"]
        for i, t in enumerate(T):
            axes[2].errorbar(n, v[i], e[i], marker="o", ms=3, label=f"start T={t:.4g}")
        axes[2].set_xlabel("flow length")
        axes[2].set_ylabel("thermometer T")
    paths = [_save(fig, folder, "rbm_flow")]
    if thermo:
        Tk = res.axes["thermometer_temperatures"]
        p = res.values["p_thermo"][0]
        fig, axes = plt.subplots(1, len(T), figsize=(4.5 * len(T), 3.4), squeeze=False)
        for i, t in enumerate(T):
            for j, nl in enumerate(n):
                axes[0, i].plot(Tk, p[i, j], marker=".", label=f"n={nl}")
            axes[0, i].set_title(f"flows from T={t:.4g}")
            axes[0, i].set_xlabel("T")
            axes[0, i].set_ylabel("average probability")
        axes[0, -1].legend(fontsize=6)
        paths.append(_save(fig, folder, "rbm_flow_temperature"))
    return paths


def plot_thermometer_calibration(res, folder):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.5, 4))
    T = res.axes["temperatures"]
    v, e = res.values["T_mean"]
    ax.errorbar(T, v, e, marker="o", ls="none", label="⟨T̂⟩")
    ax.plot([T.min(), T.max()], [T.min(), T.max()], "k--", lw=0.8)
    ax.set_xlabel("true T")
    ax.set_ylabel("thermometer T")
    return [_save(fig, folder, "thermometer_calibration")]


def plot_vh_correlators(res, folder):
    plt = _plt()
    paths = []
    names = [k[4:] for k in res.values if k.startswith("map_")]
    for name in names:
        maps = res.values[f"map_{name}"][0]     # (n_T, units, Ly, Lx)
        paths.append(_images(plt, maps[0], f"<v h> {name}, T={res.axes['temperatures'][0]:.4g}", folder,
                             f"vh_{name}"))
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, q in zip(axes, ("radius", "window_fraction")):
        for pre, x, lab in (("rg", res.axes["rg_step"], "RG step"), ("rbm", res.axes["layer"], "RBM layer")):
            if f"{pre}_{q}" in res.values:
                v, e = res.values[f"{pre}_{q}"]
                for i, t in enumerate(res.axes["temperatures"]):
                    ax.errorbar(x, v[i], e[i], marker="o", label=f"{lab}, T={t:.4g}")
        ax.set_xlabel("level")
        ax.set_title(q)
        ax.legend(fontsize=7)
    paths.append(_save(fig, folder, "vh_locality"))
    if "rg_p_thermo" in res.values:
        Tk = res.axes["thermometer_temperatures"]
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
        p = res.values["rg_p_thermo"][0][0]
        for j in range(len(p)):
            axes[0].plot(Tk, p[j], marker=".", label=f"RG step {j}")
        if "rbm_p_thermo" in res.values:
            for j, l in enumerate(res.axes["thermo_layer"]):
                axes[1].plot(Tk, res.values["rbm_p_thermo"][0][0][j], marker=".", label=f"layer {l}")
        for ax, title in zip(axes, ("block-spin RG", "stacked RBM")):
            ax.set_title(title)
            ax.set_xlabel("T")
            ax.set_ylabel("average probability")
            ax.legend(fontsize=7)
        paths.append(_save(fig, folder, "vh_temperature"))
    return paths


def plot_learned_coarse_graining(res, folder):
    plt = _plt()
    models = list(res.axes["model"])
    models = [m.decode() if isinstance(m, bytes) else str(m) for m in models]
    bins = int(res.attrs.get("bins", 20))
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for m in models:
        acc = res.values[f"accuracy_{m}"][0]
        axes[0].hist(acc[np.isfinite(acc)], bins=bins, histtype="step", label=m)
        k = res.values[f"kernels_{m}"][0]
        axes[1].hist(k.ravel(), bins=bins, histtype="step", label=m)
    axes[0].set_xlabel("test accuracy")
    axes[1].set_xlabel("kernel weight (sign-aligned)")
    axes[1].axvline(1 / 8, color="r", lw=0.8)
    mis = [k for k in res.values if k.startswith("I_")]
    for j, k in enumerate(mis):
        v, e = res.values[k]
        axes[2].errorbar(res.axes["temperatures"] + 0.002 * j, v, e, marker="o", ls="none", label=k[2:])
    axes[2].set_ylabel("I (bits)")
    axes[2].set_xlabel("T")
    for ax in axes:
        ax.legend(fontsize=6)
    paths = [_save(fig, folder, "learned_coarse_graining")]
    stack = [res.values[f"kernel_mean_{m}"][0][c] for m in models for c in range(len(res.values[f"kernel_mean_{m}"][0]))]
    paths.append(_images(plt, stack, "mean kernels (" + ", ".join(models) + ")", folder, "learned_kernels"))
    ys = [k for k in res.values if k.startswith(("y_t_", "y_h_"))]
    if ys:
        fig, ax = plt.subplots(figsize=(5, 4))
        for k in ys:
            v, e = res.values[k]
            ax.errorbar(np.arange(v.shape[-1]) + 0.05 * ys.index(k), v[0], e[0], marker="o", label=k)
        ax.axhline(1.0, color="grey", ls="--", lw=0.8)
        ax.axhline(15 / 8, color="grey", ls="--", lw=0.8)
        ax.set_xlabel("level n (n → n+1)")
        ax.legend(fontsize=6)
        paths.append(_save(fig, folder, "learned_kernel_mcrg"))
    return paths


def plot_decimation_network(res, folder):
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    x = res.axes["layer"]
    for i, T in enumerate(res.axes["temperatures"]):
        v, e = res.values["K_network"]
        axes[0].errorbar(x, v[i], e[i], marker="o", ls="none", label=f"network, T={T:.4g}")
        axes[0].plot(x, res.values["K_exact"][0][i], "k--", lw=0.8)
    axes[0].set_xlabel("layer n")
    axes[0].set_ylabel("K_n")
    axes[0].legend(fontsize=7)
    K = np.linspace(0.01, 3.5, 200)
    axes[1].plot(K, np.arctanh(np.tanh(K) ** 2), label="K' (tanh K' = tanh² K)")
    axes[1].plot(K, K, "k:", lw=0.8)
    for row in res.values["flow_K"][0]:
        axes[1].plot(row[:-1], row[1:], marker="o", ms=3, lw=0.6)
    axes[1].set_xlabel("K_n")
    axes[1].set_ylabel("K_{n+1}")
    axes[1].legend(fontsize=7)
    return [_save(fig, folder, "decimation_network")]

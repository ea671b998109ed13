"""Figures of the reductions that read trained models, drawn from a Result's values and axes only; each is
the FIGURE of its reduction's spec. Calling convention: `hpc_rg.reduce.figures` (a stack of images is one
panel, tiled by `figures.mosaic`)."""
from __future__ import annotations

import numpy as np

from hpc_rg.reduce.figures import (Figure, Panel, T_label, colour_map, figure_function, gallery, labels, legend,
                                   mosaic, value)
from hpc_rg.reduce.labels import axis_label, label

@figure_function
def plot_receptive_fields(res) -> list[Figure]:
    """Locality of the learned filters (R_g and window-fraction histograms, their means per layer), then
    each layer's filters."""
    layers = list(np.asarray(res.axes["layer"]).tolist())
    bins = int(res.attrs.get("bins", 20))

    def radius(ax):
        for l in layers:
            ax.hist(value(res, f"radius_layer{l}")[0], bins=bins, histtype="step", label=f"layer {l}")
        ax.axvline(float(np.ravel(value(res, "uniform_radius")[0])[0]), color="grey", ls="--", lw=0.8, label="uniform weights")
        ax.set_xlabel(axis_label("radius"))
        ax.set_ylabel("number of filters (count)")
        ax.set_title("radius of gyration of the filters")
        legend(ax)

    def window(ax):
        for l, b in zip(layers, res.axes["window"]):
            ax.hist(value(res, f"window_fraction_layer{l}")[0], bins=bins, range=(0, 1), histtype="step",
                    label=f"layer {l} (b = {b})")
        ax.set_xlabel(axis_label("window_fraction"))
        ax.set_ylabel("number of filters (count)")
        ax.set_title("weight inside the best b×b window")
        legend(ax)

    def means(ax):
        for q in ("radius_mean", "window_fraction_mean"):
            v, e = value(res, q)
            ax.errorbar(layers, v, e, marker="o", label=label(q).long_name)
        ax.plot(layers, value(res, "uniform_window_fraction")[0], "k--", lw=0.8, label="uniform b²/N")
        ax.set_xlabel(axis_label("layer"))
        ax.set_ylabel("R_g (lattice spacings) or f_b (dimensionless)")
        ax.set_title("locality vs layer")
        legend(ax)

    hists = tuple(f"{q}_layer{l}" for l in layers for q in ("radius", "window_fraction"))
    figs = [Figure("receptive_fields_locality",
                   [Panel("radius", radius, hists), Panel("window_fraction", window, hists),
                    Panel("locality", means, ("radius_mean", "window_fraction_mean", "uniform_window_fraction"))])]
    for l in layers:
        figs.append(Figure(f"receptive_fields_layer{l}",
                           [gallery(f"fields_layer{l}", value(res, f"fields_layer{l}")[0],
                                     f"receptive fields, layer {l}",
                                     f"fields_layer{l}")], (6, 6), 1))
    return figs


@figure_function
def plot_reconstructions(res) -> list[Figure]:
    """Reconstruction error against depth, then examples per temperature (data, then each depth)."""
    T = res.axes["temperatures"]
    depth = list(np.asarray(res.axes["depth"]).tolist())

    def err(q):
        def d(ax):
            v, e = value(res, q)
            for i, t in enumerate(T):
                ax.errorbar(depth, v[i], None if e is None else e[i], marker="o", label=T_label(t))
            labels(ax, "depth", q, f"{label(q).long_name} vs depth")
            legend(ax)
        return Panel(q, d, (q,))

    def examples(i):
        ex = value(res, f"examples_T{i}")[0]           # (samples, 1 + depths, *shape)

        def d(ax):
            n, m = ex.shape[:2]
            im = ax.imshow(mosaic([ex[r, c] for r in range(n) for c in range(m)], cols=m, normalise=False),
                           cmap=colour_map("gray", "#e0b040"), vmin=-1, vmax=1, interpolation="nearest")
            ax.figure.colorbar(im, ax=ax, shrink=0.7, label="spin, or its mean-field value (dimensionless)")
            w = ex.shape[-1]
            ax.set_xticks([c * (w + 1) + (w - 1) / 2 for c in range(m)],
                          ["data"] + [f"depth {x}" for x in depth], fontsize=7)
            ax.set_yticks([])
            ax.set_title(f"samples and reconstructions, {T_label(T[i])}", fontsize=9)
        return Panel(f"examples_T{i}", d, (f"examples_T{i}",))

    figs = [Figure("reconstruction_error", [err(q) for q in ("mse", "mismatch")], (4.8, 3.6))]
    figs += [Figure(f"reconstructions_T{i}", [examples(i)], (7, 5), 1)
             for i in range(len(T)) if f"examples_T{i}" in res.values]
    return figs


@figure_function
def plot_rbm_flow(res) -> list[Figure]:
    """Δ_s, Δ_ε (and the thermometer's T) along the RBM flow; the thermometer's class probabilities."""
    T = res.axes["temperatures"]
    n = res.axes["length"]
    thermo = "T_thermo" in res.values

    def flow(q):
        def d(ax):
            v, e = value(res, q)
            for i, t in enumerate(T):
                ax.errorbar(n, v[i], None if e is None else e[i], marker="o", ms=3, label=f"start {T_label(t)}")
            labels(ax, "length", q)
            legend(ax)
        return Panel(q, d, (q,))

    figs = [Figure("rbm_flow", [flow(q) for q in ("delta_s", "delta_eps") + (("T_thermo",) if thermo else ())],
                   (4.4, 3.6))]
    if thermo:
        Tk = res.axes["thermometer_temperatures"]
        p = value(res, "p_thermo")[0]

        def probs(i):
            def d(ax):
                for j, nl in enumerate(n):
                    ax.plot(Tk, p[i, j], marker=".", label=f"flow length {nl}")
                labels(ax, "thermometer_temperatures", "p_thermo", f"flows from {T_label(T[i])}")
                legend(ax, fontsize=6)
            return Panel(f"p_thermo_T{i}", d, ("p_thermo",))
        figs.append(Figure("rbm_flow_temperature", [probs(i) for i in range(len(T))], (4.5, 3.4), 4))
    return figs


@figure_function
def plot_thermometer_calibration(res) -> list[Figure]:
    """The thermometer's mean reading against the true temperature."""
    def d(ax):
        T = np.asarray(res.axes["temperatures"])
        v, e = value(res, "T_mean")
        ax.errorbar(T, v, e, marker="o", ls="none", label="⟨T̂⟩ ± error")
        ax.plot([T.min(), T.max()], [T.min(), T.max()], "k--", lw=0.8, label="T̂ = T")
        ax.set_xlabel("true " + axis_label("temperatures"))
        ax.set_ylabel(axis_label("T_mean"))
        ax.set_title("thermometer calibration: ⟨T̂⟩ vs T")
        legend(ax)
    return [Figure("thermometer_calibration", [Panel("T_mean", d, ("T_mean",))], (4.8, 4.2))]


@figure_function
def plot_vh_correlators(res) -> list[Figure]:
    """Locality of ⟨v h⟩ for block-spin RG steps and RBM layers; the thermometer on each level; the maps."""
    def loc(q):
        keys = [f"{pre}_{q}" for pre in ("rg", "rbm") if f"{pre}_{q}" in res.values]

        def d(ax):
            for pre, x, lab in (("rg", res.axes["rg_step"], "RG step"), ("rbm", res.axes["layer"], "RBM layer")):
                if f"{pre}_{q}" in res.values:
                    v, e = value(res, f"{pre}_{q}")
                    for i, t in enumerate(res.axes["temperatures"]):
                        ax.errorbar(x, v[i], None if e is None else e[i], marker="o", label=f"{lab}, {T_label(t)}")
            ax.set_xlabel("level (RG step or RBM layer) (dimensionless)")
            ax.set_ylabel(axis_label(q))
            ax.set_title(f"{label(q).long_name} vs level")
            legend(ax)
        return Panel(q, d, tuple(keys))

    figs = [Figure("vh_locality", [loc(q) for q in ("radius", "window_fraction")], (4.8, 3.6))]
    if "rg_p_thermo" in res.values:
        Tk = res.axes["thermometer_temperatures"]

        def rg(ax):
            p = value(res, "rg_p_thermo")[0][0]
            for j in range(len(p)):
                ax.plot(Tk, p[j], marker=".", label=f"RG step {j}")
            labels(ax, "thermometer_temperatures", "p_thermo", "thermometer on block-spin RG levels")
            legend(ax)

        def rbm(ax):
            if "rbm_p_thermo" in res.values:
                for j, l in enumerate(res.axes["thermo_layer"]):
                    ax.plot(Tk, value(res, "rbm_p_thermo")[0][0][j], marker=".", label=f"layer {l}")
            labels(ax, "thermometer_temperatures", "p_thermo", "thermometer on stacked RBM layers")
            legend(ax)
        figs.append(Figure("vh_temperature", [Panel("rg_p_thermo", rg, ("rg_p_thermo", "rg_T_thermo")),
                                              Panel("rbm_p_thermo", rbm, ("rbm_p_thermo", "rbm_T_thermo"))],
                           (4.8, 3.6)))
    T0 = res.axes["temperatures"][0]
    for k in res.values:
        if k.startswith("map_"):
            name = k[4:]
            figs.append(Figure(f"vh_{name}", [gallery(k, value(res, k)[0][0],
                                                       f"⟨v h⟩ {name}, {T_label(T0)}",
                                                       k)], (6, 6), 1))
    return figs


@figure_function
def plot_learned_coarse_graining(res) -> list[Figure]:
    """Test accuracies and kernel weights of the repeated trainings, the MI of their coarse spins; the mean
    kernels; MCRG exponents of the learned kernels."""
    models = [m.decode() if isinstance(m, bytes) else str(m) for m in res.axes["model"]]
    bins = int(res.attrs.get("bins", 20))

    def acc(ax):
        for m in models:
            a = value(res, f"accuracy_{m}")[0]
            ax.hist(a[np.isfinite(a)], bins=bins, histtype="step", label=m)
        ax.set_xlabel(axis_label("accuracy"))
        ax.set_ylabel("number of trainings (count)")
        ax.set_title("test accuracy of the repeated trainings")
        legend(ax)

    def kern(ax):
        for m in models:
            ax.hist(value(res, f"kernels_{m}")[0].ravel(), bins=bins, histtype="step", label=m)
        ax.axvline(1 / 8, color="r", lw=0.8, label="1/8")
        ax.set_xlabel(axis_label("kernels"))
        ax.set_ylabel("number of weights (count)")
        ax.set_title("kernel weights")
        legend(ax)

    mis = [k for k in res.values if k.startswith("I_")]

    def mi(ax):
        for j, k in enumerate(mis):
            v, e = value(res, k)
            ax.errorbar(np.asarray(res.axes["temperatures"]) + 0.002 * j, v, e, marker="o", ls="none",
                        label=k[2:].replace("_", " "))
        labels(ax, "temperatures", "I", "mutual information I vs T")
        legend(ax)

    panels = [Panel("accuracy", acc, tuple(f"accuracy_{m}" for m in models) + ("accuracy_mean",)),
              Panel("kernels", kern, tuple(f"kernels_{m}" for m in models))]
    if mis:
        panels.append(Panel("I", mi, tuple(mis)))
    figs = [Figure("learned_coarse_graining", panels, (4.4, 3.6))]
    stack = [c for m in models for c in value(res, f"kernel_mean_{m}")[0]]
    figs.append(Figure("learned_kernels", [gallery("kernel_mean", stack, "mean kernels (" + ", ".join(models) + ")",
                                                    f"kernel_mean_{models[0]}" if models else "")], (5, 5), 1))
    ys = [k for k in res.values if k.startswith(("y_t_", "y_h_"))]
    if ys:
        def mcrg(ax):
            for j, k in enumerate(ys):
                v, e = value(res, k)
                ax.errorbar(np.arange(v.shape[-1]) + 0.05 * j, v[0], None if e is None else e[0], marker="o",
                            label=k.replace("_", " ", 2))
            ax.axhline(1.0, color="grey", ls="--", lw=0.8, label="exact y_t = 1")
            ax.axhline(15 / 8, color="grey", ls=":", lw=0.8, label="exact y_h = 15/8")
            ax.set_xlabel(axis_label("level_from"))
            ax.set_ylabel("RG eigenvalue exponent y (dimensionless)")
            ax.set_title("MCRG exponents of the learned kernels")
            legend(ax, fontsize=6)
        figs.append(Figure("learned_kernel_mcrg", [Panel("y", mcrg, tuple(ys))], (5.5, 4.2)))
    return figs


@figure_function
def plot_decimation_network(res) -> list[Figure]:
    """The coupling read from each layer of the decimation network beside the exact decimation, and the
    exact flow map K_{n+1}(K_n)."""
    x = res.axes["layer"]

    def layers(ax):
        v, e = value(res, "K_network")
        for i, T in enumerate(res.axes["temperatures"]):
            ax.errorbar(x, v[i], None if e is None else e[i], marker="o", ls="none", color=f"C{i}",
                        label=f"network, {T_label(T)}")
            ax.plot(x, value(res, "K_exact")[0][i], "--", lw=0.8, color=f"C{i}", label="exact" if i == 0 else None)
        labels(ax, "layer", "K_network", "coupling K_n vs layer n")
        legend(ax)

    def flow(ax):
        K = np.linspace(0.01, 3.5, 200)
        ax.plot(K, np.arctanh(np.tanh(K) ** 2), label="K' (tanh K' = tanh² K)")
        ax.plot(K, K, "k:", lw=0.8, label="K' = K")
        for row in value(res, "flow_K")[0]:
            ax.plot(row[:-1], row[1:], marker="o", ms=3, lw=0.6)
        ax.set_xlabel("coupling K_n (dimensionless)")
        ax.set_ylabel("coupling K_{n+1} (dimensionless)")
        ax.set_title("exact decimation flow K_{n+1}(K_n)")
        legend(ax)
    return [Figure("decimation_network", [Panel("K_network", layers, ("K_network", "K_exact")),
                                          Panel("flow_K", flow, ("flow_K",))], (4.8, 3.8))]

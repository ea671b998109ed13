"""Seed 001 (Mehta & Schwab 2014): run folders -> the paper's figures and the comparison table.

    .venv/bin/python studies/seed001/figures.py runs/seed001_mehta_schwab runs/seed001_decimation_1d [--out DIR]

Reads only results.h5 / ensemble.h5 of each run (the analyze stage's output) and writes into DIR (default:
<first run>/analysis/):
  fig3BC_receptive_fields_layer<l>.png   receptive fields r^(l) = W^(1)...W^(l) of the stored units per layer
  fig3D_locality.png                     radius of gyration (spread of |r|), window weight fraction, peak
                                         blob area (the block a unit sees) and autocorrelation half-width
                                         (smoothness length) per layer (± errors over units; shuffled null)
                                         against the non-local (uniform) values
  fig3E_reconstructions.png              samples and their reconstructions from each depth
  fig2C_decimation_flow.png              couplings K^(n) measured through the decimation network vs the
                                         exact flow tanh K' = tanh^2 K
  seed001_table.md                       our numbers beside the paper's (studies/seed001/paper.toml, the report's table)
Prints the table to stdout.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import FigureDirs, finish, results, start    # noqa: E402


def _grid(ax_fig, fields, title):
    import matplotlib.pyplot as plt
    n = len(fields)
    side = int(np.ceil(np.sqrt(n)))
    fig, axes = plt.subplots(side, side, figsize=(1.6 * side, 1.6 * side))
    for k, ax in enumerate(np.atleast_1d(axes).ravel()):
        ax.axis("off")
        if k < n:
            f = fields[k]
            lim = float(np.abs(f).max()) or 1.0
            ax.imshow(f, cmap="RdBu_r", vmin=-lim, vmax=lim)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(ax_fig, dpi=110)
    plt.close(fig)


def receptive_figures(rf: dict, out: Path) -> list[Path]:
    import matplotlib.pyplot as plt
    paths = []
    layers = np.asarray(rf["axes"]["layer"]).astype(int)
    sizes = [int(x) for x in np.asarray(rf["attrs"].get("sizes", []))]
    for l in layers:
        f = np.asarray(rf[f"fields_layer{l}"])
        p = out / f"fig3BC_receptive_fields_layer{l}.png"
        _grid(p, f, f"Fig. 3{'B' if l == layers[-1] else 'C'}: receptive fields of layer {l} "
                    f"({sizes[l] if len(sizes) > l else '?'} units; {len(f)} shown)")
        paths.append(p)
    rad, rade = np.asarray(rf["radius_mean"]), np.asarray(rf["radius_mean_err"])
    wf, wfe = np.asarray(rf["window_fraction_mean"]), np.asarray(rf["window_fraction_mean_err"])
    uni = np.asarray(rf["uniform_window_fraction"]).reshape(-1)
    ur = float(np.asarray(rf["uniform_radius"]).reshape(-1)[0])
    wins = np.asarray(rf["axes"]["window"]).astype(int)
    blob = [q for q in ("blob_area", "half_width") if f"{q}_mean" in rf]
    fig, axes = plt.subplots(1, 2 + len(blob), figsize=(4 * (2 + len(blob)), 3.2))
    a, b = axes[0], axes[1]
    for ax, q in zip(axes[2:], blob):
        # the block size a unit sees (peak blob) and its smoothness length (autocorrelation), with the null
        ax.errorbar(layers, np.asarray(rf[f"{q}_mean"]), np.asarray(rf[f"{q}_mean_err"]), marker="o", capsize=3,
                    label="ours")
        ax.errorbar(layers, np.asarray(rf[f"shuffled_{q}_mean"]), np.asarray(rf[f"shuffled_{q}_mean_err"]),
                    marker="x", ls="--", color="grey", capsize=3, label="shuffled sites")
        ax.set_xlabel("layer")
        ax.set_ylabel({"blob_area": "peak blob area (sites, |r| ≥ max/2)",
                       "half_width": "autocorrelation half-width"}[q])
        ax.set_title("Fig. 3D: " + {"blob_area": "block a unit sees", "half_width": "smoothness length"}[q],
                     fontsize=9)
        ax.legend(fontsize=8)
    a.errorbar(layers, rad, rade, marker="o", capsize=3, label="ours")
    a.axhline(ur, color="k", ls="--", label="uniform (no locality)")
    a.set_xlabel("layer"); a.set_ylabel("radius of gyration of |r|"); a.legend(fontsize=8)
    a.set_title("Fig. 3D: field size by layer", fontsize=9)
    b.errorbar(layers, wf, wfe, marker="o", capsize=3, label="ours")
    b.plot(layers, uni, "k--", marker="x", label="uniform b²/N")
    b.set_xticks(layers, [f"{l}\n({w}x{w})" for l, w in zip(layers, wins)])
    b.set_xlabel("layer (window)"); b.set_ylabel("weight fraction in best window"); b.legend(fontsize=8)
    b.set_title("locality measure", fontsize=9)
    fig.tight_layout()
    p = out / "fig3D_locality.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return paths + [p]


def reconstruction_figure(rc: dict, out: Path) -> list[Path]:
    import matplotlib.pyplot as plt
    key = next((k for k in rc if k.startswith("examples_T")), None)
    if key is None:
        return []
    ex = np.asarray(rc[key])                     # (show, 1 + depths, L, L): the sample, then each depth
    depth = np.asarray(rc["axes"]["depth"]).astype(int)
    n, m = ex.shape[:2]
    fig, axes = plt.subplots(n, m, figsize=(1.8 * m, 1.8 * n), squeeze=False)
    for i in range(n):
        for j in range(m):
            axes[i, j].imshow(ex[i, j], cmap="gray", vmin=-1, vmax=1)
            axes[i, j].axis("off")
            if i == 0:
                axes[i, j].set_title("sample" if j == 0 else f"from layer {depth[j - 1]}", fontsize=8)
    fig.suptitle("Fig. 3E: samples and reconstructions", fontsize=9)
    fig.tight_layout()
    p = out / "fig3E_reconstructions.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return [p]


def decimation_figure(dn: dict, out: Path) -> list[Path]:
    import matplotlib.pyplot as plt
    K, Ke, Kx = (np.asarray(dn[q]) for q in ("K_network", "K_network_err", "K_exact"))
    T = np.asarray(dn["axes"]["temperatures"])
    layer = np.asarray(dn["axes"]["layer"])
    fig, (a, b) = plt.subplots(1, 2, figsize=(8, 3.2))
    for i, t in enumerate(T):
        a.errorbar(layer, K[i], Ke[i], marker="o", ls="none", capsize=3, label=f"network, K⁰ = {1 / t:.3g}")
        a.plot(layer, Kx[i], "k-", lw=0.8)
    a.set_xlabel("layer n"); a.set_ylabel("K⁽ⁿ⁾"); a.legend(fontsize=7); a.set_title("Fig. 2B,C: decimation network", fontsize=9)
    flows = np.asarray(dn["flow_K"])
    for f in flows:
        b.plot(np.arange(len(f)), f, marker=".", lw=0.8, label=f"K⁰ = {f[0]:.3g}")
    b.set_xlabel("decimation step"); b.set_ylabel("K"); b.set_title("exact flow to the K = 0 fixed point", fontsize=9)
    b.legend(fontsize=7)
    fig.tight_layout()
    p = out / "fig2C_decimation_flow.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return [p]


def main(argv=None) -> int:
    runs, out = start(__doc__, argv, "run folders (seed001 DBN job and/or 1D decimation job)")
    dirs = FigureDirs(out)
    made = []
    for run in runs:
        res = results(run)
        if not res:
            print(f"{run}: no results.h5 (run the analyze stage first)", file=sys.stderr)
            continue
        if "receptive_fields" in res:
            made += receptive_figures(res["receptive_fields"], dirs("receptive_fields", run))
        if "reconstructions" in res:
            made += reconstruction_figure(res["reconstructions"], dirs("reconstructions", run))
        if "decimation_network" in res:
            made += decimation_figure(res["decimation_network"], dirs("decimation_network", run))
    return finish("seed001", runs, out, made)

if __name__ == "__main__":
    raise SystemExit(main())

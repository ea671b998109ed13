"""Seed 001 (Mehta & Schwab 2014): run folders -> the paper's figures and the comparison table.

    .venv/bin/python studies/seed001/figures.py runs/seed001_mehta_schwab runs/seed001_decimation_1d [--out DIR]

Reads only results.h5 / ensemble.h5 of each run (the analyze stage's output) and writes into DIR (default:
<first run>/analysis/):
  receptive_fields_layer<l>.png,         Figs. 3 B-C: receptive fields r^(l) = W^(1)...W^(l) of the stored units
  receptive_fields_locality.png          per layer, locality histograms (the package's figures)
  fig3D_locality.png                     radius of gyration (spread of |r|), window weight fraction, peak
                                         blob area (the block a unit sees) and autocorrelation half-width
                                         (smoothness length) per layer (± errors over units; shuffled null)
                                         against the non-local (uniform) values
  reconstruction_error.png, reconstructions_T<i>.png   Fig. 3 E: samples and their reconstructions from
                                         each depth (the package's figure of the reconstructions reduction)
  decimation_network.png                 Fig. 2: couplings K^(n) measured through the decimation network vs
                                         the exact flow tanh K' = tanh^2 K (the package's figure)
  seed001_table.md                       our numbers beside the paper's (studies/seed001/paper.toml, the report's table)
Prints the table to stdout.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import FigureDirs, finish, results, start    # noqa: E402

from hpc_rg.reduce.model_figures import (plot_decimation_network, plot_receptive_fields,  # noqa: E402
                                           plot_reconstructions)


def receptive_figures(rf, out: Path) -> list[Path]:
    """Figs. 3 B-C: the package's figures of the receptive_fields reduction (the fields of each layer, the
    locality histograms); Fig. 3 D: the size measures per layer against the shuffled-site null."""
    import matplotlib.pyplot as plt
    paths = list(plot_receptive_fields(rf, out))
    layers = np.asarray(rf["axes"]["layer"]).astype(int)
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
        # Fig. 3 E and Fig. 2 are the package's own figures of these reductions (one implementation: the
        # analyze stage draws the same into the run's figures/), drawn from the Results read back
        if "reconstructions" in res:
            made += plot_reconstructions(res["reconstructions"], dirs("reconstructions", run))
        if "decimation_network" in res:
            made += plot_decimation_network(res["decimation_network"], dirs("decimation_network", run))
    return finish("seed001", runs, out, made)

if __name__ == "__main__":
    raise SystemExit(main())

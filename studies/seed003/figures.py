"""Seed 003 (DBN/autoencoder replication of Mehta & Schwab): a run folder -> the paper's figures and table.

    .venv/bin/python studies/seed003/figures.py runs/seed003_dbn_e30 [--out DIR]

Reads the numbers from results.h5 (the autoencoder_quality reduction), the nets (models/<name>.pt: `large` =
LargeNet, `small` = SmallNet) for the pictures, and ensemble.h5, and writes into DIR (default: <run>/analysis/):
  fig1_loss.png                          Fig. 1: train / test MSE per epoch of each net, with the lazy
                                         all-zero output (MSE 1) and the magnetization-only output 1 − ⟨m²⟩
  fig2_reconstructions.png               Fig. 2: two configurations and their reconstructions by each net
  fig3_receptive_fields_<net>_layer<l>.png  Fig. 3: receptive fields r^(l) = W^(1)...W^(l) of each net/layer
  seed003_table.md                       our numbers beside the paper's claims (studies/seed003/paper.toml, the report's table)
  seed003_bracket.md                     (runs with more than two nets, e.g. seed003_bracket) one line per net:
                                         its settings, reconstruction MSE and wrong-sign fraction against the
                                         magnetization-only output and PCA-25, receptive-field window fraction
                                         per layer against the shuffled-site null
Prints the table to stdout. Fig. 1 draws `large`, `small`, `*_ours` and, in a bracket, each net's best point.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import finish, results, start    # noqa: E402

LABEL = {"large": "LargeNet", "small": "SmallNet"}


def bracket_table(evals: dict, base: dict, out: Path) -> list[Path]:
    """seed003_bracket.md: every net's settings and numbers beside the baselines (read from the run's files)."""
    import math
    from hpc_rg.reduce.autoencoder_quality import settings
    lazy = 1 - base["m2"] if "m2" in base else float("nan")
    pca = base.get("pca25", (float("nan"), float("nan")))
    lines = [f"Baselines: magnetization-only output MSE 1 − ⟨m²⟩ = {lazy:.4f}; PCA-25 (fitted to the other half of "
             f"the chains) {pca[0]:.4f} ± {pca[1]:.4f}; lazy zero output 1.",
             "Window fraction: weight of |r^(l)| in the best b×b window, ours / same weights on shuffled sites "
             "(σ above the null).", "",
             "| net | settings | epochs | test MSE first → last | MSE (all samples) | wrong sign | vs m-only | "
             "vs PCA-25 | window fraction per layer |", "|" + "---|" * 9]
    for name, ev in sorted(evals.items(), key=lambda kv: kv[1]["mse"][0]):
        m, me = ev["mse"]
        h = [r.get("test_mse") for r in ev["history"] if r.get("test_mse") is not None]
        z_m = (lazy - m) / me if me > 0 else math.inf
        z_p = (pca[0] - m) / math.hypot(me, pca[1]) if me > 0 else math.inf
        wf = []
        for lay in ev["layers"]:
            (a, ae), (n, ne) = lay["window_fraction"], lay["shuffled"]
            wf.append(f"{a / n:.2f}x ({(a - n) / math.hypot(ae, ne):.0f}σ)")
        lines.append(f"| {name} | {settings(ev['config'])} | {ev['config'].get('epochs')} | "
                     f"{h[0]:.3f} → {h[-1]:.3f} | {m:.4f} ± {me:.4f} | {ev['mismatch'][0]:.4f} | "
                     f"{'better' if z_m > 4 else 'worse' if z_m < -4 else 'same'} ({z_m:+.0f}σ) | "
                     f"{'better' if z_p > 4 else 'worse' if z_p < -4 else 'same'} ({z_p:+.0f}σ) | {'; '.join(wf)} |")
    p = out / "seed003_bracket.md"
    p.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return [p]


def loss_figure(evals: dict, base: dict, out: Path) -> list[Path]:
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for k, (name, ev) in enumerate(evals.items()):
        h = ev["history"]
        ep = [r["epoch"] for r in h]
        for key, ls in (("train_mse", "-"), ("test_mse", "--")):
            ys = [r.get(key) for r in h]
            if any(y is not None for y in ys):
                ax.plot(ep, ys, ls, color=f"C{k}", label=f"{LABEL.get(name, name)} {key.split('_')[0]}")
    ax.axhline(1.0, color="k", lw=0.8, label="lazy output 0 (MSE 1)")
    if "m2" in base:
        ax.axhline(1 - base["m2"], color="grey", ls=":", label="output = m (1 − ⟨m²⟩)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("reconstruction MSE (±1 spins, without the L1 term)")
    ax.set_title("Fig. 1: reconstruction loss", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    p = out / "fig1_loss.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return [p]


def reconstruction_figure(run: Path, names: list[str], out: Path, show: int = 2, seed: int = 3) -> list[Path]:
    import matplotlib.pyplot as plt
    import torch
    from hpc_rg.io.ensemble import open_ensemble
    from hpc_rg.learn.modelfile import load_model
    rng = np.random.default_rng(seed)
    with open_ensemble(run / "ensemble.h5") as e:
        shape = tuple(int(x) for x in e.lattice_shape)
        picks = [(int(rng.integers(e.n_chains)), int(rng.integers(e.n_samples))) for _ in range(show)]
        x = np.stack([np.asarray(e.spins[0, c, s]) for c, s in picks]).reshape(show, -1).astype(np.float32)
    recs = []
    for name in names:
        model, _ = load_model(run / "models" / f"{name}.pt")
        with torch.no_grad():
            recs.append(model(torch.as_tensor(x)).numpy())
    fig, axes = plt.subplots(show, 1 + len(names), figsize=(2.4 * (1 + len(names)), 2.4 * show), squeeze=False)
    for i in range(show):
        for j, (img, t) in enumerate([(x[i], "sample")] + [(r[i], LABEL.get(n, n)) for n, r in zip(names, recs)]):
            axes[i, j].imshow(img.reshape(shape), cmap="gray", vmin=-1, vmax=1)
            axes[i, j].axis("off")
            if i == 0:
                axes[i, j].set_title(t, fontsize=9)
    fig.suptitle("Fig. 2: reconstructions (tanh outputs)", fontsize=9)
    fig.tight_layout()
    p = out / "fig2_reconstructions.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return [p]


def receptive_figures(run: Path, name: str, out: Path, show: int = 25) -> list[Path]:
    import matplotlib.pyplot as plt
    from hpc_rg.learn.modelfile import load_model
    from hpc_rg.reduce.receptive_fields import layer_fields
    model, meta = load_model(run / "models" / f"{name}.pt")
    with __import__("hpc_rg.io.ensemble", fromlist=["open_ensemble"]).open_ensemble(run / "ensemble.h5") as e:
        shape = tuple(int(x) for x in e.lattice_shape)
    paths = []
    for l in range(1, len(model.sizes)):
        f = layer_fields(model, "autoencoder", l).T.reshape((-1,) + shape)
        # the strongest fields first (dead units, whose weights L1 drove to zero, last)
        order = np.argsort(-np.abs(f).reshape(len(f), -1).sum(axis=1))[:show]
        n = len(order)
        side = int(np.ceil(np.sqrt(n)))
        fig, axes = plt.subplots(side, side, figsize=(1.5 * side, 1.5 * side), squeeze=False)
        for k, ax in enumerate(axes.ravel()):
            ax.axis("off")
            if k < n:
                g = f[order[k]]
                lim = float(np.abs(g).max()) or 1.0
                ax.imshow(g, cmap="RdBu_r", vmin=-lim, vmax=lim)
        fig.suptitle(f"Fig. 3: {LABEL.get(name, name)} receptive fields, layer {l} ({model.sizes[l]} units; "
                     f"{n} strongest)", fontsize=8)
        fig.tight_layout()
        p = out / f"fig3_receptive_fields_{name}_layer{l}.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        paths.append(p)
    return paths


def evaluations(run: Path, res: dict) -> dict:
    """{net: {"mse", "mismatch", "layers", "history", "config"}} from the run's autoencoder_quality reduction
    (the numbers) and each net's models/<net>.json (loss history and settings)."""
    import json
    aq = res["autoencoder_quality"]
    attr = aq["attrs"]["models"]
    names = (attr.decode() if isinstance(attr, bytes) else str(attr)).split(",")
    pair = (lambda q, i=None: (float(np.asarray(aq[q]).reshape(-1)[0 if i is None else i]),
                               float(np.asarray(aq[q + "_err"]).reshape(-1)[0 if i is None else i])))
    out = {}
    for n in names:
        meta = json.loads((run / "models" / f"{n}.json").read_text())
        layers = [{"layer": int(l), "window_fraction": pair(f"window_fraction_{n}", i),
                   "shuffled": pair(f"shuffled_window_fraction_{n}", i)}
                  for i, l in enumerate(np.asarray(aq["axes"][f"layer_{n}"]))]
        out[n] = {"mse": pair(f"mse_{n}"), "mismatch": pair(f"mismatch_{n}"), "layers": layers,
                  "history": meta.get("history", []), "config": meta.get("config", {})}
    return out


def baselines(res: dict) -> dict:
    """{"m2": <m²>, "pca25": (mse, err)} of the first temperature, read from results.h5."""
    base = {}
    aq = res.get("autoencoder_quality", {})
    if "magnetization_only_mse" in aq:
        base["m2"] = 1.0 - float(np.asarray(aq["magnetization_only_mse"]).reshape(-1)[0])
    rc = res.get("reconstructions") or {}
    names = rc.get("attrs", {}).get("baselines")
    if names is not None and "baseline_mse" in rc:
        names = (names.decode() if isinstance(names, bytes) else str(names)).split(",")
        v = np.asarray(rc["baseline_mse"], dtype=float).reshape(-1, len(names))[0]
        e = np.asarray(rc["baseline_mse_err"], dtype=float).reshape(-1, len(names))[0]
        base.update({k: (float(a), float(b)) for k, a, b in zip(names, v, e)})
    return base


def main(argv=None) -> int:
    runs, out = start(__doc__, argv, "run folder of a seed003 job", single=True)
    run = runs[0]
    res = results(run)
    if "autoencoder_quality" not in res or not (run / "ensemble.h5").exists():
        print(f"{run}: no autoencoder_quality in results.h5 / no ensemble.h5 (run the job, with its "
              "[analyze.autoencoder_quality] table, first)", file=sys.stderr)
        return 2
    base = baselines(res)
    evals = evaluations(run, res)
    names = sorted(evals, key=lambda n: (n != "small", n))
    made = []
    if len(names) > 2:      # a bracket: the table, and figures of the reference nets and each net's best point
        made += bracket_table(evals, base, out)
        best = {}
        for n, ev in evals.items():
            net = n.split("_")[0]
            if net not in best or ev["mse"][0] < evals[best[net]]["mse"][0]:
                best[net] = n
        names = sorted({n for n in names if n.endswith("_ours") or n in LABEL} | set(best.values()))
        evals = {n: evals[n] for n in names}
    made += loss_figure(evals, base, out) + reconstruction_figure(run, names, out)
    for n in names:
        made += receptive_figures(run, n, out)
    return finish("seed003", runs, out, made, with_run=False)


if __name__ == "__main__":
    raise SystemExit(main())

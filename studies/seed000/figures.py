"""Seed 000 (Nguyen & Howe 2019): a run folder -> the paper's figures and tables.

    .venv/bin/python studies/seed000/figures.py runs/seed000_coarse_cnn_r50 [--out DIR]

Reads results.h5 (the `learned_coarse_graining` and `observables` reductions) and ensemble.h5 of the run and
writes into DIR (default: <run>/analysis/):
  (every accuracy is shown as mean ± standard error over repeats ± binomial error of the shared test set)
  fig1_accuracy_weights.png   Fig. 1: test-accuracy histograms, frozen vs learned (1 channel); histogram of
                              the learned (sign-aligned) weights with the frozen value 1/8 marked
  fig1_kernels.png            mean learned kernel of every variant (± standard error over repeats in the title)
  fig2_channels.png           Fig. 2: test-accuracy histograms for 1, 2, 3 channels
  fig3_samples.png            Fig. 3: a correlated sample, a scrambled one (3x3 blocks from random places of
                              random configurations), its coarse-graining by the mean learned kernel
                              (undiscretized tanh(w·s), and discretized sign(w·s))
  seed000_table.md            Table 1, Table 2 and the checks beside the paper (studies/seed000/paper.toml, the report's table)
Prints the table to stdout.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import finish, results, start    # noqa: E402


def binomial_error(p: float, n_test: int) -> float:
    """Sampling error of an accuracy p measured on one test set of n_test patches (nan when n is unknown)."""
    import math
    return math.sqrt(max(p * (1.0 - p), 0.0) / n_test) if n_test else float("nan")


def _models(lcg: dict) -> list[str]:
    return [m.decode() if isinstance(m, bytes) else str(m) for m in np.asarray(lcg["axes"]["model"])]


def _hist(ax, lcg, names, bins):
    accs = [np.asarray(lcg[f"accuracy_{m}"], float) for m in names if f"accuracy_{m}" in lcg]
    allv = np.concatenate(accs) if accs else np.zeros(1)
    edges = np.linspace(allv.min() - 1e-3, allv.max() + 1e-3, bins + 1)
    for m in names:
        if f"accuracy_{m}" not in lcg:
            continue
        a = np.asarray(lcg[f"accuracy_{m}"], float)
        se = a.std(ddof=1) / np.sqrt(len(a)) if len(a) > 1 else 0.0
        # the repeats share one test set: its binomial error is not in the spread over repeats
        n_test = int(lcg["attrs"].get(f"n_test_{m}", 0))
        binom = f" ± {binomial_error(a.mean(), n_test):.3f} (test set)" if n_test else ""
        ax.hist(a, bins=edges, histtype="step", lw=1.5,
                label=f"{m}: {a.mean():.4f} ± {se:.4f}{binom} (n={len(a)})")
    ax.set_xlabel("test accuracy")
    ax.set_ylabel("repeats")
    ax.legend(fontsize=7)


def accuracy_figures(lcg: dict, out: Path) -> list[Path]:
    import matplotlib.pyplot as plt
    bins = int(lcg["attrs"].get("bins", 20))
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
    _hist(a, lcg, ["frozen", "ch1"], bins)
    a.set_title("Fig. 1 left: frozen vs learned convolution", fontsize=9)
    if "kernels_ch1" in lcg:
        w = np.asarray(lcg["kernels_ch1"], float)
        # the learned kernel's overall scale is free (tanh and the MLP absorb it): normalise each repeat to
        # the frozen kernel's total weight 1 so its weights are comparable with 1/8
        w = w / w.sum(axis=(-2, -1), keepdims=True)
        b.hist(w.ravel(), bins=3 * bins, color="C1")
        b.axvline(1 / 8, color="r", lw=1.2, label="frozen: 1/8 (0 at the centre)")
        b.set_xlabel("learned weight (1 channel; each kernel scaled to sum 1)")
        b.set_ylabel("count")
        b.legend(fontsize=7)
    b.set_title("Fig. 1 right: learned weights", fontsize=9)
    fig.tight_layout()
    p1 = out / "fig1_accuracy_weights.png"
    fig.savefig(p1, dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5, 3.4))
    _hist(ax, lcg, ["ch1", "ch2", "ch3"], bins)
    ax.set_title("Fig. 2: accuracy by number of convolution channels", fontsize=9)
    fig.tight_layout()
    p2 = out / "fig2_channels.png"
    fig.savefig(p2, dpi=110)
    plt.close(fig)

    stack = []
    for m in _models(lcg):
        k, e = np.asarray(lcg[f"kernel_mean_{m}"], float), np.asarray(lcg[f"kernel_mean_{m}_err"], float)
        for c in range(len(k)):
            stack.append((f"{m} ch{c}", k[c], e[c]))
    fig, axes = plt.subplots(1, len(stack), figsize=(1.9 * len(stack), 2.3), squeeze=False)
    for ax, (t, k, e) in zip(axes[0], stack):
        lim = float(np.abs(k).max()) or 1.0
        ax.imshow(k, cmap="RdBu_r", vmin=-lim, vmax=lim)
        for (i, j), v in np.ndenumerate(k):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6)
        ax.set_title(f"{t}\nmax err {e.max():.2g}", fontsize=7)
        ax.axis("off")
    fig.suptitle("mean kernels over repeats (sign-aligned)", fontsize=8)
    fig.tight_layout()
    p3 = out / "fig1_kernels.png"
    fig.savefig(p3, dpi=110)
    plt.close(fig)
    return [p1, p2, p3]


def scrambled(spins, rng: np.random.Generator, b: int = 3) -> np.ndarray:
    """A lattice tiled from b x b blocks cut at random (periodic) positions of random configurations."""
    n_c, n_s, L, _ = spins.shape
    out = np.empty((L // b * b, L // b * b), np.int8)
    for I in range(L // b):
        for J in range(L // b):
            c, s = rng.integers(n_c), rng.integers(n_s)
            y, x = rng.integers(L, size=2)
            cfg = np.asarray(spins[c, s])
            out[I * b:(I + 1) * b, J * b:(J + 1) * b] = np.roll(cfg, (-y, -x), (0, 1))[:b, :b]
    return out


def sample_figure(run: Path, lcg: dict, out: Path, seed: int = 0) -> list[Path]:
    import matplotlib.pyplot as plt
    from hpc_rg.io.ensemble import open_ensemble
    ens = run / "ensemble.h5"
    if not ens.exists() or "kernel_mean_ch1" not in lcg:
        return []
    rng = np.random.default_rng(seed)
    with open_ensemble(ens) as e:
        sp = e.spins[0]                                           # (chains, samples, L, L) at the first T
        corr = np.asarray(sp[rng.integers(sp.shape[0]), rng.integers(sp.shape[1])])
        scr = scrambled(sp, rng)
    k = np.asarray(lcg["kernel_mean_ch1"], float)[0]
    b = k.shape[0]
    n = corr.shape[0] // b
    blocks = corr[:n * b, :n * b].reshape(n, b, n, b).astype(float)
    field = np.einsum("iajb,ab->ij", blocks, k)
    cont, disc = np.tanh(field), np.sign(np.round(field, 12))
    fig, axes = plt.subplots(1, 4, figsize=(12, 3.3))
    for ax, img, t in zip(axes, (corr, scr, cont, disc),
                          ("correlated sample", "scrambled (3x3 blocks)", "coarse-grained: tanh(w·s)",
                           "coarse-grained, discretized: sign(w·s)")):
        ax.imshow(img, cmap="gray", vmin=-1, vmax=1)
        ax.set_title(t, fontsize=9)
        ax.axis("off")
    fig.suptitle("Fig. 3 (mean learned 1-channel kernel, no bias)", fontsize=9)
    fig.tight_layout()
    p = out / "fig3_samples.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return [p]


def main(argv=None) -> int:
    runs, out = start(__doc__, argv, "run folder of a seed000 job", single=True)
    res = results(runs[0])
    if not res:
        print(f"{runs[0]}: no results.h5 (run the analyze stage first)", file=sys.stderr)
        return 2
    made = []
    lcg = res.get("learned_coarse_graining")
    if lcg is not None:
        made += accuracy_figures(lcg, out) + sample_figure(runs[0], lcg, out)
    return finish("seed000", runs, out, made, with_run=False)

if __name__ == "__main__":
    raise SystemExit(main())

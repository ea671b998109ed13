"""Seed 002 (de Mello Koch et al. 2020): run folders -> the paper's figures and the comparison table.

    .venv/bin/python studies/seed002/figures.py runs/seed002_mcmc_L10 runs/seed002_rbm_flow runs/seed002_stacked [--out DIR]

Reads only results.h5 of each run and writes into DIR (default: <first run>/analysis/):
  fig2ab_scaling_dimensions.png   Delta_eps(T), Delta_s(T) (plain and chord fits, ± errors) with the paper's
                                  T_c = 7.7, Delta_eps = 1, Delta_s = 0.53 lines (from scaling_dimensions)
  fig2c_magnetization.png         <|m|>(T) of every run with observables (one curve per lattice size)
  fig3-5_rbm_flows.png            Delta_s, Delta_eps and the thermometer T along the RBM flow, per start T,
                                  with the paper's end points (from rbm_flow)
  fig6-7_vh_maps.png              <v h> maps of each RG step and each RBM layer (from vh_correlators)
  fig8_thermometer.png            thermometer temperature along the RG flow and up the RBM stack (peak of
                                  the average probability, the paper's read-out, and the posterior mean),
                                  and the paper's values
  seed002_table.md                our numbers beside the paper's (studies/seed002/paper.toml, the report's table)
Prints the table to stdout.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import FigureDirs, finish, paper_value, results, start    # noqa: E402

# the paper's numbers drawn as reference lines, read from paper.toml (written there once)
PAPER_TC = paper_value("seed002", "T where Δ_ε = 1 (plain fit)")
PAPER_DELTA_S_TC = paper_value("seed002", "Δ_s at T = 7.7 (plain fit)")
PAPER_FLOWS = {start: tuple(paper_value("seed002", f"RBM flow {label}, longest flow: {q}")
                            for q in ("Δ_s", "Δ_ε", "thermometer T (peak)"))
               for start, label in ((0.0, "from T = 0 (0.5 here)"), (7.7, "from T = 7.7"))}
PAPER_RG_T = [paper_value("seed002", f"thermometer T (peak) after {s} RG step(s), first start temperature")
              for s in (1, 2, 3)]
PAPER_RBM_T = [paper_value("seed002", f"thermometer T (peak) of RBM layer {l} hidden units, first start temperature")
               for l in (1, 2, 3)]


def magnetization_curves(ob: dict) -> list:
    """[(L, T, <|m|>, error)] from an observables result of one ensemble or of several (per-L keys)."""
    ax = ob["axes"]
    Ls = np.atleast_1d(np.asarray(ax.get("L", [0]))).astype(int)
    if "temperatures" in ax:
        T = np.asarray(ax["temperatures"], dtype=float)
        m, me = np.asarray(ob["abs_m"], dtype=float), np.asarray(ob["abs_m_err"], dtype=float)
        return [(int(Ls[0]), T, m.reshape(-1)[:len(T)], me.reshape(-1)[:len(T)])]
    return [(int(L), np.asarray(ax[f"temperatures_L{L}"], dtype=float), np.asarray(ob[f"abs_m_L{L}"], dtype=float),
             np.asarray(ob[f"abs_m_L{L}_err"], dtype=float))
            for L in Ls if f"temperatures_L{L}" in ax and f"abs_m_L{L}" in ob]


def _lattice(run: Path) -> str:
    ens = run / "ensemble.h5"
    if not ens.exists():
        return "?"
    from hpc_rg.io.ensemble import open_ensemble
    with open_ensemble(ens) as e:
        return "x".join(str(int(x)) for x in e.lattice_shape)


def scaling_figure(sd: dict, label: str, out: Path) -> Path:
    import matplotlib.pyplot as plt
    T = np.asarray(sd["axes"]["temperatures"])
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
    for form, mk in (("plain", "o"), ("chord", "s")):
        for ax, q, ref in ((a, "delta_eps", 1.0), (b, "delta_s", PAPER_DELTA_S_TC)):
            v, e = np.asarray(sd[f"{q}_{form}"]), np.asarray(sd[f"{q}_{form}_err"])
            ax.errorbar(T, v, e, marker=mk, ms=2.5, lw=0.6, capsize=1.5, label=f"{form} fit")
            ax.axvline(PAPER_TC, color="r", lw=0.8)
            ax.axhline(ref, color="r", lw=0.8)
        # the Δ_ε = 1 crossing as the reduction stored it
        Tc = float(np.asarray(sd.get(f"T_delta_eps_1_{form}", np.nan)).reshape(-1)[0])
        dTc = float(np.asarray(sd.get(f"T_delta_eps_1_{form}_err", 0.0)).reshape(-1)[0])
        if np.isfinite(Tc):
            a.axvspan(Tc - (dTc if np.isfinite(dTc) else 0), Tc + (dTc if np.isfinite(dTc) else 0), alpha=0.2,
                      color="C0" if form == "plain" else "C1", lw=1)
    a.set_ylim(-0.1, 2.5); b.set_ylim(-0.1, 1.5)
    a.set_xlabel("T"); a.set_ylabel("Δ_ε"); a.set_title(f"Fig. 2a ({label}); red: paper T_c = 7.7", fontsize=9)
    b.set_xlabel("T"); b.set_ylabel("Δ_s"); b.set_title(f"Fig. 2b ({label}); red: paper Δ_s = 0.53", fontsize=9)
    a.legend(fontsize=8); b.legend(fontsize=8)
    fig.tight_layout()
    p = out / "fig2ab_scaling_dimensions.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return p


def magnetization_figure(curves: list, out: Path) -> Path:
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for label, T, m, e in curves:
        ax.errorbar(T, m, e, marker=".", ms=3, lw=0.8, capsize=1.5, label=label)
    ax.axvspan(5, 8, color="r", alpha=0.1, label="paper: T_c in (5, 8)")
    ax.set_xlabel("T"); ax.set_ylabel("⟨|m|⟩"); ax.legend(fontsize=8); ax.set_title("Fig. 2c", fontsize=9)
    fig.tight_layout()
    p = out / "fig2c_magnetization.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return p


def binder_figure(bc: dict, out: Path) -> Path:
    import matplotlib.pyplot as plt
    grid = np.asarray(bc["axes"]["grid"])
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
    for k in sorted((k for k in bc["axes"] if k.startswith("U_L")), key=lambda k: int(k[3:])):
        a.plot(grid, np.asarray(bc["axes"][k]), label=k[2:].replace("L", "L = "))
    a.axvline(PAPER_TC, color="r", lw=0.8, label="paper T_c = 7.7")
    a.set_xlabel("T"); a.set_ylabel("Binder U"); a.legend(fontsize=8); a.set_title("beyond: Binder cumulants", fontsize=9)
    Tc, e = np.asarray(bc["T_c"]), np.asarray(bc["T_c_err"])
    Ll = np.asarray(bc["axes"]["L_large"])
    b.errorbar(1.0 / Ll, Tc, e, marker="o", capsize=3, label="crossing of L/2 and L")
    b.axhline(PAPER_TC, color="r", lw=0.8, label="paper (10x10, Δ_ε = 1)")
    b.set_xlabel("1 / L (larger size of the pair)"); b.set_ylabel("T_c"); b.legend(fontsize=8)
    fig.tight_layout()
    p = out / "beyond_binder_tc.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return p


def flow_figure(fl: dict, out: Path) -> Path:
    import matplotlib.pyplot as plt
    T = np.asarray(fl["axes"]["temperatures"])
    n = np.asarray(fl["axes"]["length"])
    has_T = "T_thermo" in fl
    cols = 3 if has_T else 2
    fig, axes = plt.subplots(1, cols, figsize=(4 * cols, 3.4))
    # the thermometer panel: the peak of the average probability (the paper's read-out) when the run has it,
    # the posterior mean dotted beside it
    tq = "T_peak" if "T_peak" in fl else "T_thermo"
    qs = [("delta_s", "Δ_s", 0), ("delta_eps", "Δ_ε", 1)] + (
        [(tq, "thermometer T (peak; dotted: mean)" if tq == "T_peak" else "thermometer T (mean)", 2)]
        if has_T else [])
    for ax, (q, name, k) in zip(axes, qs):
        v, e = np.asarray(fl[q]), np.asarray(fl[q + "_err"])
        for i, t in enumerate(T):
            ax.errorbar(n, v[i], e[i], marker="o", ms=3, capsize=2, label=f"start T = {t:.3g}", color=f"C{i}")
            if q == "T_peak":
                ax.plot(n, np.asarray(fl["T_thermo"])[i], ls=":", lw=1, color=f"C{i}")
            key = min(PAPER_FLOWS, key=lambda x: abs(x - t))
            ref = PAPER_FLOWS[key][k] if abs(key - t) <= 0.6 else None
            if ref is not None:
                ax.axhline(ref, ls="--", lw=0.8, color=f"C{i}")
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xlabel("flow length n"); ax.set_ylabel(name); ax.legend(fontsize=7)
    axes[0].set_title("Figs. 3-5: RBM flows (dashed: paper's end points)", fontsize=9)
    fig.tight_layout()
    p = out / "fig3-5_rbm_flows.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return p


def vh_figures(vh: dict, out: Path) -> list[Path]:
    import matplotlib.pyplot as plt
    names = [k[4:] for k in vh if k.startswith("map_")]
    rg = sorted(n for n in names if n.startswith("rg"))
    rbm = sorted(n for n in names if n.startswith("layer"))
    rows = [r for r in (rg, rbm) if r]
    paths = []
    for who, levels in zip(("RG (Fig. 6)", "stacked RBM (Fig. 7)"), (rg, rbm)):
        if not levels:
            continue
        maps = [np.asarray(vh[f"map_{lv}"])[0] for lv in levels]        # first temperature: (show, L, L)
        show = max(m.shape[0] for m in maps)
        fig, axes = plt.subplots(len(levels), show, figsize=(1.8 * show, 1.9 * len(levels)), squeeze=False)
        for i, (lv, m) in enumerate(zip(levels, maps)):
            for j in range(show):
                ax = axes[i, j]
                ax.axis("off")
                if j < m.shape[0]:
                    lim = float(np.abs(m[j]).max()) or 1.0
                    ax.imshow(m[j], cmap="RdBu_r", vmin=-lim, vmax=lim)
                    if j == 0:
                        ax.set_title(lv, fontsize=8)
        fig.suptitle(f"⟨v h⟩ maps, {who}", fontsize=9)
        fig.tight_layout()
        p = out / f"fig{'6' if who.startswith('RG') else '7'}_vh_maps.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        paths.append(p)
    del rows
    return paths


def thermometer_figure(vh: dict, out: Path) -> Path | None:
    import matplotlib.pyplot as plt
    if "rg_T_thermo" not in vh:
        return None
    fig, ax = plt.subplots(figsize=(5, 3.4))
    peak = "rg_T_peak" in vh        # the paper's read-out; runs made before it existed have the mean only
    v, e = np.asarray(vh["rg_T_thermo"])[0], np.asarray(vh["rg_T_thermo_err"])[0]
    ax.errorbar(np.arange(len(v)), v, e, marker="o", capsize=2, color="C0", ls=":" if peak else "-",
                label="RG steps (ours, posterior mean)")
    if peak:
        ax.plot(np.arange(len(v)), np.asarray(vh["rg_T_peak"])[0], "C0-", marker="D", label="RG steps (ours, peak)")
    ax.plot(np.arange(1, 4), PAPER_RG_T, "C0--", marker="x", label="RG steps (paper)")
    if "rbm_T_thermo" in vh:
        v, e = np.asarray(vh["rbm_T_thermo"])[0], np.asarray(vh["rbm_T_thermo_err"])[0]
        layers = np.asarray(vh["axes"].get("thermo_layer", np.arange(1, len(v) + 1)))
        ax.errorbar(layers, v, e, marker="s", capsize=2, color="C1", ls=":" if peak else "-",
                    label="RBM layers (ours, posterior mean)")
        if "rbm_T_peak" in vh:
            ax.plot(layers, np.asarray(vh["rbm_T_peak"])[0], "C1-", marker="D", label="RBM layers (ours, peak)")
        ax.plot(np.arange(1, 4), PAPER_RBM_T, "C1--", marker="x", label="RBM layers (paper)")
    ax.set_xlabel("RG step / RBM layer (0: the data)"); ax.set_ylabel("thermometer T")
    ax.set_title("Fig. 8: temperature along the two flows", fontsize=9); ax.legend(fontsize=8)
    fig.tight_layout()
    p = out / "fig8_thermometer.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return p


def main(argv=None) -> int:
    runs, out = start(__doc__, argv, "seed-002 run folders (scan, RBM flow, stacked, ...)")
    dirs = FigureDirs(out)
    made, curves = [], []
    for run in runs:
        res = results(run)
        if not res:
            print(f"{run}: no results.h5 (run the analyze stage first)", file=sys.stderr)
            continue
        lattice = _lattice(run)
        if "scaling_dimensions" in res:
            made.append(scaling_figure(res["scaling_dimensions"], f"{lattice}, {run.name}",
                                       dirs("scaling_dimensions", run)))
        if "observables" in res:
            for L, T, m, e in magnetization_curves(res["observables"]):
                if len(T) > 2:
                    curves.append((f"L = {L} ({run.name})", T, m, e))
        if "binder_crossing" in res:
            made.append(binder_figure(res["binder_crossing"], dirs("binder_crossing", run)))
        if "rbm_flow" in res:
            made.append(flow_figure(res["rbm_flow"], dirs("rbm_flow", run)))
        if "vh_correlators" in res:
            where = dirs("vh_correlators", run)
            made += vh_figures(res["vh_correlators"], where)
            p = thermometer_figure(res["vh_correlators"], where)
            if p:
                made.append(p)
    if curves:
        made.append(magnetization_figure(curves, out))
    return finish("seed002", runs, out, made)

if __name__ == "__main__":
    raise SystemExit(main())

"""Figures of the reductions of ensembles alone (`reductions`), drawn from a Result's values and axes only;
each is the FIGURE of its reduction's spec. Calling convention: `hpc_rg.reduce.figures`."""
from __future__ import annotations

import numpy as np

from hpc_rg.reduce.figures import Figure, Panel, T_label, figure_function, labels, legend, per_temperature, value

OBSERVABLES = ("energy", "abs_m", "susceptibility", "specific_heat", "binder")


@figure_function
def plot_observables(res) -> list[Figure]:
    """Energy, ⟨|m|⟩, χ, C and U₄ against T (one curve per lattice size, reweighted curves as lines)."""
    def panel(q):
        keys = sorted(k for k in res.values if k == q or (k.startswith(q + "_L") and k[len(q) + 2:].isdigit()))

        def d(ax):
            for i, key in enumerate(keys):
                sfx = key[len(q):]
                v, e = value(res, key)
                name = f"L = {sfx[2:]}" if sfx else ""
                ax.errorbar(res.axes["temperatures" + sfx], v, e, marker="o", ms=3, ls="none", color=f"C{i}",
                            label=name or "Monte Carlo ± jackknife error")
                curve = res.axes.get(f"reweighted_{q}{sfx}")
                if curve is not None and "reweight_T" + sfx in res.axes:
                    ax.plot(res.axes["reweight_T" + sfx], curve, lw=0.8, color=f"C{i}",
                            label=f"reweighted{', ' + name if name else ''}")
            labels(ax, "temperatures", q)
            legend(ax)
        return Panel(q, d, tuple(keys))
    return [Figure("observables", [panel(q) for q in OBSERVABLES if q in res.values
                                    or any(k.startswith(q + "_L") for k in res.values)])]


@figure_function
def plot_binder(res) -> list[Figure]:
    """U₄(T) reweighted per L, with the crossing temperatures and their error bands."""
    def d(ax):
        for k in sorted((k for k in res.axes if k.startswith("U_L")), key=lambda k: int(k[3:])):
            ax.plot(res.axes["grid"], res.axes[k], label=f"L = {k[3:]}")
        tc, te = value(res, "T_c")
        te = np.zeros_like(tc) if te is None else te
        for i, (t, e) in enumerate(zip(np.atleast_1d(tc), np.atleast_1d(te))):
            ax.axvspan(t - e, t + e, alpha=0.2, color="grey", label="crossing T_c ± error" if i == 0 else None)
        labels(ax, "temperatures", "binder", "Binder cumulant U₄ vs T: crossings")
        legend(ax)
    return [Figure("binder_crossing", [Panel("binder_crossing", d, ("T_c", "U_cross"))], (5.5, 4.2))]


@figure_function
def plot_correlators(res) -> list[Figure]:
    """G_s(r) and G_ε(r) per temperature, log-log."""
    def panel(q):
        def d(ax):
            r = np.asarray(res.axes["r"])
            v, e = value(res, q)
            for i, T in enumerate(res.axes["temperatures"]):
                ax.errorbar(r[1:], v[i, 1:], None if e is None else e[i, 1:], ms=2, marker="o", lw=0.8,
                            label=T_label(T))
            ax.set_xscale("log")
            ax.set_yscale("log")
            labels(ax, "r", q)
            legend(ax, fontsize=6)
        return Panel(q, d, (q,))
    return [Figure("correlators", [panel(q) for q in ("G_s", "G_eps") if q in res.values], (4.8, 3.8))]


FIT_FORMS = {"plain": "power-law fit in r", "chord": "power-law fit in chord distance",
             "fss_m2": "finite-size scaling of ⟨m²⟩", "fss_G": "finite-size scaling of G(r ∝ L)"}


@figure_function
def plot_scaling(res) -> list[Figure]:
    """Δ_s and Δ_ε against T from each fit form."""
    def panel(q):
        keys = [k for k in (f"{q}_plain", f"{q}_chord", f"{q}_fss_m2" if q == "delta_s" else f"{q}_fss_G")
                if k in res.values]

        def d(ax):
            for key in keys:
                v, e = value(res, key)
                T = res.axes["temperatures"] if len(v) == len(res.axes["temperatures"]) else np.arange(len(v))
                ax.errorbar(T, v, e, marker="o", ms=3, label=FIT_FORMS.get(key[len(q) + 1:], key))
            labels(ax, "temperatures", q)
            legend(ax)
        return Panel(q, d, tuple(keys))
    panels = [panel(q) for q in ("delta_s", "delta_eps")]
    return [Figure("scaling_dimensions", [p for p in panels if p.quantities], (4.8, 3.8))]


@figure_function
def plot_mi(res) -> list[Figure]:
    """I(A;B) in bits against T, one curve per pair kind."""
    keys = [k for k in res.values if k.startswith("I_")]

    def d(ax):
        for k in keys:
            v, e = value(res, k)
            ax.errorbar(res.axes["temperatures"], v, e, marker="o", ms=3, label=k[2:].replace("_", " "))
        labels(ax, "temperatures", "I", "mutual information I vs T")
        legend(ax)
    return [Figure("mutual_information", [Panel("mutual_information", d, tuple(keys))], (5.5, 4.2))]


@figure_function
def plot_block_rg(res) -> list[Figure]:
    """⟨|m|⟩, nearest-neighbour correlation and U₄ of the block spins against the level."""
    return [Figure("block_rg", [per_temperature(res, q, "level") for q in ("abs_m", "nn", "binder")])]


@figure_function
def plot_mcrg(res) -> list[Figure]:
    """MCRG y_t and y_h per level step, beside the exact 2D Ising values."""
    return [Figure("mcrg", [per_temperature(res, q, "level_from", exact=x, exact_label="2D Ising exact")
                            for q, x in (("y_t", 1.0), ("y_h", 15 / 8))], (4.8, 3.6))]


@figure_function
def plot_decimation(res) -> list[Figure]:
    """The decimated chain's coupling K per step, measured (points) and exact (dashed)."""
    def d(ax):
        v, e = value(res, "K")
        x = value(res, "K_exact")[0]
        for i, T in enumerate(res.axes["temperatures"]):
            ax.errorbar(res.axes["step"], v[i], None if e is None else e[i], marker="o", ms=3, label=T_label(T),
                        color=f"C{i}")
            ax.plot(res.axes["step"], x[i], "--", lw=0.8, color=f"C{i}", label="exact" if i == 0 else None)
        labels(ax, "step", "K", "coupling K vs decimation step")
        legend(ax, fontsize=6)
    return [Figure("decimation_1d", [Panel("K", d, ("K", "K_exact"))], (5.5, 4.2))]

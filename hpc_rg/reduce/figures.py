"""Figures of the built-in reductions, drawn from a Result's values/axes only.

Every `plot_<name>(res, folder=None, *, ax=None, panels=None)`:
  - with `folder`: writes each of its figures as `<folder>/<figure>.png` (150 dpi) and `.pdf` beside it,
    closes them, and returns the PNG paths (what the analyze stage calls on rank 0);
  - with `ax` (a matplotlib Axes, or a sequence/array of them): draws the selected panels into those axes
    (one Axes per panel), returns `ax`, and neither saves nor closes anything (a notebook's own figure);
  - with neither: returns new matplotlib Figures, unsaved, for the caller to show or save.
`panels` names the panels to draw (their keys are listed by `panel_keys(res, plot_fn)`); by default the
panels of the reduction's first figure. Axis labels, units and titles come from `hpc_rg.reduce.labels`.
`result_from_file(path, name)` reads a reduction back from results.h5 for them (redraw without rerunning).

matplotlib is imported only when something is drawn. Files are drawn on bare `matplotlib.figure.Figure`s
(Agg for PNG), never through pyplot, so a headless rank 0 needs no display and a notebook's backend is
left alone; only figures handed back (neither folder nor ax) are pyplot figures.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import numpy as np

from hpc_rg.reduce.labels import axis_label, label, title

__all__ = ["Panel", "Figure", "DPI", "draw", "panel_keys", "figure_of", "result_from_file", "save", "plot_observables", "plot_binder",
           "plot_correlators", "plot_scaling", "plot_mi", "plot_block_rg", "plot_mcrg", "plot_decimation",
           "PLOTS"]

DPI = 150


class Panel(NamedTuple):
    key: str                                   # what `panels=` selects
    draw: Callable                             # draw(ax): everything, labels and title included
    quantities: tuple[str, ...] = ()           # the results.h5 names it shows (the report links them)


class Figure(NamedTuple):
    name: str                                  # file stem
    panels: list[Panel]
    panel_size: tuple[float, float] = (4.2, 3.4)
    cols: int = 3
    suptitle: str = ""


# ---------------------------------------------------------------------------------------------- machinery

def _plt():
    """pyplot, for figures handed back to the caller (a notebook shows them with its own backend)."""
    import matplotlib.pyplot as plt
    return plt


def new_figure(size, pyplot: bool = False):
    """A figure to draw into: a pyplot one (`pyplot`, for the caller to show), or a bare
    matplotlib.figure.Figure that pyplot never sees (files: the Agg renderer for PNG, no backend is
    chosen or switched, nothing global to close, safe on a headless rank 0)."""
    if pyplot:
        return _plt().figure(figsize=size)
    from matplotlib.figure import Figure
    return Figure(figsize=size)


def save(fig, folder: Path, name: str) -> Path:
    """`<folder>/<name>.png` at DPI and `<name>.pdf` beside it; a pyplot figure is closed. Returns the PNG."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    fig.savefig(path, dpi=DPI)
    fig.savefig(path.with_suffix(".pdf"))
    if getattr(fig.canvas, "manager", None) is not None:     # made by pyplot: let it go
        _plt().close(fig)
    return path


def _axes_list(ax) -> list:
    if hasattr(ax, "plot"):                    # one Axes
        return [ax]
    return list(np.asarray(ax, dtype=object).ravel())


# what a panel raises when a file's arrays do not have the shapes it draws (a 0-d value, 5 values for 3
# temperatures, a missing axis)
UNDRAWABLE = (KeyError, IndexError, ValueError, TypeError)


def _drawn(p: Panel, ax, source) -> None:
    """p.draw(ax); for a result read from a file (`source`: (path, reduction)), an array that cannot be drawn
    is a FileError naming the file, not matplotlib's words about x and y."""
    if source is None:
        p.draw(ax)
        return
    try:
        p.draw(ax)
    except UNDRAWABLE as e:
        raise _undrawable(source, f"panel {p.key!r}", e) from None


def _undrawable(source, what: str, e: BaseException):
    from hpc_rg.io.ensemble import FileError
    path, reduction = source
    return FileError(path, f"/{reduction} cannot be drawn ({what}: {type(e).__name__}: {e}); its arrays do "
                           "not have the shapes this reduction writes (damaged, or not written by hpc-rg)")


def draw(figures: list[Figure], folder=None, ax=None, panels: Sequence[str] | str | None = None, source=None):
    """The common body of every plot function (see the module docstring)."""
    if ax is not None:
        everything = {p.key: p for f in figures for p in f.panels}
        if panels is None:
            chosen = figures[0].panels if figures else []
        else:
            keys = [panels] if isinstance(panels, str) else list(panels)
            unknown = [k for k in keys if k not in everything]
            if unknown:
                raise ValueError(f"panels {unknown} not drawn by this figure; known: {sorted(everything)}")
            chosen = [everything[k] for k in keys]
        axes = _axes_list(ax)
        if len(axes) != len(chosen):
            raise ValueError(f"{len(axes)} axes given for {len(chosen)} panels ({[p.key for p in chosen]}): "
                             f"pass one Axes per panel, or choose panels=")
        for a, p in zip(axes, chosen):
            _drawn(p, a, source)
        return ax
    made = []
    for f in figures:
        n = len(f.panels)
        if n == 0:                                 # nothing of this figure in the result: no empty file
            continue
        cols = max(1, min(n, f.cols))
        rows = -(-n // cols)
        fig = new_figure((f.panel_size[0] * cols, f.panel_size[1] * rows), pyplot=folder is None)
        axes = fig.subplots(rows, cols, squeeze=False)
        for a in axes.ravel()[n:]:
            a.remove()
        try:
            for a, p in zip(axes.ravel(), f.panels):
                _drawn(p, a, source)
        except BaseException:
            if getattr(fig.canvas, "manager", None) is not None:     # a pyplot figure: not left open
                _plt().close(fig)
            raise
        if f.suptitle:
            fig.suptitle(f.suptitle)
        fig.tight_layout()
        made.append(save(fig, folder, f.name) if folder is not None else fig)
    return made


def panel_keys(res, plot_fn) -> dict[str, list[str]]:
    """{figure file stem: [panel keys]} of what `plot_fn` draws for `res` (nothing is drawn)."""
    return {f.name: [p.key for p in f.panels] for f in plot_fn.figures(res)}


def figure_of(res, plot_fn) -> dict[str, str]:
    """{results.h5 name: figure file stem that shows it} (the report links arrays to their figure)."""
    out = {}
    for f in plot_fn.figures(res):
        for p in f.panels:
            for q in p.quantities:
                out.setdefault(q, f.name)
    return out


def figure_function(build: Callable[..., list[Figure]]):
    """Turn `build(res) -> [Figure]` into the public `plot_x(res, folder=None, *, ax=None, panels=None)`."""
    def plot(res, folder=None, *, ax=None, panels=None):
        source = getattr(res, "source", None)           # (path, reduction) of result_from_file
        if source is None:
            return draw(build(res), folder, ax, panels)
        try:
            figures = build(res)
        except UNDRAWABLE as e:
            raise _undrawable(source, plot.__name__, e) from None
        return draw(figures, folder, ax, panels, source)
    plot.__name__ = plot.__qualname__ = build.__name__.lstrip("_").replace("figures_", "plot_")
    plot.__doc__ = (build.__doc__ or "") + "\n\nSee hpc_rg.reduce.figures for folder=, ax= and panels=."
    plot.figures = build
    return plot


def result_from_file(path, reduction: str):
    """The `reduction` group of a results.h5, as the figure functions take it (values, axes, attrs), e.g. in
    a notebook: `plot_observables(result_from_file("runs/x/results.h5", "observables"), ax=ax, panels="abs_m")`."""
    from hpc_rg.io.ensemble import FileError, open_hdf5
    from hpc_rg.reduce.results import FORMAT
    from hpc_rg.report.arrays import read_reductions
    with open_hdf5(path, f"a results file ({FORMAT})") as f:      # a folder, not HDF5, truncated: one line
        fmt = f.attrs.get("format")
    if (fmt.decode() if isinstance(fmt, bytes) else fmt) != FORMAT:
        raise FileError(path, f"attribute format = {fmt!r}: expected {FORMAT!r} (not a results file)")
    found = read_reductions(path)
    for red in found:
        if red.name == reduction:
            res = red.as_result()
            res.source = (str(path), reduction)      # plot functions name the file when its arrays are odd
            return res
    raise KeyError(f"{path}: no reduction {reduction!r} (it holds {[r.name for r in found]})")


def legend(ax, **kw) -> None:
    """A legend only when something carries a label (matplotlib warns on an empty one)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=kw.pop("fontsize", 7), **kw)


def labels(ax, x: str, y: str, heading: str | None = None) -> None:
    ax.set_xlabel(axis_label(x))
    ax.set_ylabel(axis_label(y))
    ax.set_title(heading if heading is not None else title(y, x))


def T_label(T) -> str:
    return f"T = {float(T):.4g}"


def value(res, q):
    v, e = res.values[q]
    return np.asarray(v), (None if e is None else np.asarray(e))


# ---------------------------------------------------------------------------------------------- built-ins

OBSERVABLES = ("energy", "abs_m", "susceptibility", "specific_heat", "binder")


def _figures_observables(res) -> list[Figure]:
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


def _figures_binder(res) -> list[Figure]:
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


def _figures_correlators(res) -> list[Figure]:
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


def _figures_scaling(res) -> list[Figure]:
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


def _figures_mi(res) -> list[Figure]:
    """I(A;B) in bits against T, one curve per pair kind."""
    keys = [k for k in res.values if k.startswith("I_")]

    def d(ax):
        for k in keys:
            v, e = value(res, k)
            ax.errorbar(res.axes["temperatures"], v, e, marker="o", ms=3, label=k[2:].replace("_", " "))
        labels(ax, "temperatures", "I", "mutual information I vs T")
        legend(ax)
    return [Figure("mutual_information", [Panel("mutual_information", d, tuple(keys))], (5.5, 4.2))]


def _per_temperature(res, q, x, heading=None, exact=None, exact_label="exact"):
    def d(ax):
        v, e = value(res, q)
        for i, T in enumerate(res.axes["temperatures"]):
            ax.errorbar(res.axes[x], v[i], None if e is None else e[i], marker="o", ms=3, label=T_label(T))
        if exact is not None:
            ax.axhline(exact, color="grey", ls="--", lw=0.8, label=exact_label)
        labels(ax, x, q, heading)
        legend(ax, fontsize=6)
    return Panel(q, d, (q,))


def _figures_block_rg(res) -> list[Figure]:
    """⟨|m|⟩, nearest-neighbour correlation and U₄ of the block spins against the level."""
    return [Figure("block_rg", [_per_temperature(res, q, "level") for q in ("abs_m", "nn", "binder")])]


def _figures_mcrg(res) -> list[Figure]:
    """MCRG y_t and y_h per level step, beside the exact 2D Ising values."""
    return [Figure("mcrg", [_per_temperature(res, q, "level_from", exact=x, exact_label="2D Ising exact")
                            for q, x in (("y_t", 1.0), ("y_h", 15 / 8))], (4.8, 3.6))]


def _figures_decimation(res) -> list[Figure]:
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


plot_observables = figure_function(_figures_observables)
plot_binder = figure_function(_figures_binder)
plot_correlators = figure_function(_figures_correlators)
plot_scaling = figure_function(_figures_scaling)
plot_mi = figure_function(_figures_mi)
plot_block_rg = figure_function(_figures_block_rg)
plot_mcrg = figure_function(_figures_mcrg)
plot_decimation = figure_function(_figures_decimation)

# reduction name -> its figure function (the report links arrays to figures with it; the diagnostics add
# theirs in hpc_rg.reduce.diagnostics_figures.PLOTS)
PLOTS = {"observables": plot_observables, "binder_crossing": plot_binder, "correlators": plot_correlators,
         "scaling_dimensions": plot_scaling, "mutual_information": plot_mi, "block_rg": plot_block_rg,
         "mcrg": plot_mcrg, "decimation_1d": plot_decimation}

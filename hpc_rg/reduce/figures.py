"""How reductions draw their Results: the figure machinery, shared panels, and `plots()`, every reduction's
figure function by reduction name (the FIGURE of its spec: `registry.figure_function`). The figure functions
themselves live in `ensemble_figures` and `model_figures` (reachable here too, e.g. `figures.plot_mcrg`).

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

from hpc_rg.reduce.labels import axis_label, title

__all__ = ["Panel", "Figure", "DPI", "draw", "panel_keys", "figure_of", "result_from_file", "save", "plots",
           "figure_function", "per_temperature", "mosaic", "gallery"]

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
    """Decorator: `plot_x(res) -> [Figure]` becomes the public `plot_x(res, folder=None, *, ax=None,
    panels=None)`; the builder stays reachable as `plot_x.figures`."""
    def plot(res, folder=None, *, ax=None, panels=None):
        source = getattr(res, "source", None)           # (path, reduction) of result_from_file
        if source is None:
            return draw(build(res), folder, ax, panels)
        try:
            figures = build(res)
        except UNDRAWABLE as e:
            raise _undrawable(source, plot.__name__, e) from None
        return draw(figures, folder, ax, panels, source)
    plot.__name__ = plot.__qualname__ = build.__name__
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


def per_temperature(res, q, x, heading=None, exact=None, exact_label="exact"):
    """A panel of quantity q (temperature, x) against axis x, one curve per temperature (an optional exact
    value as a dashed line)."""
    def d(ax):
        v, e = value(res, q)
        for i, T in enumerate(res.axes["temperatures"]):
            ax.errorbar(res.axes[x], v[i], None if e is None else e[i], marker="o", ms=3, label=T_label(T))
        if exact is not None:
            ax.axhline(exact, color="grey", ls="--", lw=0.8, label=exact_label)
        labels(ax, x, q, heading)
        legend(ax, fontsize=6)
    return Panel(q, d, (q,))


def mosaic(stack, cols: int | None = None, normalise: bool = True) -> np.ndarray:
    """Images (n, h, w) (or (n, w) chains) tiled into one array with NaN gutters; each tile divided by its
    largest |value| when `normalise` (so one colour scale reads every tile)."""
    imgs = [np.asarray(i, dtype=float) for i in stack]
    imgs = [i.reshape(1, -1) if i.ndim == 1 else i for i in imgs]
    n = len(imgs)
    cols = cols or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    h = max(i.shape[0] for i in imgs)
    w = max(i.shape[1] for i in imgs)
    out = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1), np.nan)
    for k, img in enumerate(imgs):
        if normalise:
            img = img / (float(np.nanmax(np.abs(img))) or 1.0)
        r, c = divmod(k, cols)
        out[r * (h + 1):r * (h + 1) + img.shape[0], c * (w + 1):c * (w + 1) + img.shape[1]] = img
    return out


def colour_map(name: str, gutter: str):
    """A colour map whose NaN (the gutters between tiles) is a colour no tile uses."""
    import matplotlib
    return matplotlib.colormaps[name].with_extremes(bad=gutter)


def gallery(key, stack, heading, quantity, cols=None):
    """A panel of a stack of images (fields, maps, kernels) tiled into one mosaic on one colour scale."""
    def d(ax):
        im = ax.imshow(mosaic(stack, cols), cmap=colour_map("RdBu_r", "0.7"), vmin=-1, vmax=1, interpolation="nearest")
        ax.set_axis_off()
        ax.set_title(heading, fontsize=9)
        ax.figure.colorbar(im, ax=ax, shrink=0.7, label="value / largest |value| of its tile (dimensionless)")
    return Panel(key, d, (quantity,))


def plots() -> dict[str, Callable]:
    """{reduction name: its figure function} for every declared reduction that draws one."""
    from hpc_rg.reduce import registry
    found = {name: registry.figure_function(name) for name in registry.declared()}
    return {name: fn for name, fn in found.items() if fn is not None}


def __getattr__(name: str):
    """Each reduction's figure function by its name (`from hpc_rg.reduce.figures import plot_observables`, the
    notebook API of docs/python-api.md), wherever the reduction declares it; `PLOTS` is `plots()`."""
    if name == "PLOTS":
        return plots()
    if name.startswith("plot_"):
        for fn in plots().values():
            if fn.__name__ == name:
                return fn
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""The numbers of results.h5 as report markdown: scalars in one table, small arrays as tables with their
axis values, larger ones as one line (shape, range) that links the figure showing them.

Reads the file's layout directly (one group per reduction, `<q>` and `<q>_err`, `axes/<a>`; HDF5 dimension
scales, where the writer attached them, name an array's axes; otherwise an axis is found by its length),
so that it depends on nothing but the format. Names are said with `hpc_rg.reduce.labels` (or the dataset's
own `long_name`/`units` attributes when the file carries them).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hpc_rg.reduce.labels import Label, label, unit_text
from hpc_rg.reduce.registry import Result
from hpc_rg.report.markdown import code, inline, table
from hpc_rg.summary import format_value

__all__ = ["Reduction", "read_reductions", "reduction_markdown", "error_bar_problem", "refuse_error_bar",
           "refuse_unreadable", "SMALL_1D", "SMALL_2D", "LOAD_LIMIT", "SCAN_LIMIT"]

SMALL_1D = 20          # a 1-D array of at most this many values is a table
SMALL_2D = 8           # a 2-D array of at most SMALL_2D x SMALL_2D values is a table
# The report shows a large array by its shape and range only, so it need not hold it: beyond LOAD_LIMIT
# values (32 MiB of float64) the range is found slab by slab, beyond SCAN_LIMIT (2 GiB) not at all; a
# results.h5 can declare a dataset far larger than itself (unwritten chunks read as the fill value)
LOAD_LIMIT = 1 << 22
SCAN_LIMIT = 1 << 28


@dataclass
class Quantity:
    name: str
    value: np.ndarray
    error: np.ndarray | None
    label: Label
    dims: list[str]                       # axis name per dimension ("" where none matches)
    shape: tuple[int, ...] = ()
    unread: str = ""                      # value None: too large to read whole; its range, in words


@dataclass
class Reduction:
    name: str
    attrs: dict
    axes: dict[str, np.ndarray]
    quantities: list[Quantity] = field(default_factory=list)

    def as_result(self) -> "StoredResult":
        """The Result the reduction returned when it ran (values as (value, error), axes, attrs): what the
        figure functions draw, so a figure has one implementation whether drawn at analyze time or later."""
        return StoredResult(values={q.name: (q.value, q.error) for q in self.quantities if q.value is not None},
                            axes=dict(self.axes), attrs=dict(self.attrs))


class StoredResult(Result):
    """A Result read back from results.h5. It is the Result the figure functions take, and it can also be
    read as the file's groups are laid out: `r["q"]`, `r["q_err"]` (absent where no error is stored),
    `r["axes"]`, `r["attrs"]`, `"q" in r`, `r.get("q")` (the comparator and the studies' figure scripts)."""

    def _lookup(self, key: str):
        if key == "axes":
            return self.axes
        if key == "attrs":
            return self.attrs
        if key in self.values:
            return self.values[key][0]
        if key.endswith("_err") and key[:-4] in self.values and self.values[key[:-4]][1] is not None:
            return self.values[key[:-4]][1]
        raise KeyError(key)

    def __getitem__(self, key: str):
        return self._lookup(key)

    def __contains__(self, key) -> bool:
        try:
            self._lookup(key)
        except KeyError:
            return False
        return True

    def get(self, key: str, default=None):
        return self[key] if key in self else default

    def __iter__(self):
        for q, (_, e) in self.values.items():
            yield q
            if e is not None:
                yield q + "_err"
        yield from ("axes", "attrs")


def read_results(path: Path) -> dict[str, StoredResult]:
    """{reduction: StoredResult} of a results.h5 (every quantity read; damaged arrays and error bars that do
    not fit their values refused with one line naming the file)."""
    return {red.name: red.as_result() for red in read_reductions(path)}


def _text(v) -> str:
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, np.ndarray) and v.dtype.kind in "SO" and v.size == 1:
        return _text(v.reshape(-1)[0])
    return str(v)


def _label(name: str, ds) -> Label:
    lab = label(name)
    long_name, units = ds.attrs.get("long_name"), ds.attrs.get("units")
    return Label(_text(long_name) if long_name is not None else lab.long_name, lab.symbol,
                 _text(units) if units is not None else lab.unit)


def _dims(ds, shape: tuple[int, ...], axes: dict) -> list[str]:
    names = []
    for i, n in enumerate(shape):
        found = ""
        try:                                                 # dimension scales, when the writer attached them
            scales = list(ds.dims[i].values())
            if scales:
                found = scales[0].name.rsplit("/", 1)[-1]
        except (RuntimeError, KeyError, ValueError, TypeError):
            found = ""
        if not found or found not in axes:
            fits = [a for a, v in axes.items() if np.ndim(v) == 1 and len(v) == n and a not in names]
            # results are (temperature, ...) by convention: prefer it for the first dimension; otherwise
            # only an axis that is the one of this length (two candidates: say none rather than guess)
            pref = [a for a in fits if a.startswith("temperatures")] if i == 0 else []
            found = pref[0] if pref else (fits[0] if len(fits) == 1 else "")
        names.append(found)
    return names


def error_bar_problem(value: np.ndarray, error: np.ndarray) -> str | None:
    """Why `error` cannot be read as the error bar of `value`, element by element (None when it can).
    A shorter or longer error array would pair numbers with the wrong error bars without a word."""
    if error.dtype.kind not in "fiu":
        return f"holds {error.dtype} values, not numbers"
    if error.shape != value.shape:
        return f"has shape {error.shape}, its value {value.shape}"
    return None


def refuse_error_bar(path, group: str, q: str, value: np.ndarray, error: np.ndarray) -> None:
    """FileError (one line, exit 2 from the CLI) when `error` cannot be `value`'s error bar."""
    why = error_bar_problem(value, error)
    if why:
        from hpc_rg.io.ensemble import FileError
        raise FileError(path, f"/{group}/{q}_err {why}: an error bar must be numbers of the shape of "
                              f"/{group}/{q}; the file is damaged or was not written by hpc-rg (re-create it)")


def refuse_unreadable(path, d, vast_ok: bool = False) -> None:
    """FileError, before anything is read, for a dataset that cannot be read faithfully: more than
    SCAN_LIMIT values (a results.h5 can declare 10^12 values in a few KiB; numpy would fail with a
    MemoryError), or a virtual dataset whose source files are missing or damaged (HDF5 would read its
    fill value there without a word: zeros as results). `vast_ok`: the caller reads it by slabs, or not."""
    from hpc_rg.io.ensemble import FileError, check_sources, hdf5_reason
    if d.is_virtual:
        try:
            check_sources(Path(path), d)
        except FileError:
            raise
        except (ValueError, OSError, RuntimeError) as e:       # mappings HDF5 cannot even list
            raise FileError(path, f"{d.name} is a virtual dataset whose sources cannot be checked "
                                  f"({hdf5_reason(e)}); hpc-rg never writes one in a results file") from None
    if d.size > SCAN_LIMIT and not vast_ok:
        raise FileError(path, f"{d.name} declares {d.size} values of shape {tuple(d.shape)} "
                              f"({d.size * d.dtype.itemsize / 2**30:.3g} GiB), more than a results file holds "
                              f"({SCAN_LIMIT} at most): damaged, or not written by hpc-rg; read it with h5py by slabs")


def _slabs(shape: tuple[int, ...], limit: int):
    """Basic selections that tile an array of `shape` in C order, each of at most `limit` values."""
    k = next(k for k in range(len(shape)) if int(np.prod(shape[k + 1:])) <= limit)
    width = max(1, limit // int(np.prod(shape[k + 1:])))
    for head in np.ndindex(*shape[:k]):
        for start in range(0, shape[k], width):
            yield head + (slice(start, start + width),)


def _range_words(ds) -> str:
    """'from a to b' of the finite values of a large dataset, read LOAD_LIMIT values at a time."""
    if ds.size > SCAN_LIMIT:
        return f"range not computed ({ds.size} values)"
    lo, hi = np.inf, -np.inf
    for sel in _slabs(ds.shape, LOAD_LIMIT):
        a = ds[sel]
        a = a[np.isfinite(a)]
        if a.size:
            lo, hi = min(lo, a.min()), max(hi, a.max())
    return f"from {lo:.4g} to {hi:.4g}" if lo <= hi else "no finite values"


def read_reductions(path: Path, load_limit: int | None = None) -> list[Reduction]:
    """Every reduction group of a results.h5 (the caller has checked the format). With `load_limit`, a
    quantity of more values is not read (value None, `unread` its range): the report's way."""
    import h5py
    out = []
    with h5py.File(path, "r") as f:
        for name, g in f.items():
            if not isinstance(g, h5py.Group):
                continue
            group = g.get("axes")
            axes = {}
            for a, d in (group.items() if isinstance(group, h5py.Group) else ()):
                if not isinstance(d, h5py.Dataset) or (load_limit is not None and d.size > load_limit):
                    continue                        # the report: an axis too long to tabulate is not read
                refuse_unreadable(path, d)
                axes[a] = d[()]
            red = Reduction(name, {k: g.attrs[k] for k in g.attrs}, axes)
            for q, ds in g.items():
                if not isinstance(ds, h5py.Dataset) or q.endswith("_err") or ds.is_scale:
                    continue
                if load_limit is not None and ds.size > load_limit and ds.dtype.kind in "fiu":
                    refuse_unreadable(path, ds, vast_ok=True)
                    red.quantities.append(Quantity(q, None, None, _label(q, ds), _dims(ds, ds.shape, axes),
                                                   tuple(ds.shape), _range_words(ds)))
                    continue
                refuse_unreadable(path, ds)
                v = np.asarray(ds[()])
                if v.dtype.kind not in "fiub":
                    continue
                e = g.get(q + "_err")
                if isinstance(e, h5py.Dataset):
                    refuse_unreadable(path, e)
                    e = np.asarray(e[()])
                    refuse_error_bar(path, name, q, v, e)
                else:
                    e = None
                red.quantities.append(Quantity(q, v, e, _label(q, ds), _dims(ds, v.shape, axes), v.shape))
            out.append(red)
    return out


def _head(lab: Label, name: str, words: bool = False) -> str:
    unit = f" ({inline(unit_text(lab.unit))})" if lab.unit else ""
    return f"{inline(lab.long_name if words else lab.symbol)}{unit}"


def _num(v, e=None) -> str:
    v = float(v)
    return format_value(v, float(e)) if e is not None and np.isfinite(e) else f"{v:.6g}"


def _axis_values(red: Reduction, dim: str, n: int) -> list[str]:
    if dim and dim in red.axes and len(red.axes[dim]) == n:
        return [inline(_text(x)) if isinstance(x, (bytes, str)) else f"{float(x):.6g}" for x in red.axes[dim]]
    return [str(i) for i in range(n)]


def _axis_head(dim: str) -> str:
    return _head(label(dim), dim) if dim else "index"


def reduction_markdown(red: Reduction, figure_of: dict[str, str], figures_dir: str = "figures",
                       have: set[str] = frozenset()) -> list[str]:
    """Scalars (one table), 1-D arrays grouped by their axis (one table per axis), 2-D tables, and a line
    per larger array linking its figure (`figure_of`: name -> figure stem; `have`: the stems on disk)."""
    out: list[str] = []
    scalars, by_axis, listed, two_d, large = [], {}, [], [], []
    for q in red.quantities:
        if q.value is None:
            large.append(q)
        elif q.value.size == 1:
            scalars.append(q)
        elif q.value.ndim == 1 and q.value.size <= SMALL_1D and not q.dims[0]:
            listed.append(q)              # per repeat / per filter: no axis to tabulate against
        elif q.value.ndim == 1 and q.value.size <= SMALL_1D:
            by_axis.setdefault(q.dims[0], []).append(q)
        elif q.value.ndim == 2 and max(q.value.shape) <= SMALL_2D:
            two_d.append(q)
        else:
            large.append(q)
    if scalars:
        rows = [[inline(q.label.long_name), code(q.name),
                 _num(q.value.reshape(-1)[0], None if q.error is None else q.error.reshape(-1)[0]),
                 inline(unit_text(q.label.unit)) if q.label.unit else ""] for q in scalars]
        out += table(["quantity", "name", "value ± error", "unit"], rows) + [""]
    for dim, qs in by_axis.items():
        n = len(qs[0].value)
        groups = [[q for q in qs if len(q.value) == n]] + [[q] for q in qs if len(q.value) != n]
        for group in groups:
            if not group:
                continue
            m = len(group[0].value)
            symbols = [q.label.symbol for q in group]
            # one symbol for several columns (I of blocks, of images, ...): say each in words instead
            header = [_axis_head(dim)] + [_head(q.label, q.name, symbols.count(q.label.symbol) > 1) for q in group]
            rows = [[x] + [_num(q.value[i], None if q.error is None else q.error[i]) for q in group]
                    for i, x in enumerate(_axis_values(red, dim, m))]
            names = ", ".join(f"{inline(q.label.long_name)} ({code(q.name)})" for q in group)
            out += [f"Against {inline(label(dim).long_name) if dim else 'index'}: {names}.", ""]
            out += table(header, rows) + [""]
    for q in two_d:
        r, c = q.value.shape
        cols = _axis_values(red, q.dims[1], c)
        head = f"{_axis_head(q.dims[0])} ↓, {_axis_head(q.dims[1])} →"
        rows = [[x] + [_num(q.value[i, j], None if q.error is None else q.error[i, j]) for j in range(c)]
                for i, x in enumerate(_axis_values(red, q.dims[0], r))]
        unit = f", {inline(unit_text(q.label.unit))}" if q.label.unit else ""
        out += [f"{inline(q.label.long_name)} ({code(q.name)}{unit}):", ""]
        out += table([head] + cols, rows) + [""]
    if listed:
        for q in listed:
            unit = f" ({inline(unit_text(q.label.unit))})" if q.label.unit else ""
            values = ", ".join(_num(v, None if q.error is None else e) for v, e in
                               zip(q.value, q.value if q.error is None else q.error)) or "no values"
            out.append(f"- {inline(q.label.long_name)} ({code(q.name)}){unit}: {values}")
        out.append("")
    if large:
        out.append("Larger arrays (in results.h5):")
        out.append("")
        for q in large:
            if q.value is None:
                rng = q.unread
            else:
                finite = q.value[np.isfinite(q.value)]
                rng = f"from {finite.min():.4g} to {finite.max():.4g}" if finite.size else "no finite values"
            unit = f" {inline(unit_text(q.label.unit))}" if q.label.unit and q.label.unit != "1" else ""
            stem = figure_of.get(q.name)
            fig = f"; shown in [{inline(stem)}]({figures_dir}/{stem}.png)" if stem and stem in have else ""
            out.append(f"- {inline(q.label.long_name)} ({code(q.name)}): shape {q.shape}, "
                       f"{rng}{unit}{fig}")
        out.append("")
    return out

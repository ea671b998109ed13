"""`hpc_rg.read_results(path)`: results.h5 as one `xarray.Dataset` per reduction, and as tidy rows.

In a Dataset, each quantity `<q>` of the file is a variable, its error bar `<q>_error` beside it (the file's
`<q>_err`; linked by the CF attribute `ancillary_variables`; a quantity named like an axis, e.g. `r`,
becomes `r_value`), the reduction's axes are coordinates (`temperature`, `r`, `level`, ...) and its attributes the
Dataset's. `Results.to_dataframe()` flattens every quantity into rows (reduction, quantity, T, L, value,
error, and a column per other named axis), ready for pandas/seaborn.

Which axis of a quantity is which: from the HDF5 dimension scales when the file has them (exact); in
files without them, by length: the first axis is the temperature when it has as many entries as the
reduction's temperatures, and the second axis of a two-axis quantity is the one axis of the same
length (r, level, ...). Any other axis gets a generic name `<q>_dim_<i>`, so every quantity comes through
with its numbers, whatever its shape. The attribute `dims_from` of each variable says which rule named it.
Quantities of one size among several (`abs_m_L32` of a multi-size observables run) carry `quantity` and `L`
attributes and their own temperature axis `temperature_L32`.

The report, the comparator and the studies' figure scripts read the same file as Result objects, the ones
the figure functions draw (`hpc_rg.report.arrays.read_results`: {reduction: Result}).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import h5py
import numpy as np

from hpc_rg.io.ensemble import FileError, hdf5_reason, open_hdf5
from hpc_rg.io.xarray_view import xr
from hpc_rg.report.arrays import refuse_error_bar, refuse_unreadable
from hpc_rg.reduce.results import FORMAT

__all__ = ["Results", "load_results", "reduction_dataset", "tidy_rows"]

TEMPERATURE_AXIS = re.compile(r"^(?:temperatures?|T)(?P<sfx>_L\d+)?$")
SIZE_TAG = re.compile(r"^(?P<q>.+)_L(?P<L>\d+)$")
# 1-D entries of axes/ that are curves, not coordinates: (name pattern, the coordinate they run over)
CURVES = ((re.compile(r"^reweighted_.+?(?P<sfx>_L\d+)?$"), "reweight_T{sfx}"),
          (re.compile(r"^U_L\d+$"), "grid"))
# attributes HDF5 and netCDF use for their own bookkeeping of dimension scales
HDF5_INTERNAL = {"CLASS", "NAME", "DIMENSION_LIST", "REFERENCE_LIST", "DIMENSION_LABELS",
                 "_Netcdf4Dimid", "_Netcdf4Coordinates", "_nc3_strict"}
FIXED_COLUMNS = ["reduction", "quantity", "T", "L", "value", "error"]


def _plain(v):
    """HDF5 values as Python/numpy a notebook expects: str for bytes, decoded string arrays."""
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, np.ndarray) and v.dtype.kind in "SO":
        return np.array([x.decode("utf-8", "replace") if isinstance(x, bytes) else x for x in v.ravel()],
                        dtype=object).reshape(v.shape)
    return v


def _attrs(obj) -> dict:
    return {k: _plain(v) for k, v in obj.attrs.items() if k not in HDF5_INTERNAL}


def dim_name(axis: str) -> str:
    """The Dataset's name of an axis of the file: temperatures -> temperature (temperatures_L32 ->
    temperature_L32), the others unchanged."""
    m = TEMPERATURE_AXIS.match(axis)
    return f"temperature{m.group('sfx') or ''}" if m else axis


def _scale_dims(d: h5py.Dataset) -> list[tuple[str, np.ndarray] | None]:
    """Per axis of d: (name, coordinate values) of its attached HDF5 dimension scale, or None."""
    out = []
    for dim in d.dims:
        name = dim[0].attrs.get("NAME", b"") if len(dim) else b""
        bare = (name if isinstance(name, bytes) else str(name).encode()).startswith(b"This is a netCDF dimension")
        if len(dim) and not bare:     # a bare netCDF dimension has no coordinate values: a generic axis
            scale = dim[0]
            out.append((dim.label or scale.name.rsplit("/", 1)[-1], _plain(scale[()])))
        else:
            out.append(None)
    return out


def _guess_dims(q: str, shape: tuple[int, ...], axes: dict[str, np.ndarray]) -> list[str | None]:
    """Axis names of a quantity of a file without dimension scales (module docstring), None = unknown."""
    tag = SIZE_TAG.match(q)
    temp = next((a for a in ([f"temperatures_L{tag.group('L')}"] if tag else []) + ["temperatures"]
                 if a in axes), None)
    out: list[str | None] = [None] * len(shape)
    if shape and temp is not None and len(axes[temp]) == shape[0]:
        out[0] = temp
    if len(shape) == 2 and out[0] is not None:
        same = [a for a, v in axes.items() if len(v) == shape[1] and not TEMPERATURE_AXIS.match(a)]
        if len(same) == 1:
            out[1] = same[0]
    return out


def _is_curve(name: str) -> str | None:
    for pattern, over in CURVES:
        m = pattern.match(name)
        if m:
            return over.format(sfx=(m.groupdict().get("sfx") or ""))
    return None


def _clip(values) -> str:
    return str(np.asarray(values).reshape(-1)[:4].tolist())[:60]


def _size(v):
    """A lattice size as the file has it: an int when it is one, else unchanged (int() would turn a
    damaged 8.5 into a plausible 8)."""
    v = np.asarray(v).item()
    return int(v) if isinstance(v, (int, float)) and float(v).is_integer() else v


def reduction_dataset(name: str, g: h5py.Group):
    """The Dataset of one reduction's group of results.h5 (module docstring)."""
    axes_group = g.get("axes")
    in_axes = list(axes_group.values()) if isinstance(axes_group, h5py.Group) else []
    for d in [*g.values(), *in_axes]:                   # before anything is read (MemoryError otherwise)
        if isinstance(d, h5py.Dataset):
            refuse_unreadable(g.file.filename, d)
    axes = {k: _plain(d[()]) for k, d in (axes_group.items() if isinstance(axes_group, h5py.Group) else [])
            if isinstance(d, h5py.Dataset) and not d.is_scale}      # scales name the axes' own axes
    axes = {k: v for k, v in axes.items() if np.ndim(v) == 1}       # coordinate candidates
    other_axes = {k: _plain(d[()]) for k, d in (axes_group.items() if isinstance(axes_group, h5py.Group) else [])
                  if isinstance(d, h5py.Dataset) and not d.is_scale and k not in axes}
    dsets = {k: d for k, d in g.items() if isinstance(d, h5py.Dataset) and not d.is_scale}
    errors = {k[:-4] for k in dsets if k.endswith("_err") and k[:-4] in dsets}
    coords: dict[str, tuple] = {}
    data: dict[str, tuple] = {}
    made_from: dict[str, str] = {}               # variable -> the file's dataset it holds

    def put(var: str, key: str, entry: tuple) -> None:
        """data[var] = entry, refusing a second dataset for one variable (a quantity `abs_m_error` beside
        `abs_m` and `abs_m_err` would silently replace abs_m's error bar)."""
        if var in made_from:
            raise FileError(g.file.filename, f"/{name}/{key} and /{name}/{made_from[var]} would both be the "
                                             f"variable {var!r} (a quantity named like another's error bar "
                                             "or axis): damaged, or not written by hpc-rg")
        made_from[var] = key
        data[var] = entry

    def numbers(axis: str, values) -> None:
        """Temperatures and lattice sizes are numbers (to_dataframe's T and L columns are floats)."""
        if (TEMPERATURE_AXIS.match(axis) or axis == "L") and np.asarray(values).dtype.kind not in "fiu":
            raise FileError(g.file.filename, f"/{name}/axes/{axis} is {np.asarray(values).dtype} "
                                             f"{_clip(values)}: expected numbers (damaged, or not written by hpc-rg)")

    def use_axis(axis: str, values) -> str:
        numbers(axis, values)
        dim = dim_name(axis)
        if dim not in coords:
            attrs = {"units": "J/k_B", "long_name": "temperature T"} if TEMPERATURE_AXIS.match(axis) else {}
            coords[dim] = (dim, np.asarray(values), attrs)
        return dim

    for q, d in dsets.items():
        if q.endswith("_err") and q[:-4] in errors:
            continue
        value = _plain(d[()])
        shape = np.shape(value)
        scales = _scale_dims(d)
        if any(s is not None for s in scales):    # named by the writer (its bare dimensions stay generic)
            named, rule = [use_axis(*s) if s else None for s in scales], "HDF5 dimension scales"
        else:
            named, rule = [use_axis(a, axes[a]) if a else None for a in _guess_dims(q, shape, axes)], "lengths"
        dims = tuple(n or f"{q}_dim_{i}" for i, n in enumerate(named))
        attrs = _attrs(d)
        attrs["dims_from"] = rule
        tag = SIZE_TAG.match(q)
        if tag and f"temperatures_L{tag.group('L')}" in axes:        # one size of a multi-size reduction
            attrs.update(quantity=tag.group("q"), L=int(tag.group("L")))
        put(q, q, (dims, value, attrs))
        if q in errors:
            err = dsets[q + "_err"][()]
            refuse_error_bar(g.file.filename, name, q, np.asarray(value), np.asarray(err))
            err = _plain(err)
            err_dims = dims
            attrs["ancillary_variables"] = q + "_error"           # CF's link from a value to its error bar
            put(q + "_error", q + "_err", (err_dims, err, dict(_attrs(dsets[q + "_err"]),
                                                               long_name=f"error bar of {q} (one standard error)")))

    for a, v in axes.items():
        dim = dim_name(a)
        numbers(a, v)                              # checked even where a dimension scale gave the coordinate
        if dim in coords:
            continue
        over = _is_curve(a)
        if over and over in axes and len(axes[over]) == len(v):
            put(a, f"axes/{a}", ((use_axis(over, axes[over]),), v, {"dims_from": "axes/ curve"}))
        elif a == "L" and len(v) == 1:
            numbers(a, v)
            coords["L"] = ((), _size(v[0]), {"long_name": "linear lattice size"})
        else:
            use_axis(a, v)
    for a, v in other_axes.items():              # multi-dimensional entries of axes/: kept, generic dims
        put(a, f"axes/{a}", (tuple(f"{a}_dim_{i}" for i in range(np.ndim(v))), v, {"dims_from": "axes/ array"}))

    attrs = _attrs(g)
    attrs["reduction"] = name
    if "L" not in coords and "L" not in axes and np.size(attrs.get("lattice_shape", [])):
        coords["L"] = ((), _size(np.atleast_1d(attrs["lattice_shape"])[-1]), {"long_name": "linear lattice size"})
    for q in [q for q in data if q in coords]:   # a quantity named like an axis ("r", "L"): keep both
        entry = data.pop(q)
        put(f"{q}_value", made_from.pop(q), (entry[0], entry[1], dict(entry[2], quantity=q)))
    return xr.Dataset({k: xr.Variable(*v) for k, v in data.items()},
                      coords={k: xr.Variable(*v) for k, v in coords.items()}, attrs=attrs)


def load_results(path: str | Path) -> "Results":
    """Read a results.h5 into a `Results` (FileError, one line, when it is not one)."""
    path = Path(path)
    with open_hdf5(path, f"a results file ({FORMAT})") as f:
        try:
            fmt = _plain(f.attrs.get("format"))
            if fmt != FORMAT:
                raise FileError(path, f"attribute format = {fmt!r}: expected {FORMAT!r} (not a results file)")
            datasets = {name: reduction_dataset(name, g) for name, g in f.items() if isinstance(g, h5py.Group)}
            attrs = _attrs(f)
        except FileError:
            raise
        except (OSError, KeyError, ValueError, TypeError) as e:
            raise FileError(path, f"is damaged: {hdf5_reason(e)}; copy it again or re-create it") from None
    return Results(path, datasets, attrs)


def _temperature_dim(var) -> str | None:
    return next((d for d in var.dims if TEMPERATURE_AXIS.match(d) or d.startswith("temperature_L")), None)


def tidy_rows(reduction: str, ds):
    """A pandas DataFrame of every quantity of a Dataset made by `reduction_dataset`: columns reduction,
    quantity, T, L, value, error, one per other named axis, and `index` (positions along unnamed axes)."""
    import pandas as pd
    frames = []
    L_all = ds.coords["L"].item() if "L" in ds.coords and ds.coords["L"].ndim == 0 else np.nan
    error_vars = {v.attrs.get("ancillary_variables") for v in ds.data_vars.values()}
    for q, var in ds.data_vars.items():
        if q in error_vars:
            continue
        value = np.asarray(var.values)
        if value.dtype.kind not in "biuf":                  # strings and the like are no numbers to tabulate
            continue
        n = value.size
        err_name = var.attrs.get("ancillary_variables")
        err = ds[err_name].values if err_name in ds.data_vars else None
        err = np.asarray(err, dtype=np.float64).ravel() if err is not None and np.shape(err) == value.shape \
            else np.full(n, np.nan)
        t_dim = _temperature_dim(var)
        cols = {"reduction": np.full(n, reduction, dtype=object),
                "quantity": np.full(n, var.attrs.get("quantity", q), dtype=object),
                "T": np.full(n, np.nan), "L": np.full(n, var.attrs.get("L", L_all), dtype=np.float64),
                "value": value.astype(np.float64).ravel(), "error": err}
        positions = np.indices(value.shape).reshape(value.ndim, n)      # C order, as ravel()
        generic = []
        for axis, dim in enumerate(var.dims):
            if dim == t_dim:
                cols["T"] = np.asarray(ds[dim].values, dtype=np.float64)[positions[axis]]
            elif dim == "L":
                cols["L"] = np.asarray(ds["L"].values, dtype=np.float64)[positions[axis]]
            elif dim in ds.coords:
                cols[dim] = np.asarray(ds[dim].values)[positions[axis]]
            else:
                generic.append(positions[axis])
        if generic:
            cols["index"] = list(zip(*(g.tolist() for g in generic)))
        frames.append(pd.DataFrame(cols))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=FIXED_COLUMNS)


class Results(Mapping):
    """results.h5 as {reduction name: xarray.Dataset}; `.attrs` the file's (job text, version, time),
    `.to_dataframe()` every number as tidy rows."""

    def __init__(self, path: Path, datasets: dict, attrs: dict):
        self.path = Path(path)
        self._datasets = dict(datasets)
        self.attrs = attrs

    def __getitem__(self, name: str):
        try:
            return self._datasets[name]
        except KeyError:
            raise KeyError(f"{self.path}: no reduction {name!r} (have {', '.join(self._datasets) or 'none'})") \
                from None

    def __iter__(self):
        return iter(self._datasets)

    def __len__(self) -> int:
        return len(self._datasets)

    def to_dataframe(self, reductions=None):
        """A pandas DataFrame, one row per number: reduction, quantity, T, L, value, error (NaN where a
        quantity has no such axis or no error bar), then one column per other named axis (r, level, ...)
        and `index` (positions along unnamed axes). `reductions`: a name or names to keep."""
        import pandas as pd
        names = [reductions] if isinstance(reductions, str) else list(reductions or self._datasets)
        frames = [f for f in (tidy_rows(n, self[n]) for n in names) if len(f)]
        if not frames:
            return pd.DataFrame(columns=FIXED_COLUMNS)
        df = pd.concat(frames, ignore_index=True)
        if np.all(np.isnan(df["L"]) | (df["L"] == np.round(df["L"]))):
            df["L"] = df["L"].astype("Int64")          # a lattice size is an integer (<NA> where none)
        extra = [c for c in df.columns if c not in FIXED_COLUMNS]
        return df[FIXED_COLUMNS + extra]

    def __repr__(self) -> str:
        head = f"<Results {self.path}: {len(self)} reduction(s)"
        made = " ".join(str(self.attrs.get(k, "")) for k in ("hpc_rg_version", "created")).strip()
        lines = [head + (f", hpc_rg {made}" if made else "")]
        width = max((len(n) for n in self), default=0)
        for n, ds in self.items():
            dims = ", ".join(f"{d}: {s}" for d, s in ds.sizes.items() if "_dim_" not in d)
            errs = {v.attrs.get("ancillary_variables") for v in ds.data_vars.values()}
            qs = [q + ("±" if v.attrs.get("ancillary_variables") in ds.data_vars else "")
                  for q, v in ds.data_vars.items() if q not in errs]
            shown = ", ".join(qs[:8]) + (f", ... ({len(qs)} quantities)" if len(qs) > 8 else "")
            n = n if n.isprintable() else repr(n)           # a name with a line break stays on its line
            lines.append(f"  {n:<{width}}  [{dims}]  {shown}" if dims else f"  {n:<{width}}  {shown}")
        return "\n".join(lines) + ">"

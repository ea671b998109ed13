"""results.h5 (format `hpc_rg.results/1`): every number with its error bar and provenance.

Layout: / attrs format, job_toml (the job text), hpc_rg_version, git_commit and git_dirty (in a checkout),
created (UTC ISO time), n_ranks;
/<reduction name>/ one group per reduction, attrs = its provenance and method notes;
  <q>, <q>_err   float64 datasets side by side (no <q>_err where the number is exact bookkeeping)
  axes/<a>       coordinates (temperatures, r, L, level, ...).
Self-describing (`hpc_rg.io.labels`): every dataset has netCDF dimension scales, `units` (where the
reduction's spec declares them, its OUTPUTS: `registry.outputs`) and `long_name`, so that
`xarray.open_dataset(path, engine="h5netcdf", group="<reduction>")` shows each quantity over named
dimensions, with the axes the reduction declares as coordinates (axes/temperatures is the `temperature`
coordinate); a quantity the reduction declares nothing for gets `<q>_dim<k>` dimensions.
File paths in the attributes (ensembles, ensemble, model_file, ...) are stored relative to the folder of
results.h5 (the run folder), so a run folder can move; `read_results` returns them resolved (files written
before kept absolute paths, which are returned as they are).
Written by rank 0 only, atomically (`hpc_rg.io.atomic.atomic_path`).
"""
from __future__ import annotations

import datetime
import fnmatch
import os
import re
from pathlib import Path

import h5py
import numpy as np

from hpc_rg.io.atomic import atomic_path
from hpc_rg.io.labels import TEMPERATURE_UNITS, attach, describe, dimension, is_scale
from hpc_rg.reduce.registry import outputs

FORMAT = "hpc_rg.results/1"
PATH_ATTRS = ("ensembles", "ensemble", "files", "model_file", "thermometer_file")   # ", "-separated paths


def _attr(v):
    if isinstance(v, (str, int, float, np.integer, np.floating, np.ndarray)):
        return v
    if isinstance(v, (list, tuple)):
        return np.asarray(v)
    return str(v)


def _paths(value: str, fn) -> str:
    return ", ".join(fn(p) for p in str(value).split(", ")) if value else value


def relative_paths(value: str, folder: Path) -> str:
    """Absolute paths of a ", "-separated list made relative to `folder`."""
    folder = Path(folder).resolve()
    return _paths(value, lambda p: os.path.relpath(p, folder) if os.path.isabs(p) else p)


def resolved_paths(value: str, folder: Path) -> str:
    """The inverse: relative paths of the list resolved against `folder`; absolute ones (old files) kept."""
    folder = Path(folder).resolve()
    return _paths(value, lambda p: p if os.path.isabs(p) else os.path.normpath(os.path.join(folder, p)))


def dim_name(axis: str) -> str:
    """The dimension an axis stands for: axes/temperatures is `temperature`, temperatures_L16 is
    temperature_L16; other axes keep their names."""
    return "temperature" + axis[len("temperatures"):] if axis.startswith("temperatures") else axis


def _choose(name: str, q: str, shape: tuple, coords: dict, g: h5py.Group, values) -> tuple[tuple, object]:
    """(dimension names, Output or None) of quantity q of reduction `name`."""
    sfx = re.search(r"_L\d+$", q)
    sfx = sfx.group(0) if sfx else ""

    def size(d):
        if d in coords:
            return len(coords[d])
        return g[d].shape[0] if d in g and is_scale(g[d]) else None

    for pattern, out in outputs(name).items():
        if not fnmatch.fnmatchcase(q, pattern) or len(out.dims) != len(shape):
            continue
        dims = tuple(d + sfx if sfx and d + sfx in coords else d for d in out.dims)
        # a declared axis that a quantity of the same name hides (one name, two datasets) goes generic alone
        dims = tuple(_free_dim(g, f"{q}_dim{k}", n) if d in values else d
                     for k, (d, n) in enumerate(zip(dims, shape)))
        if len(set(dims)) == len(dims) and all(size(d) in (None, n) for d, n in zip(dims, shape)):
            return dims, out
    return tuple(_free_dim(g, f"{q}_dim{k}", n) for k, n in enumerate(shape)), None


def _free_dim(g: h5py.Group, base: str, n: int) -> str:
    """A generic dimension name for an axis of length n that no other-length dimension of g already
    holds (a quantity named like an axis, e.g. `r` beside axes/r, must not clash with it)."""
    name, k = base, 0
    while name in g and not (is_scale(g[name]) and g[name].shape[0] == n):
        k += 1
        name = f"{base}_{k}"
    return name


def _scale(g: h5py.Group, d: str, n: int, coords: dict) -> None:
    """Make dimension d of group g: a coordinate from the reduction's axes, or a bare dimension."""
    if d in g:
        return
    if d in coords:
        units = TEMPERATURE_UNITS if d.startswith("temperature") else None
        dimension(g, d, n, coords[d], units, d.replace("_", " "))
    else:
        dimension(g, d, n)


def _write_group(g: h5py.Group, name: str, res, folder: Path) -> None:
    for k, v in res.attrs.items():
        g.attrs[k] = relative_paths(v, folder) if k in PATH_ATTRS and isinstance(v, str) else _attr(v)
    coords = {}
    for a, v in res.axes.items():
        g[f"axes/{a}"] = v = np.asarray(v)
        if v.ndim == 1 and v.dtype.kind in "iufS" and dim_name(a) not in res.values:
            coords[dim_name(a)] = v
            if a.startswith("temperatures"):      # the temperature coordinate, whatever the quantities are
                _scale(g, dim_name(a), len(v), coords)
    for q, (v, e) in res.values.items():
        v = np.asarray(v, dtype=np.float64)
        dims, out = _choose(name, q, v.shape, coords, g, res.values)
        long_name = (out.long_name if out is not None and out.long_name else q)
        units = out.units if out is not None and out.units else None
        for n, d in zip(v.shape, dims):
            _scale(g, d, n, coords)
        g[q] = v
        attach(g[q], dims)
        describe(g[q], units, long_name)
        if e is not None:
            g[q + "_err"] = np.asarray(e, dtype=np.float64)
            attach(g[q + "_err"], dims)
            describe(g[q + "_err"], units, f"error bar (one standard error) of {long_name}")
    for a, v in res.axes.items():
        d = g[f"axes/{a}"]
        dims = (dim_name(a),) if dim_name(a) in g and d.ndim == 1 and g[dim_name(a)].shape == d.shape \
            else tuple(_free_dim(g, f"{a}_dim{k}", n) for k, n in enumerate(d.shape))
        if d.ndim:
            attach(d, dims)
        describe(d, TEMPERATURE_UNITS if a.startswith("temperatures") else None, a.replace("_", " "))


def write_results(path: Path, results: dict, job_toml: str, n_ranks: int = 1, version: str = "") -> Path:
    from hpc_rg.provenance import file_attrs
    path = Path(path)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["format"] = FORMAT
        f.attrs["job_toml"] = job_toml
        for k, v in file_attrs().items():
            f.attrs[k] = v
        if version:
            f.attrs["hpc_rg_version"] = version
        f.attrs["created"] = datetime.datetime.now(datetime.timezone.utc).isoformat()
        f.attrs["n_ranks"] = n_ranks
        for name, res in results.items():
            _write_group(f.create_group(name), name, res, path.parent)
    return path


def read_results(path: Path) -> dict:
    """{reduction: {name: array, ..., 'axes': {...}, 'attrs': {...}}} for reports and tests; the
    dimension scales are left out, the paths in the attributes resolved."""
    out = {}
    path = Path(path)
    with h5py.File(path, "r") as f:
        if f.attrs.get("format") != FORMAT:
            raise ValueError(f"{path}: not an {FORMAT} file")
        for name, g in f.items():
            d = {k: g[k][()] for k in g if isinstance(g[k], h5py.Dataset) and not is_scale(g[k])}
            if "axes" in g:
                d["axes"] = {k: g["axes"][k][()] for k in g["axes"] if not is_scale(g["axes"][k])}
            attrs = {k: v for k, v in g.attrs.items()}
            for k in PATH_ATTRS:
                if isinstance(attrs.get(k), (str, bytes)):
                    v = attrs[k].decode() if isinstance(attrs[k], bytes) else attrs[k]
                    attrs[k] = resolved_paths(v, path.parent)
            d["attrs"] = attrs
            out[name] = d
    return out

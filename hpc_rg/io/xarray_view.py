"""`Ensemble.to_xarray()`: an ensemble file as a lazy `xarray.Dataset`, nothing read until asked.

Each variable is an xarray `LazilyIndexedArray` over `SlabArray`, which hands the basic (slice and
integer) selection xarray asks for to a reader function of the Ensemble: `ds.spins.isel(temperature=2,
sample=slice(0, 8)).values` reads those eight configurations and nothing else (with dask installed,
`ds.chunk(...)` reads chunk by chunk the same way). The reader, not this module, knows how the spins
are stored, so the Dataset always shows ±1 int8 spins of the logical lattice shape.

xarray is an optional extra (`pip install hpc_rg[xarray]`): this module, which imports it, is imported by
`to_xarray` on first use, so `import hpc_rg` and the readers never need it.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = ["MissingExtra", "import_xarray", "SlabArray", "lazy_variable", "ensemble_dataset"]

EXTRA = "xarray"


class MissingExtra(ImportError):
    """An optional dependency is not installed: one line naming the pip extra that brings it."""


def import_xarray():
    """The xarray module, or MissingExtra saying how to install it (the core install has no xarray)."""
    try:
        import xarray
    except ImportError as e:
        raise MissingExtra(f"this needs the optional package {e.name or 'xarray'!r}: "
                           f"pip install 'hpc_rg[{EXTRA}]'") from None
    return xarray


xr = import_xarray()
from xarray.backends import BackendArray  # noqa: E402  (after the one-line message for a missing xarray)
from xarray.core import indexing  # noqa: E402


class SlabArray(BackendArray):
    """A backend array of `shape` whose elements come from `read(key)`, key a tuple of slices (step >= 1)
    and integers, one per axis (h5py's basic selection), returning what numpy would for that key."""

    def __init__(self, read: Callable[[tuple], np.ndarray], shape: tuple[int, ...], dtype, name: str = ""):
        self.read = read
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)
        self.name = name

    def __getitem__(self, key):
        # BASIC: xarray splits any fancier selection into a slab read here and an in-memory rest
        return indexing.explicit_indexing_adapter(key, self.shape, indexing.IndexingSupport.BASIC, self._raw)

    def _raw(self, key: tuple) -> np.ndarray:
        return np.asarray(self.read(tuple(key)), dtype=self.dtype)

    def __repr__(self) -> str:
        return f"SlabArray({self.name!r}, shape={self.shape}, dtype={self.dtype})"


def lazy_variable(dims, read, shape, dtype, attrs=None, name: str = ""):
    """An `xarray.Variable` that reads through `read` only when its values are asked for."""
    return xr.Variable(dims, indexing.LazilyIndexedArray(SlabArray(read, shape, dtype, name)), attrs=attrs or {})


def _dataset_reader(ens, name: str):
    """Read a real dataset of the file by h5py basic selection, with a clear error once `ens` is closed.
    A virtual one (hpc-rg writes only /spins so) is checked first: where a source is missing HDF5 would
    read the fill value as data."""
    d = ens.file[name]
    if d.is_virtual:
        from hpc_rg.io.ensemble import check_sources
        check_sources(ens.path, d)

    def read(key):
        if not ens.file.id.valid:
            raise ValueError(f"{ens.path}: the Ensemble was closed; keep it open while you use its "
                             "to_xarray() Dataset (or call .load() on the Dataset before closing)")
        return ens.file[name][key]
    return read


def lattice_dims(ndim: int) -> tuple[str, ...]:
    """('x',), ('y', 'x'), ('z', 'y', 'x'); x is always the last (fastest) axis."""
    named = ("z", "y", "x")
    return named[-ndim:] if ndim <= 3 else tuple(f"axis_{i}" for i in range(ndim - 2)) + ("y", "x")


UNITS = {   # k_B = 1, energies in units of the coupling J (docs/python-api.md, Conventions)
    "temperature": {"units": "J/k_B", "long_name": "temperature T"},
    "spins": {"units": "1", "long_name": "spin (+1 or -1)"},
    "energy": {"units": "J", "long_name": "energy per site"},
    "magnetization": {"units": "1", "long_name": "magnetization per site"},
}


def ensemble_dataset(ens, read_spins: Callable[[tuple], np.ndarray]):
    """Lazy Dataset of an open `Ensemble`: spins (temperature, chain, sample, [z, y,] x), energy and
    magnetization (temperature, chain, sample), timeseries_<name> (temperature, chain, measurement).
    Only the temperature coordinate is read (it is already in memory); the other coordinates are ranges."""
    head = ("temperature", "chain", "sample")
    lat = lattice_dims(len(ens.lattice_shape))
    shape3 = (ens.n_temperatures, ens.n_chains, ens.n_samples)
    data = {"spins": lazy_variable(head + lat, read_spins, shape3 + tuple(ens.lattice_shape), np.int8,
                                   UNITS["spins"], "spins")}
    for name in ("energy", "magnetization"):
        if ens.has(name):
            d = ens.file[name]
            data[name] = lazy_variable(head, _dataset_reader(ens, name), d.shape, d.dtype, UNITS[name], name)
    series = ens.file.get("timeseries")
    if hasattr(series, "items"):             # a group (a file where /timeseries is a dataset has none)
        for name, d in series.items():
            if not hasattr(d, "shape"):
                continue
            dims = (head[:2] + ("measurement",)) if d.shape[:2] == shape3[:2] and d.ndim == 3 \
                else tuple(f"timeseries_{name}_dim_{i}" for i in range(d.ndim))
            attrs = dict(UNITS.get(name, {}), long_name=f"{UNITS.get(name, {}).get('long_name', name)}, "
                                                        "every measurement (before thinning)")
            data[f"timeseries_{name}"] = lazy_variable(dims, _dataset_reader(ens, f"timeseries/{name}"),
                                                       d.shape, d.dtype, attrs, f"timeseries/{name}")
    coords = {"temperature": ("temperature", np.asarray(ens.temperatures), UNITS["temperature"]),
              "chain": np.arange(ens.n_chains), "sample": np.arange(ens.n_samples)}
    coords.update({d: np.arange(n) for d, n in zip(lat, ens.lattice_shape)})
    attrs = {k: v for k, v in ens.attrs.items()}
    attrs["source"] = str(ens.path)
    return xr.Dataset(data, coords=coords, attrs=attrs)

"""Self-describing HDF5: netCDF-4 dimension scales, `units` and `long_name`, so that
`xarray.open_dataset(path, engine="h5netcdf")` (or netCDF-C, ncdump, Panoply) names every axis of
ensemble.h5 and results.h5 and shows the temperature coordinate without hpc_rg.

netCDF-4 on HDF5 in brief: a dimension is a dataset made a *dimension scale* (`make_scale`) whose name is
the dimension's name; a dimension with a coordinate holds its values (named by the scale name), one without
is an empty float32 dataset whose scale NAME starts with "This is a netCDF dimension but not a netCDF
variable." (so readers list it as a dimension, not a variable); every dataset's axes are attached to their
scales (`dims[i].attach_scale`), which writes the references into the dataset's own attributes. That works on
a virtual dataset as on any other (the attributes live in the file that holds the mapping, never in the
sources), and no reader needs the data to learn the dimensions: opening reads no spins.

Only h5py is used here (a core dependency); the labels are written by the writers themselves.
"""
from __future__ import annotations

from typing import Callable

import h5py
import numpy as np

NOT_A_VARIABLE = b"This is a netCDF dimension but not a netCDF variable."
LABEL_ATTRS = ("CLASS", "NAME", "DIMENSION_LIST", "REFERENCE_LIST", "_Netcdf4Dimid", "_Netcdf4Coordinates")
TEMPERATURE_UNITS = "J/k_B"          # temperatures are in units of the coupling over Boltzmann's constant

Write = Callable[[h5py.Dataset, np.ndarray], None]


def _plain_write(dset: h5py.Dataset, values: np.ndarray) -> None:
    dset[...] = values


def is_scale(dset) -> bool:
    return isinstance(dset, h5py.Dataset) and dset.attrs.get("CLASS") in (b"DIMENSION_SCALE", "DIMENSION_SCALE")


def dimension(group: h5py.Group, name: str, size: int, values=None, units: str | None = None,
              long_name: str | None = None, write: Write | None = None) -> h5py.Dataset:
    """The scale of dimension `name` in `group`: an existing one, or a new one (with coordinate `values`,
    or a bare dimension of `size`). `write(dset, values)` writes the values (the collective writer passes
    its own)."""
    if name in group:
        d = group[name]
        if not is_scale(d):
            raise ValueError(f"{group.name}/{name} exists and is not a dimension scale")
        return d
    if values is None:
        d = group.create_dataset(name, shape=(int(size),), dtype=">f4")     # no data: nothing allocated
        d.make_scale(NOT_A_VARIABLE + b"%10d" % int(size))
        return d
    values = np.asarray(values)
    d = group.create_dataset(name, shape=values.shape, dtype=values.dtype)
    if values.size:
        (write or _plain_write)(d, values)
    d.make_scale(name)
    describe(d, units, long_name)
    return d


def describe(dset, units: str | None, long_name: str | None) -> None:
    if units is not None:
        dset.attrs["units"] = units
    if long_name is not None:
        dset.attrs["long_name"] = long_name


def find_scale(group: h5py.Group, name: str) -> h5py.Dataset | None:
    """A dimension scale `name` in `group` or an enclosing group (netCDF's rule: a group sees its
    ancestors' dimensions)."""
    while True:
        if name in group and is_scale(group[name]):
            return group[name]
        if group.name == "/":
            return None
        group = group.parent


def attach(dset: h5py.Dataset, dims: tuple[str, ...], scales_in: h5py.Group | None = None) -> None:
    """Name the axes of `dset`: dimension k is the scale dims[k], found in `scales_in` (default the
    dataset's group) or above, else created there as a bare dimension of the axis' length."""
    group = scales_in if scales_in is not None else dset.parent
    if len(dims) != dset.ndim:
        raise ValueError(f"{dset.name}: {len(dims)} dimension names for {dset.ndim} axes")
    for k, name in enumerate(dims):
        scale = find_scale(group, name)
        if scale is not None and scale.shape[0] != dset.shape[k]:
            raise ValueError(f"{dset.name}: axis {k} has length {dset.shape[k]}, dimension {name!r} "
                             f"{scale.shape[0]}")
        if scale is None:
            scale = dimension(group, name, dset.shape[k])
        dset.dims[k].attach_scale(scale)


def strip(attrs: dict) -> dict:
    """Attributes without the dimension-scale bookkeeping (references into one particular file)."""
    return {k: v for k, v in attrs.items() if k not in LABEL_ATTRS}


# -- ensemble.h5 -------------------------------------------------------------------------------------------
# dataset -> (dimensions, units, long_name); "lattice" stands for the lattice axes (y, x or x)
ENSEMBLE_VARIABLES = {
    "temperatures": (("temperature",), TEMPERATURE_UNITS, "temperature of each ladder slot"),
    "energy": (("temperature", "chain", "sample"), "J", "energy per spin of each stored configuration"),
    "magnetization": (("temperature", "chain", "sample"), "1",
                      "magnetization per spin (mean of the spins) of each stored configuration"),
    "timeseries/energy": (("temperature", "chain", "measurement"), "J", "energy per spin, every measure_every updates"),
    "timeseries/magnetization": (("temperature", "chain", "measurement"), "1",
                                 "magnetization per spin, every measure_every updates"),
    "exchange/acceptance": (("pair",), "1", "replica-exchange acceptance of each neighbouring temperature pair"),
    "exchange/pair_attempts": (("ladder", "pair"), "1", "replica-exchange attempts per ladder and pair"),
    "exchange/pair_accepts": (("ladder", "pair"), "1", "replica-exchange swaps accepted per ladder and pair"),
    "exchange/round_trips": (("ladder", "replica"), "1", "round trips (coldest -> hottest -> coldest) per replica"),
    "exchange/attempts": ((), "1", "replica-exchange steps"),
    "exchange/slot_history": (("exchange_step", "ladder", "replica"), "1",
                              "temperature slot of each replica after each exchange step"),
}


def spin_dims(lattice_ndim: int, storage: str) -> tuple[str, ...]:
    lattice = ("y", "x") if lattice_ndim == 2 else ("x",) if lattice_ndim == 1 else \
        tuple(f"axis{k}" for k in range(lattice_ndim))
    if storage == "bits":
        lattice = lattice[:-1] + (lattice[-1] + "_packed",)
    return ("temperature", "chain", "sample") + lattice


def label_ensemble(f: h5py.File, temperatures, storage: str = "int8", write: Write | None = None) -> None:
    """Dimension scales, units and long names on every dataset of an open, writable ensemble file (the
    scales are created here; call once, after the datasets). Datasets this module does not know get
    `<name>_dim<k>` dimensions."""
    temperatures = np.asarray(temperatures, dtype=np.float64)
    dimension(f, "temperature", len(temperatures), temperatures, TEMPERATURE_UNITS, "temperature", write)
    lattice_ndim = len(np.atleast_1d(f.attrs["lattice_shape"]))
    spins = f["spins"]
    attach(spins, spin_dims(lattice_ndim, storage))
    if storage == "bits":
        describe(spins, "1", "spin configurations packed 8 per byte along x (numpy.packbits, big-endian bit "
                             "order): bit 1 is spin +1, bit 0 is spin -1; unpacked_shape is the int8 shape")
    else:
        describe(spins, "1", "spin configurations (+1 up, -1 down)")
    label_rest(f, ENSEMBLE_VARIABLES, skip=("spins", "temperature"))


def label_rest(root: h5py.Group, known: dict, skip=()) -> None:
    """Attach and describe every dataset under `root` (other than scales and `skip`): the ones in `known`
    by their entry, the others with `<name>_dim<k>` dimensions and their name as long_name."""
    found: list[str] = []
    root.visititems(lambda name, obj: found.append(name) if isinstance(obj, h5py.Dataset) else None)
    for name in found:
        d = root[name]
        if name in skip or is_scale(d) or "DIMENSION_LIST" in d.attrs:
            continue
        if name in known:
            dims, units, long_name = known[name]
        else:
            base = name.rsplit("/", 1)[-1]
            dims, units, long_name = tuple(f"{base}_dim{k}" for k in range(d.ndim)), None, base
        if d.ndim:
            attach(d, dims)
        describe(d, units, long_name)

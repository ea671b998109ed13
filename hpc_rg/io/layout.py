"""What an ensemble.h5 holds, said once: its shape (`EnsembleLayout`) and its root attributes
(`root_attributes`, the one place the format header is made).

Every writer of the format (`hpc_rg.io.ensemble.write_ensemble` in one piece, the virtual assembler over
part files, the collective assembler with parallel HDF5) takes its datasets' shapes, the storage of /spins
and its fill value from a layout, and its root attributes from `root_attributes`, so that readers cannot
tell which wrote a file.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hpc_rg.io import spin_storage
from hpc_rg.provenance import file_attrs

FORMAT = "hpc_rg.ensemble/1"
SPIN_FILL = -128          # fill value of int8 /spins: not a spin (+-1), so no unwritten sample can pass for data
# the per-sample (axis 2: samples) and per-measurement (axis 2: measurements) arrays besides /spins
SAMPLE_ARRAYS = ("energy", "magnetization")
TIMESERIES_ARRAYS = ("timeseries/energy", "timeseries/magnetization")


@dataclass(frozen=True)
class EnsembleLayout:
    """The shape of an ensemble file: (n_T, n_chains, n_samples, *lattice_shape) configurations stored as
    `storage` ("int8", or "bits": packed 8 per byte along x), n_measurements time-series points per chain.
    `attrs` (the job's root attributes, provenance added on writing) and `exchange` (replica-exchange
    statistics for /exchange, or None) are what the writer copies in as they are."""
    temperatures: tuple[float, ...]
    n_chains: int
    lattice_shape: tuple[int, ...]
    n_samples: int
    n_measurements: int = 0
    storage: str = "int8"
    attrs: dict = field(default_factory=dict, compare=False)
    exchange: dict | None = field(default=None, compare=False)

    def __post_init__(self):
        if self.storage not in spin_storage.STORAGES:
            raise ValueError(f"spin storage {self.storage!r}: expected one of {', '.join(spin_storage.STORAGES)}")
        set_ = object.__setattr__       # normalised once here, so that every writer sees plain values
        set_(self, "temperatures", tuple(float(t) for t in np.asarray(self.temperatures, dtype=np.float64)))
        set_(self, "lattice_shape", tuple(int(x) for x in self.lattice_shape))
        for name in ("n_chains", "n_samples", "n_measurements"):
            set_(self, name, int(getattr(self, name)))
        set_(self, "attrs", dict(self.attrs or {}))

    @property
    def n_t(self) -> int:
        return len(self.temperatures)

    @property
    def temperature_array(self) -> np.ndarray:
        return np.asarray(self.temperatures, dtype=np.float64)

    @property
    def spins_shape(self) -> tuple[int, ...]:
        """The configurations as readers see them (int8 +-1)."""
        return (self.n_t, self.n_chains, self.n_samples, *self.lattice_shape)

    @property
    def stored_spins_shape(self) -> tuple[int, ...]:
        """/spins as stored (the last axis packed for "bits")."""
        return spin_storage.stored_shape(self.spins_shape, self.storage)

    @property
    def stored_site_shape(self) -> tuple[int, ...]:
        """One configuration as stored."""
        return spin_storage.stored_shape(self.lattice_shape, self.storage)

    @property
    def spin_dtype(self) -> np.dtype:
        return spin_storage.stored_dtype(self.storage)

    @property
    def spin_fill(self) -> int:
        """The fill value of /spins: never read (sources are checked); int8's is no spin, bits have none to spare."""
        return spin_fill(self.storage)

    def length(self, name: str) -> int:
        """Axis 2 of array `name`: samples, or time-series points for /timeseries/*."""
        return self.n_measurements if name in TIMESERIES_ARRAYS else self.n_samples


def spin_fill(storage: str) -> int:
    return SPIN_FILL if storage == "int8" else 0


def root_attributes(lattice_shape, attrs: dict | None) -> dict:
    """The root attributes of an ensemble file, in the order they are written: the format header, the
    lattice shape, the provenance of this process, then the job's `attrs` (which win over the provenance)."""
    return {"format": FORMAT, "lattice_shape": np.array(tuple(lattice_shape), dtype=np.int64),
            **file_attrs(), **(attrs or {})}


def write_root_attributes(f, attributes: dict) -> None:
    """Set `attributes` (from `root_attributes`) on the open file `f` (an h5py.File, serial or collective)."""
    for k, v in attributes.items():
        f.attrs[k] = v

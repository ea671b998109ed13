"""ensemble.h5 (format `hpc_rg.ensemble/1`): the schema, a reader, and a one-shot serial writer.

Layout (DESIGN.md): /temperatures (n_T,), /spins int8 (n_T, n_chains, n_samples, *lattice_shape),
/energy and /magnetization float64 (n_T, n_chains, n_samples) per site, /timeseries/{energy,magnetization}
float64 (n_T, n_chains, n_measurements), /exchange/*. Samples are stored by temperature.
The parallel writers live in `hpc_rg.io.parts` (per-rank parts + virtual dataset) and `hpc_rg.io.mpio`
(collective copy into one real file); readers cannot tell which wrote a file.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import h5py
import numpy as np

FORMAT = "hpc_rg.ensemble/1"


def spins_chunk(lattice_shape: tuple[int, ...]) -> tuple[int, ...]:
    """One configuration per chunk row, so a temperature's samples are contiguous whole chunks."""
    return (1, 1, 1, *lattice_shape)


def write_ensemble(path: str | Path, temperatures, spins, energy=None, magnetization=None, attrs=None,
                   timeseries: dict | None = None) -> Path:
    """Write a complete ensemble in one go (tests, converted data). Atomic: temp name, then rename."""
    path = Path(path)
    spins = np.asarray(spins, dtype=np.int8)
    n_t, n_c, n_s = spins.shape[:3]
    shape = spins.shape[3:]
    axes = tuple(range(3, spins.ndim))
    n_sites = int(np.prod(shape))
    if magnetization is None:
        magnetization = spins.astype(np.int64).sum(axis=axes) / n_sites
    tmp = path.with_name(path.name + ".tmp")
    with h5py.File(tmp, "w") as f:
        f.attrs["format"] = FORMAT
        f.attrs["lattice_shape"] = np.array(shape, dtype=np.int64)
        for k, v in (attrs or {}).items():
            f.attrs[k] = v
        f["temperatures"] = np.asarray(temperatures, dtype=np.float64)
        f.create_dataset("spins", data=spins, chunks=spins_chunk(shape))
        if energy is not None:
            f["energy"] = np.asarray(energy, dtype=np.float64).reshape(n_t, n_c, n_s)
        f["magnetization"] = np.asarray(magnetization, dtype=np.float64).reshape(n_t, n_c, n_s)
        for name, data in (timeseries or {}).items():
            f[f"timeseries/{name}"] = np.asarray(data, dtype=np.float64)
    os.replace(tmp, path)
    return path


class Ensemble:
    """Lazy view of an ensemble file. Use as a context manager or call close()."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.file = h5py.File(self.path, "r")
        fmt = self.file.attrs.get("format")
        if fmt != FORMAT:
            self.file.close()
            raise ValueError(f"{self.path}: attribute format = {fmt!r}: expected {FORMAT!r}")
        self.attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in self.file.attrs.items()}
        self.temperatures = self.file["temperatures"][()]
        self.spins = self.file["spins"]
        self.lattice_shape = tuple(int(x) for x in self.file.attrs["lattice_shape"])
        self.n_temperatures, self.n_chains, self.n_samples = self.spins.shape[:3]

    @property
    def model(self) -> str:
        return str(self.attrs.get("model", ""))

    @property
    def energy(self) -> np.ndarray:
        return self.file["energy"][()]

    @property
    def magnetization(self) -> np.ndarray:
        return self.file["magnetization"][()]

    def timeseries(self, name: str) -> np.ndarray:
        return self.file[f"timeseries/{name}"][()]

    def has(self, name: str) -> bool:
        return name in self.file

    def temperature_index(self, T: float, tol: float = 1e-9) -> int:
        i = int(np.argmin(np.abs(self.temperatures - T)))
        if abs(self.temperatures[i] - T) > tol * max(1.0, abs(T)):
            raise KeyError(f"{self.path}: no temperature {T} (have {list(self.temperatures)})")
        return i

    def iter_spins(self, t: int, batch: int = 256) -> Iterator[np.ndarray]:
        """Stream temperature t's configurations, chain by chain, `batch` samples at a time
        (int8 arrays (k, *lattice_shape)); memory is bounded by the batch, not the ensemble."""
        for c in range(self.n_chains):
            for s0 in range(0, self.n_samples, batch):
                yield self.spins[t, c, s0:s0 + batch]

    def to_xarray(self):
        """Labelled arrays (temperature, chain, sample, y, x); needs xarray (not a core dependency)."""
        import xarray as xr
        dims = ("temperature", "chain", "sample") + (("y", "x") if len(self.lattice_shape) == 2 else ("x",))
        return xr.Dataset(
            {"spins": (dims, self.spins[()]),
             "energy": (dims[:3], self.energy), "magnetization": (dims[:3], self.magnetization)},
            coords={"temperature": self.temperatures}, attrs=self.attrs)

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> "Ensemble":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_ensemble(path: str | Path) -> Ensemble:
    return Ensemble(path)

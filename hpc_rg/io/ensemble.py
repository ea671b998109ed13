"""ensemble.h5 (format `hpc_rg.ensemble/1`): the schema, a reader, and a one-shot serial writer.

Layout (docs/file-formats.md): /temperatures (n_T,), /spins int8 (n_T, n_chains, n_samples, *lattice_shape)
(or, with simulate.spin_storage = "bits", uint8 packed 8 spins per byte along x: `hpc_rg.io.spin_storage`;
`Ensemble.spins` reads either as int8),
/energy and /magnetization float64 (n_T, n_chains, n_samples) per site, /timeseries/{energy,magnetization}
float64 (n_T, n_chains, n_measurements), /exchange/*. Samples are stored by temperature.
The format's shape and root attributes are said once in `hpc_rg.io.layout`. The parallel writers: per-rank
part files (`hpc_rg.io.parts`) assembled by `hpc_rg.io.virtual_assembler` (virtual dataset) or
`hpc_rg.io.mpio` (collective copy into one real file); readers cannot tell which wrote a file.

Every file read is untrusted: `Ensemble` refuses (exit 2 through `FileError`, a `ConfigError`) a path that
is a folder, a file that is not HDF5 or is truncated, a file without the datasets of the format, and a
virtual /spins whose source parts are missing or damaged. The last matters most: HDF5 silently reads the
fill value where a virtual source is missing, so an ensemble.h5 copied without its parts/ would read as
data. /spins has the fill value SPIN_FILL, which is no spin, but the sources are checked before anything
is read, so it is never seen (packed spins have no value to spare: there the check alone protects).
Every writer labels the file for netCDF readers (`hpc_rg.io.labels`: dimension scales, units, long names)
and records the provenance (`hpc_rg.provenance.file_attrs`: version, git commit).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import h5py
import numpy as np

from hpc_rg.io import spin_storage
from hpc_rg.io.atomic import atomic_path
from hpc_rg.io.labels import label_ensemble
from hpc_rg.io.layout import FORMAT, SPIN_FILL, root_attributes, spin_fill, write_root_attributes
from hpc_rg.schema import ConfigError

REQUIRED = ("temperatures", "spins", "magnetization")


class FileError(ConfigError):
    """A missing, damaged or incomplete input file: one line naming it, what is wrong and the way out."""

    def __init__(self, path: str | Path, message: str):
        ValueError.__init__(self, f"{path}: {message}")
        self.file, self.key, self.found, self.allowed = str(path), "", None, message


def hdf5_reason(e: BaseException) -> str:
    """HDF5's own words, short: 'file signature not found', 'truncated file: eof = ...'."""
    text = " ".join(str(e).split())
    if "(" in text and text.endswith(")"):
        text = text[text.index("(") + 1:-1]
    return text[:200]


def open_hdf5(path: str | Path, kind: str = "an HDF5 file") -> h5py.File:
    """Open an input file for reading, or raise FileError saying why it cannot be read."""
    path = Path(path)
    if path.is_dir():
        raise FileError(path, f"is a folder, not {kind}")
    if not path.exists():
        raise FileError(path, f"not found (expected {kind})")
    try:
        return h5py.File(path, "r")
    except OSError as e:
        if not h5py.is_hdf5(path):
            raise FileError(path, f"is not {kind} (no HDF5 signature: wrong file, or its start is damaged)") \
                from None
        raise FileError(path, f"is a damaged or truncated HDF5 file ({hdf5_reason(e)}); "
                              "copy it again or re-create it") from None


def virtual_sources(dset: h5py.Dataset) -> dict[tuple[str, str], tuple[int, ...]]:
    """{(source file as stored, source dataset): the smallest extent that holds every selection mapped from
    it} of a virtual dataset; one entry per source (a part feeds one mapping per unit it holds)."""
    dcpl = dset.id.get_create_plist()
    out: dict[tuple[str, str], tuple[int, ...]] = {}
    for i in range(dcpl.get_virtual_count()):
        key = (dcpl.get_virtual_filename(i), dcpl.get_virtual_dsetname(i))
        space = dcpl.get_virtual_srcspace(i)
        need = tuple(int(hi) + 1 for hi in space.get_select_bounds()[1]) if space.get_select_npoints() \
            else (0,) * space.get_simple_extent_ndims()
        out[key] = tuple(max(a, b) for a, b in zip(out.get(key, need), need))
    return out


def source_problem(path: Path, datasets: dict[str, tuple[int, ...]], dtype) -> str | None:
    """Why a virtual source file cannot feed its mappings ({dataset: extent read}), or None when it can."""
    if path.is_dir() or not path.exists():
        return "missing"
    try:
        with h5py.File(path, "r") as f:
            for dset_name, extent in datasets.items():
                d = f.get(dset_name)
                if not isinstance(d, h5py.Dataset):
                    return f"has no /{dset_name}"
                if d.dtype != dtype or d.ndim != len(extent) or any(n < e for n, e in zip(d.shape, extent)):
                    return (f"/{dset_name} is {d.dtype} {tuple(d.shape)}, the ensemble reads {np.dtype(dtype)} "
                            f"up to {tuple(extent)}")
            if "units" in f.attrs and "n_samples" not in f.attrs:
                return "never closed: written by a run that stopped before its checkpoint"
    except OSError as e:
        if not os.access(path, os.R_OK):
            return "not readable: permission denied"
        return "not HDF5" if not h5py.is_hdf5(path) else f"damaged: {hdf5_reason(e)}"
    return None


_SOURCES_SEEN: dict[tuple, dict] = {}


def check_sources(path: Path, dset: h5py.Dataset) -> None:
    """Refuse a virtual dataset any of whose sources is missing or does not match (HDF5 would read the fill
    value there without a word). Relative source names are resolved against the ensemble's folder, the
    first place HDF5 looks (never the working directory, where another run's parts/ may lie)."""
    if not dset.is_virtual:
        return
    st = path.stat()
    key = (str(path.resolve()), st.st_ino, st.st_mtime_ns, st.st_size, dset.name)
    sources = _SOURCES_SEEN.get(key)
    if sources is None:             # listing the mappings costs ~0.1 ms each: once per file and process
        sources = _SOURCES_SEEN[key] = virtual_sources(dset)
    files: dict[str, dict[str, tuple[int, ...]]] = {}
    for (name, dname), extent in sources.items():
        if name != ".":                   # "." is a source inside the file itself
            files.setdefault(name, {})[dname] = extent
    bad = []
    for name, datasets in files.items():
        src = Path(name) if os.path.isabs(name) else path.parent / name
        why = source_problem(src, datasets, dset.dtype)
        if why:
            bad.append(f"{name} ({why})")
    if bad:
        shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        raise FileError(path, f"/{dset.name.lstrip('/')} is a virtual dataset over part files, and {len(bad)} of "
                              f"its {len(files)} parts are missing or damaged: {shown}; copy the run folder "
                              "with its parts/, or make a self-contained file with `hpc-rg assemble RUN --copy` "
                              "in the run folder that holds them")


def spins_chunk(lattice_shape: tuple[int, ...]) -> tuple[int, ...]:
    """One configuration per chunk row, so a temperature's samples are contiguous whole chunks."""
    return (1, 1, 1, *lattice_shape)


def chunk_rows(n_rows: int, row_bytes: int, max_bytes: int = 1 << 20) -> int:
    """Rows per chunk of a real (n_T, n_chains, n_rows, ...) dataset written once: chunks of up to ~max_bytes,
    all of nearly equal length, so the partly filled last chunk of a chain wastes < one row per chunk
    (HDF5 allocates a whole chunk for it: 300 rows in chunks of 256 would take 512)."""
    n_rows = max(int(n_rows), 1)
    most = max(1, min(max_bytes // max(int(row_bytes), 1), n_rows))
    n_chunks = -(-n_rows // most)
    return -(-n_rows // n_chunks)


def write_ensemble(path: str | Path, temperatures, spins, energy=None, magnetization=None, attrs=None,
                   timeseries: dict | None = None, storage: str = "int8") -> Path:
    """Write a complete ensemble in one go (tests, converted data). Atomic: temp name, then rename.
    `storage`: "int8" or "bits" (see `hpc_rg.io.spin_storage`)."""
    if storage not in spin_storage.STORAGES:
        raise ValueError(f"spin storage {storage!r}: expected one of {', '.join(spin_storage.STORAGES)}")
    path = Path(path)
    spins = np.asarray(spins, dtype=np.int8)
    n_t, n_c, n_s = spins.shape[:3]
    shape = spins.shape[3:]
    axes = tuple(range(3, spins.ndim))
    n_sites = int(np.prod(shape))
    if magnetization is None:
        magnetization = spins.astype(np.int64).sum(axis=axes) / n_sites
    with atomic_path(path, temporary=path.with_name(path.name + ".tmp")) as tmp, h5py.File(tmp, "w") as f:
        write_root_attributes(f, root_attributes(shape, attrs))
        f["temperatures"] = np.asarray(temperatures, dtype=np.float64)
        stored = spin_storage.to_stored(spins, storage)
        # bits: a packed configuration is small (64x64: 512 bytes), so a chunk holds ~1 MiB of whole ones
        chunks = spins_chunk(shape) if storage == "int8" else \
            (1, 1, chunk_rows(n_s, int(np.prod(stored.shape[3:]))), *stored.shape[3:])
        d = f.create_dataset("spins", data=stored, chunks=chunks, fillvalue=spin_fill(storage))
        spin_storage.mark(d, storage, spins.shape)
        if energy is not None:
            f["energy"] = np.asarray(energy, dtype=np.float64).reshape(n_t, n_c, n_s)
        f["magnetization"] = np.asarray(magnetization, dtype=np.float64).reshape(n_t, n_c, n_s)
        for name, data in (timeseries or {}).items():
            f[f"timeseries/{name}"] = np.asarray(data, dtype=np.float64)
        label_ensemble(f, temperatures, storage)
    return path


class Ensemble:
    """Lazy view of an ensemble file. Use as a context manager or call close()."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.file = open_hdf5(self.path, f"an ensemble file ({FORMAT})")
        try:
            self._check_and_load()
        except BaseException:
            self.file.close()
            raise

    def _check_and_load(self) -> None:
        f, path = self.file, self.path
        try:
            fmt = f.attrs.get("format")
            fmt = fmt.decode() if isinstance(fmt, bytes) else fmt
            if fmt != FORMAT:
                raise FileError(path, f"attribute format = {fmt!r}: expected {FORMAT!r} (not an ensemble file)")
            missing = [name for name in REQUIRED if not isinstance(f.get(name), h5py.Dataset)]
            if missing or "lattice_shape" not in f.attrs:
                what = ", ".join("/" + m for m in missing) or "attribute lattice_shape"
                raise FileError(path, f"has no {what} (truncated, or not written by hpc-rg)")
            self.attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
            self.temperatures = f["temperatures"][()]
            stored = f["spins"]
            self.lattice_shape = tuple(int(x) for x in np.atleast_1d(f.attrs["lattice_shape"]))
            self.spin_storage = spin_storage.storage_of(stored)
            if self.spin_storage not in spin_storage.STORAGES:
                raise FileError(path, f"/spins attribute {spin_storage.ATTR} = {self.spin_storage!r}: expected one "
                                      f"of {', '.join(spin_storage.STORAGES)} (written by a newer hpc-rg?)")
            shape = tuple(stored.shape)
            expected = (len(self.temperatures),) + shape[1:3] + self.lattice_shape
            on_disk = spin_storage.stored_shape(expected, self.spin_storage)
            dtype = spin_storage.stored_dtype(self.spin_storage)
            if len(shape) != 3 + len(self.lattice_shape) or shape != on_disk or stored.dtype != dtype:
                how = "" if self.spin_storage == "int8" else " (spins packed 8 per byte along x)"
                raise FileError(path, f"/spins is {stored.dtype} {shape}: expected {dtype} {on_disk}{how} "
                                      "(temperatures x chains x samples x lattice_shape)")
            # what every reader indexes: int8 (..., *lattice_shape) whatever the storage
            self.spins = spin_storage.PackedSpins(stored, self.lattice_shape[-1]) \
                if self.spin_storage == "bits" else stored
            self.spins_dataset = stored
            for name in ("energy", "magnetization"):
                if name in f and tuple(f[name].shape) != shape[:3]:
                    raise FileError(path, f"/{name} has shape {tuple(f[name].shape)}: expected {shape[:3]}")
            check_sources(path, stored)
        except FileError:
            raise
        except (OSError, KeyError, ValueError, TypeError) as e:
            raise FileError(path, f"is damaged: {hdf5_reason(e)}; copy it again or re-create it") from None
        self.n_temperatures, self.n_chains, self.n_samples = shape[:3]

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
                yield self.spins[t, c, s0:s0 + batch]      # a "bits" file: these rows only, unpacked

    def to_xarray(self):
        """A lazy `xarray.Dataset`: spins (temperature, chain, sample, y, x), energy and magnetization
        (temperature, chain, sample), timeseries_*; nothing is read until values are asked for, then only
        the slab selected. Keep the Ensemble open while using it. Needs `pip install hpc_rg[xarray]`."""
        from hpc_rg.io.xarray_view import ensemble_dataset   # here: xarray is an optional extra

        def read_spins(key: tuple) -> np.ndarray:
            # the one place to_xarray reads spins: a basic selection (slices, integers) over
            # (temperature, chain, sample, *lattice_shape), returned as int8 +-1
            if not self.file.id.valid:
                raise ValueError(f"{self.path}: the Ensemble was closed; keep it open while you use its "
                                 "to_xarray() Dataset (or .load() the Dataset before closing)")
            return self.spins[key]
        return ensemble_dataset(self, read_spins)

    def __repr__(self) -> str:
        """What a notebook shows: model, lattice, temperatures, chains, samples and how spins are stored."""
        if not self.file.id.valid:
            return f"<Ensemble {self.path} (closed)>"
        T = [f"{t:.6g}" if isinstance(t, (float, int, np.number)) else str(t)   # an Ensemble(...) of a
             for t in np.asarray(self.temperatures).reshape(-1)]                    # damaged file, too
        temps = ", ".join(T if len(T) <= 8 else T[:4] + ["..."] + T[-3:])
        lattice = " x ".join(map(str, self.lattice_shape))
        n_sites = int(np.prod(self.lattice_shape))
        d = getattr(self.spins, "dataset", self.spins)      # the stored dataset under a "bits" view
        if d.is_virtual:
            parts = {name for name, _ in virtual_sources(d)} - {"."}
            where = f"virtual over {len(parts)} part file(s)"
        else:
            size = d.id.get_storage_size()
            where = (f"{size / 2 ** 20:.1f} MiB" if size >= 2 ** 20 else f"{size / 2 ** 10:.1f} KiB") + " on disk" + \
                (f", {d.compression}" if d.compression else "")
        storage = str(self.attrs.get("spin_storage", d.attrs.get("spin_storage", d.dtype)))
        model, storage = (" ".join(s.split())[:80] for s in (self.model, storage))   # one line each, whatever
        return (f"<Ensemble {self.path}\n"                                             # the file says
                f"  model         {model or '?'}\n"
                f"  lattice       {lattice} ({n_sites} sites)\n"
                f"  temperatures  {len(T)}: {temps}\n"
                f"  chains        {self.n_chains}\n"
                f"  samples       {self.n_samples} per chain ({self.n_temperatures * self.n_chains * self.n_samples}"
                f" configurations)\n"
                f"  storage       spins {storage}, {where}>")

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> "Ensemble":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_ensemble(path: str | Path) -> Ensemble:
    """The ensemble file at `path` (strict: a folder is refused; `hpc_rg.open_ensemble` also takes a run
    folder). Also refuses /temperatures that are not one finite number per temperature, which every reader
    (repr, to_xarray, the report's table) takes them to be."""
    ens = Ensemble(path)
    T = np.asarray(ens.temperatures)
    if T.ndim != 1 or T.dtype.kind not in "fiu" or not np.all(np.isfinite(T)):
        ens.close()
        raise FileError(path, f"/temperatures is {T.dtype} {T.shape}, values {_clip(T)}: expected finite "
                              "numbers, one per temperature (n_T,) (damaged, or not written by hpc-rg)")
    return ens


def _clip(a: np.ndarray) -> str:
    text = np.array2string(a.reshape(-1)[:6], threshold=6)
    return text[:80] + ("..." if a.size > 6 or len(text) > 80 else "")


__all__ = ["FORMAT", "SPIN_FILL", "FileError", "Ensemble", "open_ensemble", "write_ensemble", "open_hdf5"]

"""The parallel ensemble writer: per-rank part files, assembled into one `ensemble.h5` by virtual datasets.

Time is cut into *parts* at checkpoints: part c holds, for the (ladder, temperature) units a rank owns,
the samples j0 <= j < j1 and the time-series points k0 <= k < k1 produced between checkpoints c and c+1.
A part is complete once the checkpoint that closes it is committed; a part left open by a killed run is
deleted on resume and its samples are produced again from the checkpoint (bit for bit). The parts are
self-describing (their units and offsets are attributes), so the number of ranks may change between runs.

Layout of a part: each array (spins, energy, magnetization, ts_energy, ts_magnetization; units x width x
rows [x site]; spins packed 8 per byte along x when the part's attribute spin_storage is "bits", packed as
they arrive in `add_sample`) is an extendible chunked dataset `<name>` holding whole chunks only, followed by
`<name>_tail` (attribute offset) holding the rows short of a whole chunk in exactly their size, so a part
takes the bytes of its data (a partly filled chunk would be allocated whole: with one ~1 MiB chunk per unit
and part, parts took ~20x their data). `segments`/`read_rows` read either layout, including older parts
without tails. exchange_history (rank 0) is written once at close. A full disk while writing a part or
the ensemble raises `hpc_rg.io.diskfull.DiskFullError` (one line, exit 2) and leaves no ensemble.h5.tmp.

The parts are assembled into `ensemble.h5` (format hpc_rg.ensemble/1) by `VirtualAssembler`
(`hpc_rg.io.virtual_assembler`: /spins a virtual dataset over the parts; `assemble` here is its positional
form) or, with an MPI-enabled h5py, copied collectively into one real file by `CollectiveAssembler`
(`hpc_rg.io.mpio`); both take an `hpc_rg.io.layout.EnsembleLayout`. The parts stay either way, since
extending a run re-assembles over them. Their names and reading side are in `hpc_rg.io.part_files`.
"""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from hpc_rg.io import diskfull, spin_storage
from hpc_rg.io.atomic import fsync_file
from hpc_rg.io.layout import SPIN_FILL, EnsembleLayout
from hpc_rg.io.part_files import (PART_RE, check_storage, list_parts, part_path, part_storage, read_rows,
                                  segments)
from hpc_rg.io.virtual_assembler import VirtualAssembler

BUFFER_BYTES = 64 << 20
SCALAR_ROWS = 1024       # rows per chunk of the float64 per-sample and per-measurement arrays
# the part files' names and reading side (hpc_rg.io.part_files) stay importable from here
__all__ = ["PartWriter", "assemble", "BUFFER_BYTES", "SCALAR_ROWS", "PART_RE", "part_path", "list_parts",
           "segments", "read_rows", "part_storage", "check_storage"]


class _Column:
    """One array (n_units, width, n, *site) of a part, appended along axis 2 (samples or measurements).

    Disk is spent only on data: whole chunks go to the extendible chunked dataset `name`, and at close the
    rows short of a whole chunk go to `name + "_tail"`, a dataset of exactly their size. (HDF5 allocates a
    whole chunk for a partly filled one: with one ~1 MiB chunk per unit and part, parts took ~20x their data.)
    A chunk is written once, whole, in one call; the rows that do not fill one wait in memory."""

    def __init__(self, file: h5py.File, name: str, n_units: int, width: int, site: tuple[int, ...], dtype,
                 per: int, compression: str | None = None, fill=None):
        self.file, self.name = file, name
        self.n_units, self.width, self.site = n_units, width, tuple(site)
        self.dtype, self.per, self.compression, self.fill = np.dtype(dtype), int(per), compression, fill
        self.dset = None
        self.written = 0                  # rows in the chunked dataset (a multiple of per)
        self.pending: list[np.ndarray] = []
        self.n_pending = 0

    def append(self, block: np.ndarray) -> None:
        """Rows (n_units, width, k, *site), following the rows appended before."""
        k = block.shape[2]
        if k == 0:
            return
        if self.n_pending:                 # complete the waiting chunk first (copies < one chunk of rows)
            need = self.per - self.n_pending
            self.pending.append(np.array(block[:, :, :need]))
            self.n_pending += min(need, k)
            block = block[:, :, need:]
            if self.n_pending < self.per:
                return
            self._write_chunks(np.concatenate(self.pending, axis=2))
            self.pending, self.n_pending = [], 0
        whole = block.shape[2] // self.per * self.per
        if whole:
            self._write_chunks(block[:, :, :whole])      # the bulk is written from the caller's array
        if block.shape[2] > whole:
            self.pending, self.n_pending = [np.array(block[:, :, whole:])], block.shape[2] - whole

    def _write_chunks(self, data: np.ndarray) -> None:
        if self.dset is None:
            self.dset = self.file.create_dataset(
                self.name, shape=(self.n_units, self.width, 0, *self.site),
                maxshape=(self.n_units, self.width, None, *self.site), dtype=self.dtype,
                chunks=(1, 1 if self.site else self.width, self.per, *self.site), compression=self.compression,
                fillvalue=self.fill, fill_time="never")
        a, n = self.written, data.shape[2]
        self.dset.resize(a + n, axis=2)
        for u in range(self.n_units):            # one contiguous hyperslab per unit
            self.dset[u, :, a:a + n] = data[u]
        self.written += n

    def close(self) -> None:
        """Write the rows short of a whole chunk, in a dataset of their exact size."""
        if not self.n_pending:
            return
        data = self.pending[0] if len(self.pending) == 1 else np.concatenate(self.pending, axis=2)
        kw = dict(chunks=(1, 1 if self.site else self.width, data.shape[2], *self.site),
                  compression=self.compression) if self.compression else {}
        tail = self.file.create_dataset(self.name + "_tail", data=data, fillvalue=self.fill, **kw)
        tail.attrs["offset"] = self.written
        self.pending, self.n_pending = [], 0

    @property
    def rows(self) -> int:
        return self.written + self.n_pending


class PartWriter:
    """Appends samples and time-series points of this rank's units to one part file."""

    def __init__(self, path: Path, units: list[tuple[int, int]], width: int, lattice_shape: tuple[int, ...],
                 j0: int, k0: int, compression: str | None = None, storage: str = "int8"):
        if storage not in spin_storage.STORAGES:
            raise ValueError(f"spin storage {storage!r}: expected one of {', '.join(spin_storage.STORAGES)}")
        self.storage = storage
        self.path = Path(path)
        self.units = list(units)
        self.index = {u: i for i, u in enumerate(self.units)}
        self.width = width
        self.shape = tuple(lattice_shape)
        self.j0, self.k0 = j0, k0
        self.n_j = 0                      # samples delivered to the columns (all units advance together)
        n_u = len(self.units)
        self.file = h5py.File(self.path, "w", rdcc_nbytes=64 << 20, rdcc_nslots=100003)
        self.file.attrs["units"] = np.array(self.units, dtype=np.int64).reshape(n_u, 2)
        self.file.attrs["width"] = width
        self.file.attrs["j0"] = j0
        self.file.attrs["k0"] = k0
        self.file.attrs[spin_storage.ATTR] = storage      # int8, or bits: packed along x as they arrive
        self.stored = spin_storage.stored_shape(self.shape, storage)
        comp = None if compression in (None, "none") else compression
        self.spins = _Column(self.file, "spins", n_u, width, self.stored, spin_storage.stored_dtype(storage),
                             self._per(), comp, SPIN_FILL if storage == "int8" else 0)
        self.scalars = {name: _Column(self.file, name, n_u, width, (), np.float64, SCALAR_ROWS)
                        for name in ("energy", "magnetization", "ts_energy", "ts_magnetization")}
        self._buf: dict[int, list] = {}   # sample index -> per-unit (spins, e, m)
        self._buf_bytes = 0
        self._ts: dict[int, dict[int, tuple]] = {u: {} for u in range(n_u)}   # unit -> k0 -> (e, m)
        self.n_k = 0                      # measurements delivered to the columns
        self._history: list[np.ndarray] = []

    def _per(self) -> int:
        """Several consecutive samples of one chain per chunk, up to ~1 MiB: fewer, larger writes, and a
        temperature's samples are still whole contiguous chunks."""
        return max(1, (1 << 20) // int(np.prod(self.stored)))

    # samples ------------------------------------------------------------------------------------------
    def add_sample(self, unit, j: int, spins: np.ndarray, energy: np.ndarray, magnetization: np.ndarray) -> None:
        """Unit `unit`'s configurations (width, *shape) at sample index j (global)."""
        spins = spin_storage.to_stored(spins, self.storage)     # bits: packed now, buffered 8x smaller
        row = self._buf.setdefault(j, [None] * len(self.units))
        row[self.index[unit]] = (spins, energy, magnetization)
        self._buf_bytes += spins.nbytes
        if self._buf_bytes > BUFFER_BYTES:
            self.flush()

    def add_timeseries(self, unit, k0: int, energy: np.ndarray, magnetization: np.ndarray) -> None:
        """Points k0 .. k0+n-1 (global indices) of unit `unit`; arrays (width, n)."""
        self._ts[self.index[unit]][int(k0)] = (np.asarray(energy), np.asarray(magnetization))

    def add_history(self, history: np.ndarray) -> None:
        """Exchange slot history (rows, ...): kept in memory, written once at close in its exact size."""
        if history.size:
            self._history.append(np.asarray(history, dtype=np.int16))

    def flush(self) -> None:
        """Hand every buffered sample that all units have delivered, in order, to the columns (which write
        the whole chunks among them); likewise the time-series points every unit has delivered."""
        with diskfull.guard(self.path):
            self._flush()

    def _flush(self) -> None:
        rows = []
        while True:
            row = self._buf.get(self.j0 + self.n_j + len(rows))
            if row is None or any(x is None for x in row):
                break
            rows.append(self._buf.pop(self.j0 + self.n_j + len(rows)))
            self._buf_bytes -= sum(x[0].nbytes for x in rows[-1])
        if rows:
            n = len(rows)
            block = np.empty((len(self.units), self.width, n, *self.stored), dtype=self.spins.dtype)
            scal = np.empty((2, len(self.units), self.width, n))
            for i, r in enumerate(rows):
                for u, (sp, e, m) in enumerate(r):
                    block[u, :, i] = sp
                    scal[0, u, :, i] = e
                    scal[1, u, :, i] = m
            self.spins.append(block)
            self.scalars["energy"].append(scal[0])
            self.scalars["magnetization"].append(scal[1])
            self.n_j += n
        self._flush_timeseries()

    def _flush_timeseries(self) -> None:
        """Points k that every unit has delivered, from the next one on (units advance together)."""
        if not self.units:                 # a rank that owns no chain (more ranks than chains) stores nothing
            return
        k = self.k0 + self.n_k
        pieces: list[list[tuple]] = []
        while True:
            got = [self._ts[u].get(k) for u in range(len(self.units))]
            if any(g is None for g in got):
                break
            lengths = {g[0].shape[1] for g in got}
            if len(lengths) != 1:          # units cut their points differently: merge what lines up
                n = min(lengths)
                for u, g in enumerate(got):
                    if g[0].shape[1] > n:
                        self._ts[u][k + n] = (g[0][:, n:], g[1][:, n:])
                        got[u] = (g[0][:, :n], g[1][:, :n])
            for u in range(len(self.units)):
                del self._ts[u][k]
            pieces.append(got)
            k += got[0][0].shape[1]
        if not pieces:
            return
        for q, name in ((0, "ts_energy"), (1, "ts_magnetization")):
            block = np.stack([np.concatenate([p[u][q] for p in pieces], axis=1) for u in range(len(self.units))])
            self.scalars[name].append(block)
        self.n_k = k - self.k0

    def close(self) -> None:
        """Flush and close; the part is durable afterwards (fsync), ready for the checkpoint to commit it."""
        with diskfull.guard(self.path):
            self._close()

    def _close(self) -> None:
        self._flush()
        if self._buf:
            raise RuntimeError(f"{self.path}: samples {sorted(self._buf)} incomplete at close")
        if any(self._ts.values()):
            raise RuntimeError(f"{self.path}: time-series points {sorted(set().union(*self._ts.values()))[:4]} "
                               "not delivered by every unit at close")
        for col in (self.spins, *self.scalars.values()):
            col.close()
        if self._history:
            self.file.create_dataset("exchange_history", data=np.concatenate(self._history))
        self.file.attrs["n_samples"] = self.n_j
        self.file.attrs["n_measurements"] = self.n_k
        self.file.flush()
        self.file.close()
        fsync_file(self.path)


def assemble(out: Path, parts_folder: Path, n_parts: int, temperatures, n_chains: int, lattice_shape,
             n_samples: int, n_measurements: int, attrs: dict, exchange: dict | None = None,
             storage: str = "int8") -> Path:
    """Write `<out>/ensemble.h5` over parts 0..n_parts-1 (atomic rename). `storage`: how the parts store
    spins ("int8" or "bits"), and so /spins; a part that says otherwise is refused. The positional form
    of `VirtualAssembler(out, parts_folder, n_parts, EnsembleLayout(...)).write()`."""
    layout = EnsembleLayout(temperatures, n_chains, lattice_shape, n_samples, n_measurements, storage,
                            attrs=attrs, exchange=exchange)
    return VirtualAssembler(out, parts_folder, n_parts, layout).write()

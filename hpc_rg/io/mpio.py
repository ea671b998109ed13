"""The collective ensemble writer: every rank copies its share of the part files into one `ensemble.h5`,
written with parallel HDF5 (h5py `driver="mpio"` on the MPI world).

`CollectiveAssembler` writes the same file as its sibling `hpc_rg.io.virtual_assembler.VirtualAssembler`
(format hpc_rg.ensemble/1, same datasets, same attributes; both take an `EnsembleLayout` and share the
inventory and coverage check of `hpc_rg.io.assembler`), except that /spins is a real chunked dataset instead of a virtual one, so the file stands
alone (the parts may be moved or archived without breaking it) and /spins may be compressed.

Work is dealt by *unit*, not by file: a unit (ladder, temperature slot) has index ladder * n_T + slot, and
`deal(n_units, size, rank)` gives every rank a contiguous share, exactly as the chain driver deals units.
A rank copies its units' samples from whichever part files hold them (a part records its units in its
attributes), so after a resume on another number of ranks a rank reads the parts named after other ranks;
with the same number of ranks it reads only its own.

Parallel HDF5 rules this module follows (and the tests check):
- Creating files, groups, datasets and attributes is collective: every rank makes the same calls with the
  same arguments, so the small inputs (attrs, exchange, slot history) are broadcast from rank 0 first.
- Raw data is written collectively (required for compressed datasets). Every rank joins every collective
  write, with an empty selection when it has nothing left (h5py skips H5Dwrite for empty selections, which
  hangs the other ranks: h5py issues #965, #1108), so the writes go through the low-level API.
- Inputs are checked on rank 0 before the file is opened, and a read failure on any rank is agreed on
  (one allreduce per round) before the next collective call, so a bad part fails every rank instead of
  hanging them.
The file is written as `ensemble.h5.tmp` and renamed by rank 0 after every rank has closed it; on a write
error (a full disk: `hpc_rg.io.diskfull.DiskFullError`, exit 2) the temporary file is removed.
/spins has the fill value SPIN_FILL (no spin), as the virtual-dataset writer's, and is written in whole
chunks by one rank each (fill_time never: nothing is written twice).
"""
from __future__ import annotations

import importlib.util
from contextlib import nullcontext
from pathlib import Path

import h5py
import numpy as np
from h5py import h5fd, h5p, h5s

from hpc_rg.io import diskfull, spin_storage
from hpc_rg.io.assembler import EnsembleAssembler
from hpc_rg.io.atomic import atomic_path
from hpc_rg.io.ensemble import chunk_rows
from hpc_rg.io.labels import label_ensemble
from hpc_rg.io.layout import (SAMPLE_ARRAYS, TIMESERIES_ARRAYS, EnsembleLayout, root_attributes,
                              write_root_attributes)
from hpc_rg.io.part_files import SOURCE, PartInventory, PartRecord
from hpc_rg.io.parts import BUFFER_BYTES
from hpc_rg.parallel import deal

CHUNK_BYTES = 1 << 20
OPEN_PARTS = 16          # part files a rank keeps open at once while copying
ARRAYS = ("spins", *SAMPLE_ARRAYS, *TIMESERIES_ARRAYS)     # copied in this order, each in rounds


def available() -> bool:
    """True when h5py was built against parallel HDF5 and mpi4py is installed (the collective path can run).
    mpi4py is looked up, not imported: `hpc_rg.parallel` stays the one module that imports it."""
    return bool(h5py.get_config().mpi) and importlib.util.find_spec("mpi4py") is not None


def common_width(inv: PartInventory, parts_folder: Path, n_chains: int) -> int:
    """The one chain width of the parts (work is dealt by whole units of that width)."""
    widths = {p.width for p in inv.parts}
    if len(widths) != 1:
        raise RuntimeError(f"{parts_folder}: parts with chain widths {sorted(widths)} (expected one width)")
    width = widths.pop()
    if n_chains % width:
        raise RuntimeError(f"{parts_folder}: {n_chains} chains is not a multiple of the parts' width {width}")
    return width


# -- copying ------------------------------------------------------------------------------------------------
class _PartCache:
    """A few part files open for reading (serial driver: each rank reads on its own)."""

    def __init__(self):
        self.files: dict[str, object] = {}

    def get(self, path: str):
        import h5py
        f = self.files.pop(path, None)
        if f is None:
            if len(self.files) >= OPEN_PARTS:
                oldest = next(iter(self.files))
                self.files.pop(oldest).close()
            f = h5py.File(path, "r")
        self.files[path] = f            # most recently used last
        return f

    def close(self) -> None:
        for f in self.files.values():
            f.close()
        self.files = {}


def _blocks(n: int, step: int) -> list[tuple[int, int]]:
    return [(a, min(a + step, n)) for a in range(0, n, step)]


def _read_block(cache: _PartCache, holders: list[tuple[PartRecord, int]], name: str, a: int, b: int, width: int,
                tail: tuple, dtype) -> np.ndarray:
    """Samples (or measurements) a..b-1 of one unit, gathered from the parts that hold them."""
    src = SOURCE[name]
    out = np.empty((1, width, b - a, *tail), dtype=dtype)
    for p, i in holders:
        for dset, first, rows in p.segments[src]:
            start = p.first(src) + first          # global index of the segment's first row
            lo, hi = max(a, start), min(b, start + rows)
            if lo < hi:
                d = cache.get(p.path)[dset]
                out[0, :, lo - a:hi - a] = d[i, :, lo - start:hi - start]
    return out


def _collective_write(dset, dxpl, start: tuple | None, data: np.ndarray | None) -> None:
    """One collective H5Dwrite: `data` at `start`, or an empty selection (the rank still joins)."""
    fspace = dset.id.get_space()
    if data is None:
        fspace.select_none()
        mspace = h5s.create_simple((1,))
        mspace.select_none()
        data = np.zeros(1, dtype=dset.dtype)
    elif start is None:                   # the whole dataset (small arrays, written by rank 0)
        data = np.ascontiguousarray(data, dtype=dset.dtype)
        fspace.select_all()
        mspace = h5s.create_simple(data.shape) if data.ndim else h5s.create(h5s.SCALAR)
    else:
        data = np.ascontiguousarray(data, dtype=dset.dtype)
        fspace.select_hyperslab(tuple(start), data.shape)
        mspace = h5s.create_simple(data.shape)
    dset.id.write(mspace, fspace, data, dxpl=dxpl)


class CollectiveAssembler(EnsembleAssembler):
    """One real /spins (chunked, optionally compressed), copied from the parts by every rank of `world` (a
    `hpc_rg.parallel.World` with an mpi4py communicator). `write()` is called by EVERY rank; the layout's
    `attrs` and `exchange` are taken from rank 0 (the other ranks may leave them empty). `compression`
    ("gzip", "lzf", "none"/None) applies to /spins; the parts' storage ("int8" or "bits") is copied as it
    is, never unpacked. Returns the path on every rank, once the file is complete under its final name."""

    def __init__(self, world, out: Path, parts_folder: Path, n_parts: int, layout: EnsembleLayout,
                 compression: str | None = None):
        super().__init__(out, parts_folder, n_parts, layout)
        self.world = world
        self.compression = None if compression in (None, "none") else compression

    def _agreed_plan(self) -> dict:
        """Everything every rank must agree on, decided on rank 0 (errors raised on every rank, before any
        collective HDF5 call, so that a bad input cannot leave ranks waiting)."""
        world, plan, err = self.world, None, None
        if world.is_root:
            try:
                inv = self.plan()
                width = common_width(inv, self.parts_folder, self.layout.n_chains)
                plan = {"inv": inv, "width": width, "exchange": self.layout.exchange,
                        "attrs": root_attributes(self.layout.lattice_shape, self.layout.attrs)}
            except Exception as e:       # noqa: BLE001 -- re-raised on every rank below
                plan, err = {"error": f"{type(e).__name__}: {e}"}, e
        plan = world.bcast(plan)
        if "error" in plan:
            if world.is_root:
                raise err
            raise RuntimeError(f"rank 0 could not plan the ensemble: {plan['error']}")
        return plan

    def write(self) -> Path:
        world = self.world
        plan = self._agreed_plan()
        with diskfull.guard(self.final, self.tmp if world.is_root else None):
            # rank 0 owns the temporary name (removed on failure, renamed on success); every rank writes it
            with atomic_path(self.final, durable=True, temporary=self.tmp) if world.is_root \
                    else nullcontext(self.tmp):
                self._write_file(plan)
        world.barrier()
        return self.final

    def _write_file(self, plan: dict) -> None:
        world, lay = self.world, self.layout
        inv, width = plan["inv"], plan["width"]
        holders: dict[tuple[int, int], list] = {}
        for p in inv.parts:
            for i, u in enumerate(p.units):
                holders.setdefault(u, []).append((p, i))
        n_units = lay.n_chains // width * lay.n_t
        units_of = [[(u // lay.n_t, u % lay.n_t) for u in deal(n_units, world.size, r)] for r in range(world.size)]

        stored = lay.stored_site_shape          # a configuration as the parts hold it
        per = chunk_rows(lay.n_samples, int(np.prod(stored)), CHUNK_BYTES)
        # each block is a whole number of chunks of one unit, so every chunk is written once, by one rank,
        # in one call (no read-modify-write of compressed chunks)
        step = {"spins": max(per, BUFFER_BYTES // max(width * int(np.prod(stored)), 1) // per * per)}
        for name in (*SAMPLE_ARRAYS, *TIMESERIES_ARRAYS):
            step[name] = max(1, BUFFER_BYTES // (8 * width))

        dxpl = h5p.create(h5p.DATASET_XFER)
        dxpl.set_dxpl_mpio(h5fd.MPIO_COLLECTIVE)
        cache = _PartCache()
        failure: BaseException | None = None
        f = h5py.File(self.tmp, "w", driver="mpio", comm=world.comm)
        # a write error (a full disk above all) reaches every rank in the same collective call: the file is
        # closed, or abandoned when the disk is full (closing retries the write, see hpc_rg.io.diskfull)
        with diskfull.closing_on_error(f):
            try:
                write_root_attributes(f, plan["attrs"])
                dsets = {"temperatures": f.create_dataset("temperatures", shape=(lay.n_t,), dtype=np.float64)}
                dsets["spins"] = f.create_dataset("spins", shape=lay.stored_spins_shape, dtype=lay.spin_dtype,
                                                  chunks=(1, 1, per, *stored), compression=self.compression,
                                                  fill_time="never", fillvalue=lay.spin_fill)
                spin_storage.mark(dsets["spins"], lay.storage, lay.spins_shape)
                for name in (*SAMPLE_ARRAYS, *TIMESERIES_ARRAYS):
                    dsets[name] = f.create_dataset(name, shape=(lay.n_t, lay.n_chains, lay.length(name)),
                                                   dtype=np.float64)
                small = [("temperatures", lay.temperature_array)]
                items = self.exchange_arrays(plan["exchange"], inv)
                if items:
                    g = f.create_group("exchange")
                    for k, v in items:
                        v = np.asarray(v)
                        dsets[f"exchange/{k}"] = g.create_dataset(k, shape=v.shape, dtype=v.dtype)
                        small.append((f"exchange/{k}", v))
                for name, v in small:       # rank 0 writes, the others join with nothing
                    if v.size:
                        _collective_write(dsets[name], dxpl, None, v if world.is_root else None)

                for name in ARRAYS:
                    tail = stored if name == "spins" else ()
                    dtype = lay.spin_dtype if name == "spins" else np.float64
                    todo = [[(u, a, b) for u in units_of[r] for a, b in _blocks(lay.length(name), step[name])]
                            for r in range(world.size)]
                    for k in range(max(len(t) for t in todo)):
                        task = todo[world.rank][k] if k < len(todo[world.rank]) else None
                        data = None
                        if task is not None and failure is None:
                            (g, t), a, b = task
                            try:
                                data = _read_block(cache, holders[(g, t)], name, a, b, width, tail, dtype)
                            except Exception as e:     # noqa: BLE001 -- agreed on below, re-raised after close
                                failure, data = e, None
                        if world.any(failure is not None):
                            break
                        start = None
                        if data is not None:
                            (g, t), a, _ = task
                            start = (t, g * width, a) + (0,) * len(tail)
                        _collective_write(dsets[name], dxpl, start, data)
                    if world.any(failure is not None):
                        break
                if not world.any(failure is not None):
                    # dimension scales and descriptions: the same metadata calls on every rank, the temperature
                    # coordinate written by rank 0 in a collective write the others join
                    label_ensemble(f, lay.temperature_array, lay.storage,
                                   write=lambda d, v: _collective_write(d, dxpl, None, v if world.is_root else None))
            finally:
                cache.close()
        f.close()                   # collective: every rank reaches it, also after an agreed failure
        if world.any(failure is not None):     # every rank asks (no short-circuit: it is a collective)
            if failure is not None:
                raise failure
            raise RuntimeError(f"another rank failed while copying the parts of {self.parts_folder} (see its error)")


def assemble_collective(world, out: Path, parts_folder: Path, n_parts: int, temperatures, n_chains: int,
                        lattice_shape, n_samples: int, n_measurements: int, attrs: dict | None,
                        exchange: dict | None = None, compression: str | None = None,
                        storage: str = "int8") -> Path:
    """Write `<out>/ensemble.h5` from parts 0..n_parts-1 with collective parallel HDF5, called by EVERY rank
    (`attrs` and `exchange` are taken from rank 0; the other ranks may pass None). The positional form of
    `CollectiveAssembler(world, out, parts_folder, n_parts, EnsembleLayout(...), compression).write()`."""
    layout = EnsembleLayout(temperatures, n_chains, lattice_shape, n_samples, n_measurements, storage,
                            attrs=attrs, exchange=exchange)
    return CollectiveAssembler(world, out, parts_folder, n_parts, layout, compression).write()

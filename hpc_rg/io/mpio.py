"""The collective ensemble writer: every rank copies its share of the part files into one `ensemble.h5`,
written with parallel HDF5 (h5py `driver="mpio"` on the MPI world).

It writes the same file as `hpc_rg.io.parts.assemble` (format hpc_rg.ensemble/1, same datasets, same
attributes), except that /spins is a real chunked dataset instead of a virtual one, so the file stands
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

import os
from pathlib import Path

import numpy as np

from hpc_rg.io import diskfull, spin_storage
from hpc_rg.io.ensemble import FORMAT, SPIN_FILL, chunk_rows
from hpc_rg.io.parts import BUFFER_BYTES, list_parts, part_storage, segments
from hpc_rg.parallel import deal

CHUNK_BYTES = 1 << 20
OPEN_PARTS = 16          # part files a rank keeps open at once while copying


def available() -> bool:
    """True when h5py was built against parallel HDF5 and mpi4py is installed (the collective path can run).
    mpi4py is looked up, not imported: `hpc_rg.parallel` stays the one module that imports it."""
    import importlib.util
    try:
        import h5py
    except ImportError:
        return False
    return bool(h5py.get_config().mpi) and importlib.util.find_spec("mpi4py") is not None


# -- inventory of the parts (rank 0) ------------------------------------------------------------------------
def _inventory(parts_folder: Path, n_parts: int) -> dict:
    """What every committed part holds: its units and sample/measurement ranges; plus the exchange history
    (rank 0's parts hold it) in part order."""
    import h5py
    parts, history = [], []
    for part, _, path in list_parts(parts_folder):
        if part >= n_parts:
            continue
        with h5py.File(path, "r") as f:
            nj, nk = int(f.attrs["n_samples"]), int(f.attrs["n_measurements"])
            parts.append({"path": str(path), "units": [(int(g), int(t)) for g, t in f.attrs["units"]],
                          "storage": part_storage(f),
                          "width": int(f.attrs["width"]), "j0": int(f.attrs["j0"]), "k0": int(f.attrs["k0"]),
                          "nj": nj, "nk": nk,
                          # where each array's rows lie in the part (chunked dataset, then its exact-size tail)
                          "segments": {src: segments(f, src, nj if n_key == "nj" else nk)
                                       for src, _, n_key in _SOURCES.values()}})
            if "exchange_history" in f:
                history.append((part, f["exchange_history"][()]))
    slot_history = np.concatenate([h for _, h in sorted(history, key=lambda x: x[0])]) if history else None
    return {"parts": parts, "slot_history": slot_history}


def _check_coverage(inv: dict, parts_folder, n_t: int, n_chains: int, n_samples: int, n_measurements: int,
                    storage: str = "int8") -> int:
    """The common chain width of the parts; raises when a sample of some unit is in no part, or a part
    stores its spins otherwise than `storage`."""
    from hpc_rg.io.parts import check_storage
    for p in inv["parts"]:
        check_storage(p["path"], p["storage"], storage)
    widths = {p["width"] for p in inv["parts"]}
    if len(widths) != 1:
        raise RuntimeError(f"{parts_folder}: parts with chain widths {sorted(widths)} (expected one width)")
    width = widths.pop()
    if n_chains % width:
        raise RuntimeError(f"{parts_folder}: {n_chains} chains is not a multiple of the parts' width {width}")
    covered = np.zeros((n_chains // width, n_t, n_samples), dtype=bool)
    for p in inv["parts"]:
        for g, t in p["units"]:
            covered[g, t, p["j0"]:p["j0"] + p["nj"]] = True
    if not covered.all():
        g, t, j = np.argwhere(~covered)[0]
        raise RuntimeError(f"{parts_folder}: no part holds sample {j} of temperature {t}, "
                           f"chains {g * width}..{(g + 1) * width - 1} (parts incomplete)")
    if n_measurements:
        got = np.zeros((n_chains // width, n_t, n_measurements), dtype=bool)
        for p in inv["parts"]:
            for g, t in p["units"]:
                got[g, t, p["k0"]:p["k0"] + p["nk"]] = True
        if not got.all():
            g, t, k = np.argwhere(~got)[0]
            raise RuntimeError(f"{parts_folder}: no part holds measurement {k} of temperature {t}, "
                               f"chains {g * width}..{(g + 1) * width - 1} (parts incomplete)")
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


# Output dataset -> (source dataset in a part, axis-2 length key, part offset key, part count key)
_SOURCES = {"spins": ("spins", "j0", "nj"), "energy": ("energy", "j0", "nj"),
            "magnetization": ("magnetization", "j0", "nj"),
            "timeseries/energy": ("ts_energy", "k0", "nk"), "timeseries/magnetization": ("ts_magnetization", "k0", "nk")}


def _blocks(n: int, step: int) -> list[tuple[int, int]]:
    return [(a, min(a + step, n)) for a in range(0, n, step)]


def _read_block(cache: _PartCache, holders: list, name: str, a: int, b: int, width: int, tail: tuple,
                dtype) -> np.ndarray:
    """Samples (or measurements) a..b-1 of one unit, gathered from the parts that hold them."""
    src, off_key, n_key = _SOURCES[name]
    out = np.empty((1, width, b - a, *tail), dtype=dtype)
    for p, i in holders:
        for dset, first, rows in p["segments"][src]:
            start = p[off_key] + first          # global index of the segment's first row
            lo, hi = max(a, start), min(b, start + rows)
            if lo < hi:
                d = cache.get(p["path"])[dset]
                out[0, :, lo - a:hi - a] = d[i, :, lo - start:hi - start]
    return out


def _collective_write(dset, dxpl, start: tuple | None, data: np.ndarray | None) -> None:
    """One collective H5Dwrite: `data` at `start`, or an empty selection (the rank still joins)."""
    from h5py import h5s
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


def assemble_collective(world, out: Path, parts_folder: Path, n_parts: int, temperatures, n_chains: int,
                        lattice_shape, n_samples: int, n_measurements: int, attrs: dict | None,
                        exchange: dict | None = None, compression: str | None = None,
                        storage: str = "int8") -> Path:
    """Write `<out>/ensemble.h5` from parts 0..n_parts-1 with collective parallel HDF5. Called by EVERY rank
    of `world` (a `hpc_rg.parallel.World` with an mpi4py communicator); `attrs` and `exchange` are taken
    from rank 0 (the other ranks may pass None). `compression` ("gzip", "lzf", "none"/None) applies to
    /spins. `storage`: how the parts store spins ("int8" or "bits": copied as they are, never unpacked).
    Returns the path on every rank, once the file is complete under its final name."""
    import h5py
    from h5py import h5fd, h5p

    from hpc_rg.io.labels import label_ensemble
    from hpc_rg.provenance import file_attrs

    out, parts_folder = Path(out), Path(parts_folder)
    shape = tuple(int(x) for x in lattice_shape)
    n_t = len(temperatures)
    final, tmp = out / "ensemble.h5", out / "ensemble.h5.tmp"

    # everything every rank must agree on, decided on rank 0 (errors raised on every rank, before any
    # collective HDF5 call, so that a bad input cannot leave ranks waiting)
    plan = None
    if world.is_root:
        try:
            inv = _inventory(parts_folder, n_parts)
            width = _check_coverage(inv, parts_folder, n_t, n_chains, n_samples, n_measurements, storage)
            plan = {"inv": inv, "width": width, "attrs": {**file_attrs(), **(attrs or {})}, "exchange": exchange}
        except Exception as e:       # noqa: BLE001 -- re-raised on every rank below
            plan = {"error": f"{type(e).__name__}: {e}"}
            err = e
    plan = world.bcast(plan)
    if "error" in plan:
        if world.is_root:
            raise err
        raise RuntimeError(f"rank 0 could not plan the ensemble: {plan['error']}")
    inv, width = plan["inv"], plan["width"]
    n_ladders = n_chains // width

    holders: dict[tuple[int, int], list] = {}
    for p in inv["parts"]:
        for i, u in enumerate(p["units"]):
            holders.setdefault(u, []).append((p, i))
    n_units = n_ladders * n_t
    units_of = [[(u // n_t, u % n_t) for u in deal(n_units, world.size, r)] for r in range(world.size)]

    comp = None if compression in (None, "none") else compression
    stored = spin_storage.stored_shape(shape, storage)          # a configuration as the parts hold it
    spin_dtype = spin_storage.stored_dtype(storage)
    per = chunk_rows(n_samples, int(np.prod(stored)), CHUNK_BYTES)
    chunks = (1, 1, per, *stored)
    # each block is a whole number of chunks of one unit, so every chunk is written once, by one rank,
    # in one call (no read-modify-write of compressed chunks)
    step = {"spins": max(per, BUFFER_BYTES // max(width * int(np.prod(stored)), 1) // per * per)}
    for name in ("energy", "magnetization", "timeseries/energy", "timeseries/magnetization"):
        step[name] = max(1, BUFFER_BYTES // (8 * width))
    length = {"spins": n_samples, "energy": n_samples, "magnetization": n_samples,
              "timeseries/energy": n_measurements, "timeseries/magnetization": n_measurements}

    dxpl = h5p.create(h5p.DATASET_XFER)
    dxpl.set_dxpl_mpio(h5fd.MPIO_COLLECTIVE)
    cache = _PartCache()
    failure: BaseException | None = None
    f = h5py.File(tmp, "w", driver="mpio", comm=world.comm)
    try:
        f.attrs["format"] = FORMAT
        f.attrs["lattice_shape"] = np.array(shape, dtype=np.int64)
        for k, v in plan["attrs"].items():
            f.attrs[k] = v
        dsets = {"temperatures": f.create_dataset("temperatures", shape=(n_t,), dtype=np.float64)}
        dsets["spins"] = f.create_dataset("spins", shape=(n_t, n_chains, n_samples, *stored), dtype=spin_dtype,
                                          chunks=chunks, compression=comp, fill_time="never",
                                          fillvalue=SPIN_FILL if storage == "int8" else 0)
        spin_storage.mark(dsets["spins"], storage, (n_t, n_chains, n_samples, *shape))
        for name in ("energy", "magnetization", "timeseries/energy", "timeseries/magnetization"):
            dsets[name] = f.create_dataset(name, shape=(n_t, n_chains, length[name]), dtype=np.float64)
        small = [("temperatures", np.asarray(temperatures, dtype=np.float64))]
        if plan["exchange"]:
            g = f.create_group("exchange")
            items = list(plan["exchange"].items())
            if inv["slot_history"] is not None:
                items.append(("slot_history", inv["slot_history"]))
            for k, v in items:
                v = np.asarray(v)
                dsets[f"exchange/{k}"] = g.create_dataset(k, shape=v.shape, dtype=v.dtype)
                small.append((f"exchange/{k}", v))
        for name, v in small:       # rank 0 writes, the others join with nothing
            if v.size:
                _collective_write(dsets[name], dxpl, None, v if world.is_root else None)

        for name in ("spins", "energy", "magnetization", "timeseries/energy", "timeseries/magnetization"):
            tail = stored if name == "spins" else ()
            dtype = spin_dtype if name == "spins" else np.float64
            todo = [[(u, a, b) for u in units_of[r] for a, b in _blocks(length[name], step[name])]
                    for r in range(world.size)]
            rounds = max(len(t) for t in todo)
            for k in range(rounds):
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
            label_ensemble(f, temperatures, storage,
                           write=lambda d, v: _collective_write(d, dxpl, None, v if world.is_root else None))
    except BaseException as e:
        # a write error (a full disk above all) reaches every rank in the same collective call: the file
        # is abandoned, not closed (closing retries the write, see hpc_rg.io.diskfull), and its name removed
        cache.close()
        if not diskfull.is_disk_full(e):
            f.close()
        if diskfull.is_disk_full(e):
            diskfull.abandon(tmp if world.is_root else None)
            raise diskfull.as_disk_full(e, final) from e
        if world.is_root:
            tmp.unlink(missing_ok=True)
        raise
    cache.close()
    f.close()                   # collective: every rank reaches it, also after an agreed failure
    if world.any(failure is not None):     # every rank asks (no short-circuit: it is a collective)
        if world.is_root:
            tmp.unlink(missing_ok=True)
        if failure is not None:
            raise failure
        raise RuntimeError(f"another rank failed while copying the parts of {parts_folder} (see its error)")
    if world.is_root:
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
    world.barrier()
    return final

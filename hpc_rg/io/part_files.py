"""The part files of a run (`<out>/parts/p{part:05d}.r{rank:04d}.h5`) as the assemblers read them: their
names, where an array's rows lie in one (`segments`, `read_rows`), and what every committed part holds
(`inventory` -> `PartInventory` of `PartRecord`s). The layout of a part is described in
`hpc_rg.io.parts`, which writes them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from hpc_rg.io import spin_storage

PART_RE = re.compile(r"p(\d{5})\.r(\d{4})\.h5$")
# ensemble dataset -> the part array it is assembled from
SOURCE = {"spins": "spins", "energy": "energy", "magnetization": "magnetization",
          "timeseries/energy": "ts_energy", "timeseries/magnetization": "ts_magnetization"}
PER_SAMPLE = ("spins", "energy", "magnetization")        # part arrays along samples (the rest: measurements)


def part_path(folder: Path, part: int, rank: int) -> Path:
    return Path(folder) / f"p{part:05d}.r{rank:04d}.h5"


def list_parts(folder: Path) -> list[tuple[int, int, Path]]:
    out = []
    for p in Path(folder).glob("p*.r*.h5"):
        m = PART_RE.search(p.name)
        if m:
            out.append((int(m.group(1)), int(m.group(2)), p))
    return sorted(out)


def segments(f: h5py.File, name: str, n: int) -> list[tuple[str, int, int]]:
    """Where rows 0..n-1 of array `name` of an open part lie: [(dataset, first row, rows)]. Reads parts of
    every layout: the chunked dataset alone (older parts: its rows beyond n are unused) or followed by its
    exact-size tail."""
    out, done = [], 0
    if name in f:
        m = min(int(f[name].shape[2]), n)
        if m:
            out.append((name, 0, m))
        done = m
    tail = name + "_tail"
    if tail in f and done < n:
        off = int(f[tail].attrs.get("offset", done))
        k = min(int(f[tail].shape[2]), n - off)
        if off != done or k <= 0:
            raise RuntimeError(f"{f.filename}: /{tail} starts at row {off}, expected {done}")
        out.append((tail, off, k))
        done += k
    if done < n:
        raise RuntimeError(f"{f.filename}: /{name} holds {done} rows, the part records {n}")
    return out


def read_rows(f: h5py.File, name: str, n: int) -> np.ndarray:
    """Rows 0..n-1 of array `name` of an open part, (n_units, width, n, *site), whatever its layout."""
    parts = [f[d][:, :, 0:k] for d, _, k in segments(f, name, n)]
    if not parts:
        return np.empty((len(f.attrs["units"]), int(f.attrs["width"]), 0))
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=2)


def part_storage(f: h5py.File) -> str:
    """How an open part stores its spins ("int8" for parts written before "bits" existed)."""
    v = f.attrs.get(spin_storage.ATTR, "int8")
    return v.decode() if isinstance(v, bytes) else str(v)


def check_storage(path, found: str, storage: str) -> None:
    """Every part of an ensemble must store its spins as the ensemble does (one virtual or real dataset)."""
    if found != storage:
        raise RuntimeError(f"{path}: spins stored as {found!r}, the ensemble is assembled as {storage!r} (a run "
                           "resumed with another simulate.spin_storage?)")


@dataclass(frozen=True)
class PartRecord:
    """What one committed part holds: its units (ladder, temperature slot) of `width` chains each, samples
    j0 .. j0+nj-1 and measurements k0 .. k0+nk-1 of each, and where each array's rows lie in the file
    (`segments`: part array -> [(dataset, first row, rows)], `shapes`: dataset -> its shape)."""
    part: int
    path: str
    units: tuple[tuple[int, int], ...]
    storage: str
    width: int
    j0: int
    k0: int
    nj: int
    nk: int
    segments: dict
    shapes: dict

    def first(self, array: str) -> int:
        """The global index of row 0 of part array `array` (a sample or a measurement)."""
        return self.j0 if array in PER_SAMPLE else self.k0

    def rows(self, array: str) -> int:
        return self.nj if array in PER_SAMPLE else self.nk


@dataclass(frozen=True)
class PartInventory:
    parts: tuple[PartRecord, ...]
    slot_history: np.ndarray | None       # the exchange history (rank 0's parts hold it), in part order


def read_part(part: int, path: Path) -> tuple[PartRecord, np.ndarray | None]:
    """The record of one part file and its exchange history (or None)."""
    with h5py.File(path, "r") as f:
        nj, nk = int(f.attrs["n_samples"]), int(f.attrs["n_measurements"])
        segs = {src: segments(f, src, nj if src in PER_SAMPLE else nk) for src in SOURCE.values()}
        record = PartRecord(
            part=part, path=str(path), units=tuple((int(g), int(t)) for g, t in f.attrs["units"]),
            storage=part_storage(f), width=int(f.attrs["width"]), j0=int(f.attrs["j0"]), k0=int(f.attrs["k0"]),
            nj=nj, nk=nk, segments=segs,
            shapes={d: tuple(f[d].shape) for ranges in segs.values() for d, _, _ in ranges})
        history = f["exchange_history"][()] if "exchange_history" in f else None
    return record, history


def inventory(parts_folder: Path, n_parts: int) -> PartInventory:
    """What every committed part (0 .. n_parts-1) of `parts_folder` holds; a part numbered n_parts or more
    was left open by a killed run and is not read."""
    records, history = [], []
    for part, _, path in list_parts(parts_folder):
        if part >= n_parts:
            continue
        record, h = read_part(part, path)
        records.append(record)
        if h is not None:
            history.append((part, h))
    slot_history = np.concatenate([h for _, h in sorted(history, key=lambda x: x[0])]) if history else None
    return PartInventory(tuple(records), slot_history)

"""The parallel ensemble writer: per-rank part files, assembled into one `ensemble.h5` by virtual datasets.

Time is cut into *parts* at checkpoints: part c holds, for the (ladder, temperature) units a rank owns,
the samples j0 <= j < j1 and the time-series points k0 <= k < k1 produced between checkpoints c and c+1.
A part is complete once the checkpoint that closes it is committed; a part left open by a killed run is
deleted on resume and its samples are produced again from the checkpoint (bit for bit). The parts are
self-describing (their units and offsets are attributes), so the number of ranks may change between runs.

`assemble` writes `ensemble.h5` (format hpc_rg.ensemble/1) under a temporary name and renames it: /spins is
a virtual dataset over the parts (no copy of the configurations); the small per-sample and per-measurement
arrays are copied into it. Readers cannot tell it from a file written in one piece.
With an MPI-enabled h5py the driver instead copies the parts collectively into one real file
(`hpc_rg.io.mpio.assemble_collective`, driver="mpio"); the parts stay either way, since extending a run
re-assembles over them.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import h5py
import numpy as np

from hpc_rg.io.ensemble import FORMAT, SPIN_FILL

PART_RE = re.compile(r"p(\d{5})\.r(\d{4})\.h5$")
BUFFER_BYTES = 64 << 20


def part_path(folder: Path, part: int, rank: int) -> Path:
    return Path(folder) / f"p{part:05d}.r{rank:04d}.h5"


def list_parts(folder: Path) -> list[tuple[int, int, Path]]:
    out = []
    for p in Path(folder).glob("p*.r*.h5"):
        m = PART_RE.search(p.name)
        if m:
            out.append((int(m.group(1)), int(m.group(2)), p))
    return sorted(out)


class PartWriter:
    """Appends samples and time-series points of this rank's units to one part file."""

    def __init__(self, path: Path, units: list[tuple[int, int]], width: int, lattice_shape: tuple[int, ...],
                 j0: int, k0: int, compression: str | None = None):
        self.path = Path(path)
        self.units = list(units)
        self.index = {u: i for i, u in enumerate(self.units)}
        self.width = width
        self.shape = tuple(lattice_shape)
        self.j0, self.k0 = j0, k0
        self.n_j = 0                      # samples written (all units advance together)
        self.n_k = 0
        n_u = len(self.units)
        # a chunk cache large enough that chunks shared by two flushes are completed in memory
        self.file = h5py.File(self.path, "w", rdcc_nbytes=64 << 20, rdcc_nslots=100003)
        self.file.attrs["units"] = np.array(self.units, dtype=np.int64).reshape(n_u, 2)
        self.file.attrs["width"] = width
        self.file.attrs["j0"] = j0
        self.file.attrs["k0"] = k0
        comp = None if compression in (None, "none") else compression
        self.spins = self.file.create_dataset(
            "spins", shape=(n_u, width, 0, *self.shape), maxshape=(None, width, None, *self.shape), dtype=np.int8,
            chunks=self._chunk(), compression=comp)
        self.scalars = {name: self.file.create_dataset(name, shape=(n_u, width, 0), maxshape=(None, width, None),
                                                       dtype=np.float64, chunks=(1, width, 1024))
                        for name in ("energy", "magnetization", "ts_energy", "ts_magnetization")}
        self._buf: dict[int, list] = {}   # sample index -> per-unit (spins, e, m)
        self._buf_bytes = 0
        self._ts: dict[int, list] = {}

    def _chunk(self) -> tuple[int, ...]:
        """Several consecutive samples of one chain per chunk, up to ~1 MiB: fewer, larger writes, and a
        temperature's samples are still whole contiguous chunks."""
        per = max(1, (1 << 20) // int(np.prod(self.shape)))
        return (1, 1, per, *self.shape)

    # samples ------------------------------------------------------------------------------------------
    def add_sample(self, unit, j: int, spins: np.ndarray, energy: np.ndarray, magnetization: np.ndarray) -> None:
        """Unit `unit`'s configurations (width, *shape) at sample index j (global)."""
        row = self._buf.setdefault(j, [None] * len(self.units))
        row[self.index[unit]] = (spins, energy, magnetization)
        self._buf_bytes += spins.nbytes
        if self._buf_bytes > BUFFER_BYTES:
            self.flush()

    def add_timeseries(self, unit, k0: int, energy: np.ndarray, magnetization: np.ndarray) -> None:
        """Points k0 .. k0+n-1 (global indices) of unit `unit`; arrays (width, n)."""
        self._ts.setdefault(self.index[unit], []).append((k0, energy, magnetization))

    def add_history(self, history: np.ndarray) -> None:
        if history.size == 0:
            return
        if "exchange_history" not in self.file:
            self.file.create_dataset("exchange_history", shape=(0, *history.shape[1:]),
                                     maxshape=(None, *history.shape[1:]), dtype=np.int16,
                                     chunks=(1024, *history.shape[1:]))
        h = self.file["exchange_history"]
        n = h.shape[0]
        h.resize(n + len(history), axis=0)
        h[n:] = history

    def flush(self) -> None:
        """Write every buffered sample that all units have delivered, in order."""
        while self._buf:
            j = self.j0 + self.n_j
            row = self._buf.get(j)
            if row is None or any(x is None for x in row):
                break
            del self._buf[j]
            self._buf_bytes -= sum(x[0].nbytes for x in row)
            # batch consecutive complete rows into one write per dataset
            rows = [row]
            while True:
                nxt = self._buf.get(j + len(rows))
                if nxt is None or any(x is None for x in nxt):
                    break
                rows.append(self._buf.pop(j + len(rows)))
                self._buf_bytes -= sum(x[0].nbytes for x in rows[-1])
            n = len(rows)
            a = self.n_j
            block = np.empty((len(self.units), self.width, n, *self.shape), dtype=np.int8)
            scal = np.empty((2, len(self.units), self.width, n))
            for i, r in enumerate(rows):
                for u, (sp, e, m) in enumerate(r):
                    block[u, :, i] = sp
                    scal[0, u, :, i] = e
                    scal[1, u, :, i] = m
            self.spins.resize(a + n, axis=2)
            for u in range(len(self.units)):          # one contiguous hyperslab per unit
                self.spins[u, :, a:a + n] = block[u]
            for q, name in ((0, "energy"), (1, "magnetization")):
                d = self.scalars[name]
                d.resize(a + n, axis=2)
                d[:, :, a:a + n] = scal[q]
            self.n_j += n
        for u, pieces in self._ts.items():
            pieces.sort(key=lambda x: x[0])
            # consecutive pieces are merged so that each flush is one write per unit and dataset
            runs = [[pieces[0]]]
            for piece in pieces[1:]:
                last = runs[-1][-1]
                if piece[0] == last[0] + last[1].shape[1]:
                    runs[-1].append(piece)
                else:
                    runs.append([piece])
            for run in runs:
                a = run[0][0] - self.k0
                for q, name in ((1, "ts_energy"), (2, "ts_magnetization")):
                    arr = np.concatenate([x[q] for x in run], axis=1)
                    d = self.scalars[name]
                    if d.shape[2] < a + arr.shape[1]:
                        d.resize(a + arr.shape[1], axis=2)
                    d[u, :, a:a + arr.shape[1]] = arr
                self.n_k = max(self.n_k, a + arr.shape[1])
        self._ts = {}

    def close(self) -> None:
        """Flush and close; the part is durable afterwards (fsync), ready for the checkpoint to commit it."""
        self.flush()
        if self._buf:
            raise RuntimeError(f"{self.path}: samples {sorted(self._buf)} incomplete at close")
        self.file.attrs["n_samples"] = self.n_j
        self.file.attrs["n_measurements"] = self.n_k
        self.file.flush()
        self.file.close()
        fd = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def assemble(out: Path, parts_folder: Path, n_parts: int, temperatures, n_chains: int, lattice_shape,
             n_samples: int, n_measurements: int, attrs: dict, exchange: dict | None = None) -> Path:
    """Write `<out>/ensemble.h5` over parts 0..n_parts-1 (atomic rename)."""
    out = Path(out)
    shape = tuple(int(x) for x in lattice_shape)
    n_t = len(temperatures)
    final = out / "ensemble.h5"
    tmp = out / "ensemble.h5.tmp"
    layout = h5py.VirtualLayout(shape=(n_t, n_chains, n_samples, *shape), dtype=np.int8)
    scal = {name: np.full((n_t, n_chains, n), np.nan) for name, n in
            (("energy", n_samples), ("magnetization", n_samples),
             ("ts_energy", n_measurements), ("ts_magnetization", n_measurements))}
    covered = np.zeros((n_t, n_chains, n_samples), dtype=bool)
    history = []
    for part, rank, path in list_parts(parts_folder):
        if part >= n_parts:
            continue
        rel = os.path.relpath(path, out)
        with h5py.File(path, "r") as f:
            units = f.attrs["units"]
            width = int(f.attrs["width"])
            j0, k0 = int(f.attrs["j0"]), int(f.attrs["k0"])
            nj, nk = int(f.attrs["n_samples"]), int(f.attrs["n_measurements"])
            src_shape = f["spins"].shape
            if "exchange_history" in f:
                history.append((part, f["exchange_history"][()]))
            for i, (g, t) in enumerate(units):
                c0 = int(g) * width
                if nj:
                    vs = h5py.VirtualSource(rel, "spins", shape=src_shape)
                    layout[int(t), c0:c0 + width, j0:j0 + nj] = vs[i, :, 0:nj]
                    covered[int(t), c0:c0 + width, j0:j0 + nj] = True
                    scal["energy"][t, c0:c0 + width, j0:j0 + nj] = f["energy"][i, :, :nj]
                    scal["magnetization"][t, c0:c0 + width, j0:j0 + nj] = f["magnetization"][i, :, :nj]
                if nk:
                    scal["ts_energy"][t, c0:c0 + width, k0:k0 + nk] = f["ts_energy"][i, :, :nk]
                    scal["ts_magnetization"][t, c0:c0 + width, k0:k0 + nk] = f["ts_magnetization"][i, :, :nk]
    if not covered.all():
        missing = np.argwhere(~covered)[0]
        raise RuntimeError(f"{parts_folder}: no part holds sample {missing[2]} of temperature {missing[0]}, "
                           f"chain {missing[1]} (parts incomplete)")
    with h5py.File(tmp, "w") as f:
        f.attrs["format"] = FORMAT
        f.attrs["lattice_shape"] = np.array(shape, dtype=np.int64)
        for k, v in attrs.items():
            f.attrs[k] = v
        f["temperatures"] = np.asarray(temperatures, dtype=np.float64)
        f.create_virtual_dataset("spins", layout, fillvalue=SPIN_FILL)   # never read: sources are checked
        f["energy"] = scal["energy"]
        f["magnetization"] = scal["magnetization"]
        f["timeseries/energy"] = scal["ts_energy"]
        f["timeseries/magnetization"] = scal["ts_magnetization"]
        if exchange:
            g = f.create_group("exchange")
            for k, v in exchange.items():
                g[k] = v
            if history:
                g["slot_history"] = np.concatenate([h for _, h in sorted(history, key=lambda x: x[0])])
    os.replace(tmp, final)
    return final

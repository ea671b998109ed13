"""Checkpoints: every replica's sampler state per rank, and one commit record written last.

Layout under `<out>/checkpoint/`:
  c{n:05d}.r{rank:04d}.h5   one group per replica this rank holds, named "{ladder}_{slot0}", with the
                            arrays of `Sampler.state()` (spins, RNG states, counters)
  latest.json               the commit: checkpoint number, update counter, parts completed, tempering
                            state, the job's physics keys. Written to a temporary name and renamed, after
                            every rank's file is in place; the previous checkpoint's files are removed only
                            after that, so a kill at any moment leaves one complete checkpoint.
Replica files are looked up by name, so a run may resume on a different number of ranks.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np

COMMIT = "latest.json"


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def replica_file(folder: Path, n: int, rank: int) -> Path:
    return Path(folder) / f"c{n:05d}.r{rank:04d}.h5"


def write_replicas(folder: Path, n: int, rank: int, states: dict[tuple[int, int], dict]) -> None:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    final = replica_file(folder, n, rank)
    tmp = final.with_name(final.name + ".tmp")
    with h5py.File(tmp, "w") as f:
        for (g, t0), state in states.items():
            grp = f.create_group(f"{g}_{t0}")
            for k, v in state.items():
                grp[k] = np.asarray(v)
    fd = os.open(tmp, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    os.replace(tmp, final)


def commit(folder: Path, n: int, record: dict) -> None:
    """Make checkpoint n the current one, then drop the files of older checkpoints."""
    folder = Path(folder)
    _atomic_write_text(folder / COMMIT, json.dumps(dict(record, checkpoint=n), default=_jsonable, indent=1))
    for p in folder.glob("c*.r*.h5*"):
        if not p.name.startswith(f"c{n:05d}.") or p.name.endswith(".tmp"):
            p.unlink(missing_ok=True)


def read_commit(folder: Path) -> dict | None:
    p = Path(folder) / COMMIT
    if not p.exists():
        return None
    return json.loads(p.read_text())


def read_replicas(folder: Path, n: int, wanted: set[tuple[int, int]]) -> dict[tuple[int, int], dict]:
    """The states of the `wanted` replicas from checkpoint n, whichever rank wrote them."""
    found: dict[tuple[int, int], dict] = {}
    for p in sorted(Path(folder).glob(f"c{n:05d}.r*.h5")):
        with h5py.File(p, "r") as f:
            for name in f:
                g, t0 = (int(x) for x in name.split("_"))
                if (g, t0) in wanted:
                    found[(g, t0)] = {k: f[name][k][()] for k in f[name]}
    missing = wanted - set(found)
    if missing:
        raise RuntimeError(f"{folder}: checkpoint {n} lacks replicas {sorted(missing)[:4]}")
    return found


def _jsonable(x):
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    raise TypeError(f"not JSON serialisable: {type(x)}")

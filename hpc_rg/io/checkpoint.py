"""Checkpoints: every replica's sampler state per rank, and one commit record that names them.

Layout under `<out>/checkpoint/`:
  c{n:05d}.r{rank:04d}.h5   one group per replica this rank holds, named "{ladder}_{slot0}", with the
                            arrays of `Sampler.state()` (spins, RNG states, counters)
  latest.json               the commit: checkpoint number, update counter, parts completed, tempering
                            state, the job's physics keys, and `files`: the exact replica files checkpoint n
                            consists of, each with its sha256 and the replicas it holds.
Order of a checkpoint: every rank writes its file (temporary name, fsync, rename); rank 0 writes latest.json
(temporary name, fsync, atomic rename); only then are the files latest.json does not name removed. A reader
opens only the files the record names and checks their digests first, so a file left behind by a run that
was killed mid-checkpoint (possibly on another number of ranks, holding other replicas) is never read,
and a kill at any moment leaves one complete checkpoint. Replica files are looked up through the record,
so a run may resume on a different number of ranks.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
from pathlib import Path

import h5py
import numpy as np

from hpc_rg.io.atomic import atomic_path
from hpc_rg.schema import ConfigError

COMMIT = "latest.json"
REPLICA_GLOB = "c*.r*.h5*"
RECORD_KEYS = ("checkpoint", "t", "samples_done", "parts", "ranks", "updates_total")   # integers, all there

# The moments of a checkpoint at which the test suite kills a rank (see `fault_point`), in order.
PHASES = ("part_closed", "replica_tmp", "replica_written", "before_commit", "commit_tmp", "committed", "cleaned")


class CheckpointError(ConfigError):
    """A checkpoint that cannot be used (missing, truncated or altered file): one line naming the file."""

    def __init__(self, path: Path | str, message: str):
        ValueError.__init__(self, f"{path}: {message}")
        self.file, self.key, self.found, self.allowed = str(path), "", None, message


def fault_point(phase: str, n: int, rank: int) -> None:
    """Test-only hook: HPC_RG_CKPT_FAULT="<phase>@<n>[:rank=R]" SIGKILLs this process when checkpoint n
    reaches `phase` (one of PHASES) on rank R (any rank without ":rank="). Unset in real runs: a no-op."""
    spec = os.environ.get("HPC_RG_CKPT_FAULT")
    if not spec:
        return
    where, _, who = spec.partition(":rank=")
    name, _, at = where.partition("@")
    if name not in PHASES:
        raise ValueError(f"HPC_RG_CKPT_FAULT: unknown phase {name!r} (one of {', '.join(PHASES)})")
    if name == phase and int(at) == n and (not who or int(who) == rank):
        os.kill(os.getpid(), signal.SIGKILL)


def _write_commit(path: Path, text: str, n: int) -> None:
    """The commit record, durable before anything is deleted. Its temporary name is fixed (latest.json.tmp):
    the test suite kills a run with it written (phase commit_tmp), and the next commit overwrites it."""
    with atomic_path(path, durable=True, temporary=path.with_name(path.name + ".tmp")) as tmp:
        tmp.write_text(text)
        fault_point("commit_tmp", n, 0)


def digest(path: Path) -> str:
    h = hashlib.sha256()           # (hashlib.file_digest needs Python 3.11; the project supports 3.10)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def replica_file(folder: Path, n: int, rank: int) -> Path:
    return Path(folder) / f"c{n:05d}.r{rank:04d}.h5"


def write_replicas(folder: Path, n: int, rank: int, states: dict[tuple[int, int], dict]) -> dict:
    """Write this rank's replica states for checkpoint n; returns its entry for the commit record
    ({"file", "sha256", "replicas"})."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    final = replica_file(folder, n, rank)
    # the temporary name matches REPLICA_GLOB, so one left by a killed run is removed by the next commit
    with atomic_path(final, durable=True, temporary=final.with_name(final.name + ".tmp")) as tmp:
        with h5py.File(tmp, "w") as f:
            for (g, t0), state in states.items():
                grp = f.create_group(f"{g}_{t0}")
                for k, v in state.items():
                    grp[k] = np.asarray(v)
        fault_point("replica_tmp", n, rank)
        sha = digest(tmp)
    return {"file": final.name, "sha256": sha, "replicas": sorted([int(g), int(t0)] for g, t0 in states)}


def commit(folder: Path, n: int, record: dict, files: list[dict]) -> None:
    """Make checkpoint n (consisting of exactly `files`, the entries of `write_replicas`) the current one,
    then remove every replica file the new record does not name."""
    folder = Path(folder)
    named = {e["file"]: {"sha256": e["sha256"], "replicas": e["replicas"]} for e in files}
    _write_commit(folder / COMMIT, json.dumps(dict(record, checkpoint=n, files=named), default=_jsonable,
                                              indent=1), n)
    fault_point("committed", n, 0)
    for p in folder.glob(REPLICA_GLOB):
        if p.name not in named:
            p.unlink(missing_ok=True)


def read_commit(folder: Path) -> dict | None:
    """The commit record, or None when no checkpoint was ever committed. A record that is not valid JSON
    or lacks its keys is a CheckpointError (exit 2 naming the file)."""
    p = Path(folder) / COMMIT
    if not p.exists():
        return None
    try:
        record = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(p, f"unreadable checkpoint record ({e}); restore it, or pass --force to start "
                                 "over") from None
    missing = [k for k in RECORD_KEYS if not isinstance(record, dict) or not isinstance(record.get(k), int)
               or isinstance(record.get(k), bool) or record[k] < 0]
    if not missing and not isinstance(record.get("time"), (int, float)):
        missing = ["time"]
    if missing:
        raise CheckpointError(p, f"checkpoint record lacks {', '.join(missing)} (truncated or altered); restore "
                                 "it, or pass --force to start over")
    return record


def named_files(folder: Path, record: dict) -> dict[str, dict]:
    """The replica files checkpoint `record` consists of: {name: {"sha256", "replicas"}}. Records written
    before files were named list none; their files are exactly those of ranks 0..ranks-1 (unchecked)."""
    files = record.get("files")
    if files is None:
        return {replica_file(folder, record["checkpoint"], r).name: {"sha256": None, "replicas": None}
                for r in range(record["ranks"])}
    if not isinstance(files, dict):
        raise CheckpointError(Path(folder) / COMMIT, "checkpoint record: 'files' is not a table of files")
    return files


def read_replicas(folder: Path, record: dict, wanted: set[tuple[int, int]]) -> dict[tuple[int, int], dict]:
    """The states of the `wanted` replicas from the checkpoint of `record`, from the files it names only,
    each verified against its digest before it is read."""
    folder = Path(folder)
    found: dict[tuple[int, int], dict] = {}
    for name, entry in sorted(named_files(folder, record).items()):
        held = entry.get("replicas")
        if held is not None and not wanted & {(int(g), int(t)) for g, t in held}:
            continue
        path = folder / name
        if not path.is_file():
            raise CheckpointError(path, f"file of checkpoint {record['checkpoint']} is missing; restore it, or "
                                        "pass --force to start over")
        if entry.get("sha256") is not None and digest(path) != entry["sha256"]:
            raise CheckpointError(path, f"checksum differs from the one in {COMMIT} (truncated or altered); "
                                        "restore it, or pass --force to start over")
        try:
            with h5py.File(path, "r") as f:
                for grp in f:
                    g, t0 = (int(x) for x in grp.split("_"))
                    if (g, t0) in wanted:
                        found[(g, t0)] = {k: f[grp][k][()] for k in f[grp]}
        except (OSError, ValueError, KeyError) as e:
            raise CheckpointError(path, f"unreadable checkpoint file ({e})") from None
    missing = wanted - set(found)
    if missing:
        raise CheckpointError(folder / COMMIT, f"checkpoint {record['checkpoint']} lacks replicas "
                                               f"{sorted(missing)[:4]}; pass --force to start over")
    return found


def _jsonable(x):
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    raise TypeError(f"not JSON serialisable: {type(x)}")

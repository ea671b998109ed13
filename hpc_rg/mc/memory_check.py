"""Whether a job's lattices can fit in memory at all: checked when the job file is read, so a lattice that
cannot be simulated is refused in one line instead of failing (or swapping) after the job was queued.

What a rank holds (`hpc_rg.mc.simulation`): its share of the replicas (one replica = `width` chains at one
temperature: 1 for scalar samplers, 64 for multi-spin coding), each with its lattice state, and the current
sample of each replica on its way to the part file (int8 configurations, (width, *shape)). The estimate
below counts only those bytes, so it is a lower bound: the part writer's buffer, scratch arrays of the
samplers and the Python process come on top. Without a rank count it takes the best case, one replica per
rank: a job refused then cannot run on any number of ranks.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

# lattice state per site and chain, in bytes (multispin packs 64 chains into one 8-byte word per site)
STATE_BYTES = {"multispin": 8 / 64}
SAMPLE_BYTES = 1          # int8 spins of the stored configuration


def replica_width(sim) -> int:
    return 64 if sim.algorithm == "multispin" else 1


def bytes_per_replica(sim) -> int:
    sites = math.prod(sim.shape)
    width = replica_width(sim)
    return math.ceil(width * sites * (STATE_BYTES.get(sim.algorithm, 1) + SAMPLE_BYTES))


def bytes_per_rank(sim, ranks: int | None = None) -> int:
    """Lower bound on one rank's memory for the job on `ranks` ranks (None: as many ranks as replicas)."""
    replicas = max(1, sim.chains // replica_width(sim)) * len(sim.temperatures)
    per_rank = 1 if ranks is None else math.ceil(replicas / max(1, ranks))
    return per_rank * bytes_per_replica(sim)


def memory_found() -> int | None:
    """Physical memory of this machine (sysconf), or the cgroup limit when that is smaller; None if unknown."""
    found = None
    try:
        found = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit.isdigit():
            found = min(found or int(limit), int(limit))
    except OSError:
        pass
    return found if found and found > 0 else None


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} EiB"


def check_memory(sim, file: str | Path, ranks: int | None = None, available: int | None = None) -> None:
    """ConfigError when the lattice state of one rank (see module docstring) exceeds the memory found."""
    from hpc_rg.schema import ConfigError
    available = memory_found() if available is None else available
    if available is None:
        return
    need = bytes_per_rank(sim, ranks)
    if need > available:
        key = "simulate.Ly" if sim.Ly and sim.Ly > sim.L else "simulate.L"
        shares = "one replica per rank" if ranks is None else f"{ranks} rank(s)"
        raise ConfigError(file, key, sim.Ly if key == "simulate.Ly" else sim.L,
                          f"a lattice that fits in memory: {' x '.join(map(str, sim.shape))} sites need at least "
                          f"{human(need)} per rank ({shares}), this machine has {human(available)}")

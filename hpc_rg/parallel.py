"""The one place that imports mpi4py.

User code and job files never see MPI: they get a `World` (rank, size and a handful of collectives that are
no-ops on one rank), deterministic work dealing, seed streams that depend on a chain's identity and never on
the rank, rank-0 logging, and torch.distributed initialised from the MPI world.
"""
from __future__ import annotations

import logging
import os
import socket
import sys
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

# Purposes of random streams; part of every spawn key so that streams never overlap.
PURPOSES = {"chain": 0, "exchange": 1, "init": 2, "train": 3, "data": 4, "analysis": 5, "tune": 6}


def seed_sequence(job_seed: int, *key: int, purpose: str = "chain") -> np.random.SeedSequence:
    """SeedSequence(job_seed, spawn_key=(*key, purpose)): e.g. key = (ladder, temperature_index)."""
    return np.random.SeedSequence(int(job_seed), spawn_key=tuple(int(k) for k in key) + (PURPOSES[purpose],))


def deal(n_items: int, size: int, rank: int) -> range:
    """Contiguous, balanced share of `n_items` for `rank` out of `size` (sizes differ by at most one)."""
    base, extra = divmod(n_items, size)
    start = rank * base + min(rank, extra)
    return range(start, start + base + (1 if rank < extra else 0))


def owner(item: int, n_items: int, size: int) -> int:
    """The rank that `deal` gives `item` to."""
    base, extra = divmod(n_items, size)
    cut = extra * (base + 1)
    return item // (base + 1) if item < cut else extra + (item - cut) // max(base, 1)


@dataclass
class World:
    """The MPI world, or a one-rank stand-in when mpi4py is missing or not launched."""
    comm: Any
    rank: int
    size: int

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.size > 1:
            self.comm.Barrier()

    def bcast(self, obj: Any, root: int = 0) -> Any:
        return self.comm.bcast(obj, root=root) if self.size > 1 else obj

    def allgather(self, obj: Any) -> list:
        return self.comm.allgather(obj) if self.size > 1 else [obj]

    def gather(self, obj: Any, root: int = 0) -> list | None:
        return self.comm.gather(obj, root=root) if self.size > 1 else [obj]

    def alltoall(self, objs: Sequence[Any]) -> list:
        """objs[r] goes to rank r; returns what every rank sent to this one."""
        return self.comm.alltoall(list(objs)) if self.size > 1 else list(objs)

    def allreduce(self, value: Any, op: str = "sum") -> Any:
        """Sum/max/min of numbers or numpy arrays over all ranks."""
        if self.size == 1:
            return value
        from mpi4py import MPI
        mpi_op = {"sum": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}[op]
        if isinstance(value, np.ndarray):
            out = np.empty_like(value)
            self.comm.Allreduce(np.ascontiguousarray(value), out, op=mpi_op)
            return out
        return self.comm.allreduce(value, op=mpi_op)

    def any(self, flag: bool) -> bool:
        """True on every rank if it is true on any rank (e.g. "a stop signal arrived")."""
        return bool(self.allreduce(int(bool(flag)), op="max"))

    def abort(self, code: int = 1) -> None:
        if self.size > 1:
            self.comm.Abort(code)
        sys.exit(code)


_WORLD: World | None = None


def world() -> World:
    """The process's World (MPI.COMM_WORLD when mpi4py imports, else a single rank)."""
    global _WORLD
    if _WORLD is None:
        try:
            from mpi4py import MPI
            comm = MPI.COMM_WORLD
            _WORLD = World(comm, comm.Get_rank(), comm.Get_size())
        except ImportError:
            _WORLD = World(None, 0, 1)
    return _WORLD


def local_rank() -> int:
    """Rank within the node (for choosing a GPU), from the launcher's environment or a split by host."""
    for var in ("MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "LOCAL_RANK"):
        if var in os.environ:
            return int(os.environ[var])
    w = world()
    if w.size == 1:
        return 0
    from mpi4py import MPI
    return w.comm.Split_type(MPI.COMM_TYPE_SHARED).Get_rank()


# ----------------------------------------------------------------------------------------------------
# Logging: rank 0 at INFO, the others at WARNING, with rank/size in the format.
# ----------------------------------------------------------------------------------------------------

def setup_logging(verbose: bool = False) -> logging.Logger:
    w = world()
    logger = logging.getLogger("hpc_rg")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        prefix = f"[{w.rank}/{w.size}] " if w.size > 1 else ""
        handler.setFormatter(logging.Formatter(f"%(asctime)s {prefix}%(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
        logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose and w.is_root else logging.INFO if w.is_root else logging.WARNING)
    logger.propagate = False
    return logger


def get_logger() -> logging.Logger:
    return logging.getLogger("hpc_rg")


# ----------------------------------------------------------------------------------------------------
# torch.distributed from the MPI world
# ----------------------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def init_torch_distributed(backend: str | None = None) -> bool:
    """Initialise torch.distributed over the MPI world (gloo on CPU, nccl when CUDA is present).

    Rank 0 picks a free port and broadcasts it with its host name. Returns False (and does nothing) on one
    rank. Pair every call with `shutdown_torch_distributed()`.
    """
    w = world()
    if w.size == 1:
        return False
    import torch
    import torch.distributed as dist
    if dist.is_initialized():
        return True
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    addr, port = w.bcast((socket.gethostname(), _free_port()) if w.is_root else None)
    if os.environ.get("HPC_RG_MASTER_ADDR"):
        addr = os.environ["HPC_RG_MASTER_ADDR"]
    if w.size > 1 and all(h == addr for h in w.allgather(socket.gethostname())):
        addr = "127.0.0.1"  # one node: loopback avoids hostname resolution problems
    dist.init_process_group(backend, init_method=f"tcp://{addr}:{port}", rank=w.rank, world_size=w.size)
    return True


def shutdown_torch_distributed() -> None:
    """barrier -> destroy_process_group -> MPI barrier: without it gloo processes may abort at exit."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    world().barrier()

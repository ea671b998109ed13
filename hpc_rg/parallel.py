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
            # without mpi4py a process is one rank; launched as one of several (mpiexec/srun set these), it
            # would silently duplicate the work of the others: say which extra gives the ranks instead
            launched = max(int(os.environ.get(v, "1") or 1) for v in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE"))
            if launched > 1:
                from hpc_rg.extras import MissingExtra
                raise MissingExtra("mpi4py", f"on {launched} ranks") from None
            _WORLD = World(None, 0, 1)
    return _WORLD


def mpi():
    """The mpi4py.MPI module, for the few modules that need MPI itself (the gradient sum's shared-memory
    windows): they get it here, so this stays the one module that imports mpi4py."""
    from mpi4py import MPI
    return MPI


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


# ----------------------------------------------------------------------------------------------------
# Stop requests (SIGTERM / SIGINT / SIGUSR1) agreed between ranks
# ----------------------------------------------------------------------------------------------------

EXIT_INTERRUPTED = 3       # stopped by a signal after a checkpoint (or before any result was written): resumable
_STOP_TAG = 0x5709


class StopRequests:
    """A stage's stop requests: SIGTERM, SIGINT and SIGUSR1 set a flag instead of killing the rank, and the
    ranks agree on it, so that a signal to any one rank stops every rank cleanly (exit 3 after a checkpoint)
    and none is left waiting in a collective.

    Two ways to learn of a stop:
      `agree()`      collective (every rank calls it at the same point): True on every rank if any rank got a
                     signal. It waits in a polling loop, so a rank that gets its signal while waiting there
                     still takes part.
      `requested()`  local, for ranks that work independently (task-parallel training): True if this rank got
                     a signal, or another rank announced one. A rank announces its own signal to all the
                     others (one small message each) the first time it notices it, so the others stop at their
                     next check instead of finishing all their work first.
    Use as a context manager around the stage; every rank must enter and leave it (both are collective)."""

    SIGNALS = ("SIGTERM", "SIGINT", "SIGUSR1")

    def __init__(self, world: World):
        self.world = world
        self.raised: str | None = None       # name of the signal this rank got
        self.heard: list = []                # (rank, signal name) of the other ranks' announcements
        self._old: dict = {}
        self._comm = None
        self._sends: list = []
        self._received = 0

    def __enter__(self) -> "StopRequests":
        import signal
        for name in self.SIGNALS:
            sig = getattr(signal, name)
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:      # not the main thread (a test driving the stage in a thread)
                pass
        if self.world.size > 1:
            self._comm = self.world.comm.Dup()   # its own communicator: announcements never meet other traffic
        return self

    def _handle(self, signum, frame) -> None:
        import signal
        self.raised = self.raised or signal.Signals(signum).name

    def __exit__(self, exc_type, exc, tb) -> None:
        import signal
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old = {}
        if self._comm is not None and exc_type is None:
            self.agree()          # drains any announcement still in flight
            self._comm.Free()
            self._comm = None

    # local
    def _announce(self) -> None:
        if self.raised is None or self._sends or self._comm is None:
            return
        self._sends = [self._comm.isend(self.raised, dest=r, tag=_STOP_TAG)
                       for r in range(self.world.size) if r != self.world.rank]

    def _receive(self) -> None:
        from mpi4py import MPI
        status = MPI.Status()
        name = self._comm.recv(source=MPI.ANY_SOURCE, tag=_STOP_TAG, status=status)
        self._received += 1
        self.heard.append((status.Get_source(), name))

    def _listen(self) -> None:
        if self._comm is None:
            return
        while self._comm.iprobe(tag=_STOP_TAG):
            self._receive()

    def requested(self) -> bool:
        """This rank got a signal or another rank announced one (not collective)."""
        self._announce()
        self._listen()
        return self.raised is not None or bool(self.heard)

    # collective
    def agree(self, poll_seconds: float = 0.005) -> bool:
        """True on every rank iff some rank got a signal (collective; responsive to signals while waiting)."""
        if self._comm is None:
            return self.raised is not None
        import time
        from mpi4py import MPI
        self._announce()
        req = self._comm.Ibarrier()
        while not req.Test():
            self._announce()
            self._listen()
            time.sleep(poll_seconds)
        self._announce()
        senders = self._comm.allgather(bool(self._sends))
        # every announcement posted before the barrier is received here, so none is left for a later call
        expected = sum(senders) - int(bool(self._sends))
        while self._received < expected:
            self._receive()
        MPI.Request.waitall(self._sends)
        return any(senders)

    def why(self) -> str:
        """What stopped the stage, truthfully: this rank's signal, or which rank got which."""
        if self.raised:
            return f"{self.raised} on rank {self.world.rank}" if self.world.size > 1 else self.raised
        if self.heard:
            return ", ".join(f"{name} on rank {rank}" for rank, name in sorted(self.heard))
        return "a stop request"

"""Run control of the simulate stage: stop requests, deadlines, injected faults, collective errors.

What stops a run early (SIGTERM/SIGINT/SIGUSR1, the Slurm time limit, a fault injected by the test suite)
and how an error on one rank reaches all ranks, so that every rank checkpoints and exits together.
"""
from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass

import numpy as np

from hpc_rg.io.run_folder import RelayedError
from hpc_rg.schema import ConfigError

EXIT_INTERRUPTED = 3          # stopped by a signal or the time limit after a checkpoint: resumable
SYNC_TARGET_SECONDS = 0.5     # aim for one collective stop/checkpoint decision per this much wall time


class StopFlag:
    """Set by SIGTERM/SIGINT/SIGUSR1 (Slurm's --signal before the time limit; MPICH's mpiexec forwards USR1
    but kills ranks on TERM); the loop checkpoints and exits."""

    def __init__(self):
        self.raised = None
        self._old = {}

    def __enter__(self):
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:      # not the main thread (tests driving the stage in a thread)
                pass
        return self

    def _handle(self, signum, frame):
        self.raised = signal.Signals(signum).name

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


def slurm_deadline(start: float) -> float | None:
    """Stop at 95% of the job's remaining allotment when running under Slurm with a time limit."""
    end = os.environ.get("SLURM_JOB_END_TIME")
    if not end:
        return None
    try:
        end_t = float(end)
    except ValueError:
        return None
    return start + 0.95 * max(end_t - start, 0.0)


def fault_injection(rank: int):
    """Testing hook: HPC_RG_FAULT="kill@T" (SIGKILL itself), "raise@T" (an exception) or "term@T" (SIGTERM
    to itself, once, as Slurm or a user would send it), optionally ":rank=R" to hit one rank only, once the
    update counter reaches T. Lets the test suite prove that a killed run resumes bit for bit, that one
    failing rank ends the whole job, and that a stop on any rank is reported truthfully. (Kills inside a
    checkpoint: HPC_RG_CKPT_FAULT, see `hpc_rg.io.checkpoint.fault_point`.)"""
    spec = os.environ.get("HPC_RG_FAULT")
    if not spec:
        return None
    what, _, rest = spec.partition("@")
    at, _, who = rest.partition(":rank=")
    if who and int(who) != rank:
        return None
    at = int(at)
    sent = []

    def check(t: int) -> None:
        if t >= at:
            if what == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            if what == "term":
                if not sent:
                    sent.append(t)
                    os.kill(os.getpid(), signal.SIGTERM)
                return
            raise RuntimeError(f"HPC_RG_FAULT: injected failure at update {t} on rank {rank}")
    return check


def agree(world, fn):
    """Run fn on every rank; if any rank raises a ConfigError (a checkpoint it cannot use), every rank
    raises the first such error, so that all exit 2 together instead of some waiting forever."""
    result, error = None, None
    try:
        result = fn()
    except ConfigError as e:
        error = e
    errors = [e for e in world.allgather(None if error is None else (str(error), error.file)) if e is not None]
    if errors:
        raise error if error is not None and str(error) == errors[0][0] else RelayedError(*errors[0])
    return result


@dataclass(frozen=True)
class Decision:
    """What the ranks agreed at a sync point. `stopped`: (rank, signal name) of every rank that got a stop
    request; `energies`: each rank's {unit: energy} when replica exchange is due, else None."""
    stop: bool = False
    checkpoint: bool = False
    stopped: tuple[tuple[int, str], ...] = ()
    energies: tuple[dict, ...] | None = None


class SyncPoints:
    """When the ranks decide together whether to stop or checkpoint: at every exchange, and otherwise every
    `stride` events, rank 0 adapting the stride so that a decision falls about every SYNC_TARGET_SECONDS.
    Rank 0's clock decides (the deadline, the checkpoint interval), so all ranks act alike."""

    def __init__(self, world, start: float, checkpoint_seconds: float):
        self.world = world
        self.deadline = slurm_deadline(start)
        self.checkpoint_seconds = checkpoint_seconds
        self.stride, self.opportunities = 1, 0
        self.last_sync = self.last_checkpoint = start

    def decide(self, stop_raised: str | None, exchange_now: bool, energies=None) -> Decision:
        """Called after every event on every rank; `energies()` gives this rank's {unit: energy} when
        `exchange_now`."""
        self.opportunities += 1
        if not (exchange_now or self.opportunities % self.stride == 0):
            return Decision()
        now = time.time()
        mine = {"stop": stop_raised}
        if self.world.is_root:
            mine["deadline"] = self.deadline is not None and now >= self.deadline
            mine["ckpt"] = self.checkpoint_seconds > 0 and now - self.last_checkpoint >= self.checkpoint_seconds
            elapsed = max(now - self.last_sync, 1e-6)
            mine["stride"] = 1 if exchange_now else int(np.clip(self.stride * SYNC_TARGET_SECONDS / elapsed,
                                                                1, 4 * self.stride))
        if exchange_now:
            mine["energies"] = energies()
        gathered = self.world.allgather(mine)
        root = gathered[0]
        stopped = tuple((r, g["stop"]) for r, g in enumerate(gathered) if g["stop"])
        self.stride = root["stride"]
        self.last_sync = now
        return Decision(stop=bool(stopped) or root["deadline"], checkpoint=root["ckpt"], stopped=stopped,
                        energies=tuple(g["energies"] for g in gathered) if exchange_now else None)

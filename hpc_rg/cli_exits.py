"""How `hpc-rg` ends when something goes wrong, on every rank, without hanging.

2: a problem the user can fix (a `ConfigError`, a `MissingExtra` or a full disk), one line on stderr;
128 + SIGPIPE: the reader of stdout went away. A rank alone in its error (the others blocked in a
collective) aborts the whole job after a grace period, through the `World`.
"""
from __future__ import annotations

import os
import sys
import time

from hpc_rg.extras import MissingExtra
from hpc_rg.io.diskfull import DiskFullError, abandon_open_hdf5

EXIT_USAGE = 2
EXIT_PIPE = 128 + 13    # stdout's reader went away (`hpc-rg check JOB | head -1`): what SIGPIPE would give
AGREE_SECONDS = 3.0     # how long ranks wait for each other to reach the same error before aborting the job


def user_error(w, e, command: str) -> int:
    """A ConfigError (or a MissingExtra, or a full disk): one line on stderr, exit 2."""
    if isinstance(e, DiskFullError):
        return disk_full(w, e)
    if isinstance(e, MissingExtra) and e.stage is None:
        e.stage = command
    line = e.line() if isinstance(e, MissingExtra) else f"hpc-rg: error: {e}"
    # Validation is deterministic, so normally every rank raises the same error: rank 0 speaks and all
    # exit 2. If only some ranks raised, the others would wait forever: abort them after a moment.
    if w.is_root:
        print(line, file=sys.stderr, flush=True)
    if w.size > 1:
        agree_or_abort(w, EXIT_USAGE, None if w.is_root else f"hpc-rg: error (rank {w.rank}): {e}")
    return EXIT_USAGE


def disk_full(w, e) -> int:
    """A full disk (or quota), on this rank, during any write: one line and exit 2. The HDF5 files being
    written are abandoned, not closed (closing retries the failed write and can crash the interpreter);
    a single process leaves at once, skipping the clean-up that would touch them again."""
    abandon_open_hdf5()
    print(f"hpc-rg: error: {e}" if w.is_root or w.size == 1 else f"hpc-rg: error (rank {w.rank}): {e}",
          file=sys.stderr, flush=True)
    if w.size > 1:                 # the other ranks may be waiting in a collective: agree or abort them
        agree_or_abort(w, EXIT_USAGE, None)
        return EXIT_USAGE
    sys.stdout.flush()
    os._exit(EXIT_USAGE)


def agree_or_abort(w, code: int, message: str | None) -> None:
    """All ranks reach here on a deterministic error: agree and leave normally. A rank that is alone in its
    error (the others are blocked in a collective) aborts the job after a grace period."""
    req = w.comm.Ibarrier()        # non-blocking: a rank whose peers never come must still get out
    deadline = time.time() + AGREE_SECONDS
    while time.time() < deadline:
        if req.Test():
            return
        time.sleep(0.01)
    if message:
        print(message, file=sys.stderr, flush=True)
    w.abort(code)


def flush_stdout() -> bool:
    try:
        sys.stdout.flush()
        return True
    except BrokenPipeError:
        return False


def stdout_closed() -> int:
    """The reader of stdout is gone. Stop quietly, like a command killed by SIGPIPE, and point stdout at
    /dev/null so that Python's own flush at exit does not print "Exception ignored ... BrokenPipeError"."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_PIPE

"""The lock of a run folder: rank 0 holds an exclusive lock on `<out>/.lock` for the whole stage, so that
a second run on the same folder fails at once (exit 2, naming the holder) instead of unlinking the first
run's files. flock where the file system has it; else an O_EXCL lock file with host and pid, kept fresh by
a heartbeat, taken over when its holder is gone.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from hpc_rg.io.folder_errors import RunFolderError, on_root

LOCK_NAME = ".lock"
# "flock" (default, falls back to "excl" where the file system has no flock) or "excl" (an O_EXCL lock file
# with host and pid, for file systems known to lack flock; the test suite forces it to test that path)
LOCK_MODE_ENV = "HPC_RG_LOCK"
# The O_EXCL lock file is touched every HEARTBEAT seconds by its holder; one untouched for STALE seconds was
# left by a run that is gone (killed on another node, where its pid cannot be checked).
LOCK_HEARTBEAT_SECONDS = 30.0
LOCK_STALE_SECONDS = float(os.environ.get("HPC_RG_LOCK_STALE_SECONDS", 300))


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    if not isinstance(info, dict) or "pid" not in info:
        return "an unknown process"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.get("time", 0)))
    return f"host {info.get('host')}, pid {info.get('pid')} (since {since})"


def _identity() -> str:
    return json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "time": time.time()})


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class FolderLock:
    """An exclusive lock on `<out>/.lock`: flock where the file system has it, else an O_EXCL lock file
    holding host and pid (a lock left by a dead process on this host is taken over)."""

    def __init__(self, out: Path):
        self.path = Path(out) / LOCK_NAME
        self.fd: int | None = None
        self.mode = ""
        self._beating: threading.Event | None = None

    def acquire(self) -> None:
        if self.path.is_symlink():
            raise RunFolderError(self.path, "is a symbolic link inside a run folder; remove it")
        if os.environ.get(LOCK_MODE_ENV, "flock") != "excl" and self._flock():
            return
        self._excl()      # no flock on this file system (or asked for the lock file)

    def _flock(self) -> bool:
        """Take the flock; False where the file system does not support it. The holder removes the file when
        it is done, so a lock is only ours if the file we locked is still the one at the path."""
        for _ in range(100):
            try:
                fd, created = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644), True
            except FileExistsError:
                try:
                    fd, created = os.open(self.path, os.O_RDWR | os.O_NOFOLLOW), False
                except FileNotFoundError:
                    continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                self._refuse()
            except OSError as e:
                os.close(fd)
                if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                    raise
                if created:              # not a lock: leave the lock file to the O_EXCL protocol
                    self.path.unlink(missing_ok=True)
                return False
            try:
                same = os.stat(self.path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.write(fd, _identity().encode())
                self.fd, self.mode = fd, "flock"
                return True
            os.close(fd)              # locked a file its holder had just removed: try the new one
        self._refuse()

    def _excl(self) -> None:
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            except FileExistsError:
                if self._stale():
                    self.path.unlink(missing_ok=True)
                    continue
                self._refuse()
            os.write(fd, _identity().encode())
            os.fsync(fd)
            os.close(fd)
            self.mode = "excl"
            self._beating = threading.Event()
            threading.Thread(target=self._heartbeat, args=(self._beating,), daemon=True).start()
            return
        self._refuse()

    def _heartbeat(self, stop: threading.Event) -> None:
        while not stop.wait(LOCK_HEARTBEAT_SECONDS):
            try:
                os.utime(self.path)
            except OSError:
                return

    def _stale(self) -> bool:
        """Left by a process that is gone: on this host, no such pid; on another (whose pids cannot be
        checked), no heartbeat for LOCK_STALE_SECONDS."""
        try:
            info = json.loads(self.path.read_text() or "{}")
            age = time.time() - self.path.stat().st_mtime
        except (OSError, ValueError):
            return False
        if age > LOCK_STALE_SECONDS:
            return True
        if not isinstance(info, dict) or info.get("host") != socket.gethostname():
            return False
        pid = info.get("pid")
        return isinstance(pid, int) and not _pid_alive(pid)

    def _refuse(self):
        raise RunFolderError(self.path.parent, f"in use by another run ({_holder(self.path)}); wait for it to "
                                               f"finish, or remove {self.path} if that run is gone")

    def release(self) -> None:
        if self.mode == "flock" and self.fd is not None:
            self.path.unlink(missing_ok=True)        # before unlocking: see `_flock`
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
        elif self.mode == "excl":
            self._beating.set()
            self.path.unlink(missing_ok=True)
        self.fd, self.mode = None, ""


@contextmanager
def lock(out: Path, world):
    """Rank 0 holds the run folder's lock while the block runs; every rank fails with exit 2 when another
    run holds it."""
    held = FolderLock(out)
    on_root(world, held.acquire)
    try:
        yield
    finally:
        if world.is_root:
            held.release()

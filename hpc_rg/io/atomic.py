"""Write a file so that readers see the old one or the complete new one, never a torn one.

`atomic_path(path)` yields a temporary name in the same folder (created exclusively, so two writers on
different nodes of a shared filesystem never share it); when the block ends without an exception the
temporary file is renamed over `path` (POSIX rename is atomic within a filesystem), otherwise it is removed.
`durable=True` also fsyncs the file and its folder, for files a restart depends on (checkpoints).
`temporary=` names the temporary file instead, for writers whose temporary name is known to others: the
ranks of a collective HDF5 write all open it, a checkpoint's cleanup and the disk-full message recognise it.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator


def fsync_file(path: Path | str) -> None:
    """Flush a written file (closed or not) to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_folder(folder: Path) -> None:
    """Make a rename inside `folder` durable (no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _umask() -> int:
    """The process umask, read without changing it where Linux shows it (setting and restoring it would,
    for a moment, give files that other threads create the wrong permissions)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: Path | str, durable: bool = False, temporary: Path | str | None = None) -> Iterator[Path]:
    """Yield a temporary path to write (`temporary`, else a fresh unique name; the block creates the file);
    on success it replaces `path`, with the permissions a plain `open(path, "w")` would give (mkstemp's
    0600 would hide the file from the group)."""
    path = Path(path)
    if temporary is None:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        tmp = Path(name)
    else:
        tmp = Path(temporary)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        if durable:
            fsync_file(tmp)
        os.replace(tmp, path)
        if durable:
            fsync_folder(path.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def atomic_write_text(path: Path | str, text: str, durable: bool = False) -> Path:
    """`path` holds exactly `text` (UTF-8, whatever the locale), or what it held before."""
    with atomic_path(path, durable=durable) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def atomic_write_bytes(path: Path | str, data: bytes, durable: bool = False) -> Path:
    with atomic_path(path, durable=durable) as tmp:
        tmp.write_bytes(data)
    return Path(path)

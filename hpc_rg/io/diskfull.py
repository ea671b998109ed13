"""A full disk (or quota) while writing: one line, exit 2, and nothing half-written left to be trusted.

HDF5 reports ENOSPC in many shapes (an OSError with errno 28, or a RuntimeError whose text holds
"errno = 28, error message = 'No space left on device'"), and after a failed write it cannot close the file:
closing retries the write, and h5py's deallocation of the half-closed objects then crashes the interpreter
(segfault, exit 139, seen with HDF5 2.0 / h5py 3.16). So a failed file is *abandoned*: every HDF5 object
still open is kept alive (never closed by Python), its temporary name is removed, and the process ends
through the CLI's exit 2. The checkpoint state is untouched by then: a part is committed only after it
closed, so `--resume` after freeing space starts from the last good checkpoint and gives the same ensemble.
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
from pathlib import Path

from hpc_rg.schema import ConfigError

FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
_TEXT = re.compile(r"errno = (28|122)\b|No space left on device|Disk quota exceeded")
_FILENAME = re.compile(r"filename = '([^']+)'")
_kept_alive: list = []      # HDF5 objects of abandoned files: never deallocated, so never closed by h5py


class DiskFullError(ConfigError):
    """`no space left on <fs> while writing <file>; free space and run with --resume`."""

    def __init__(self, file: str | Path, fs: str | None = None):
        file = Path(file)
        fs = fs or mount_point(file)
        ValueError.__init__(self, f"no space left on {fs} while writing {file}; free space and run with --resume")
        self.file, self.key, self.found, self.allowed = str(file), "", None, "free space"


def is_disk_full(exc: BaseException | None) -> bool:
    """True when `exc` (or an exception it was raised from) says the disk or the quota is full."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, DiskFullError):
            return True
        if isinstance(exc, OSError) and exc.errno in FULL_ERRNOS:
            return True
        if isinstance(exc, (OSError, RuntimeError)) and _TEXT.search(str(exc)):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def failed_file(exc: BaseException, default: str | Path | None = None) -> str | None:
    """The file a disk-full error names (HDF5 says `filename = '...'`; an OSError has .filename)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, DiskFullError):
            return exc.file
        m = _FILENAME.search(str(exc))
        if m:
            return m.group(1)
        if isinstance(exc, OSError) and exc.filename:
            return str(exc.filename)
        named = _file_in_frames(exc.__traceback__)
        if named:
            return named
        exc = exc.__cause__ or exc.__context__
    return str(default) if default is not None else None


def _file_in_frames(tb) -> str | None:
    """A plain write (`f.write`, `f.flush`) fails with an OSError that names no file: the innermost frame
    of the traceback that holds a path in a variable named like one (tmp, path, ...) says which it was."""
    frames = []
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    for frame in reversed(frames):
        if isinstance(frame.f_locals.get("self"), Path):          # Path.write_text and friends
            return str(frame.f_locals["self"])
        for name in ("tmp", "path", "final", "target", "file"):
            v = frame.f_locals.get(name)
            if isinstance(v, (str, Path)) and str(v):
                return str(v)
    return None


def mount_point(path: str | Path) -> str:
    """The file system a path lies on, named by its mount point."""
    p = Path(os.path.abspath(path))
    while not os.path.ismount(p) and p != p.parent:
        p = p.parent
    return str(p)


def abandon_open_hdf5() -> None:
    """Keep every open HDF5 object alive for the rest of the process, so that nothing closes (and retries
    writing) a file a write to which failed; HDF5 drops them at exit without crashing."""
    try:
        import h5py
        ids = h5py.h5f.get_obj_ids(types=h5py.h5f.OBJ_ALL)
    except Exception:      # noqa: BLE001 -- best effort on the way out
        return
    for oid in ids:
        try:
            h5py.h5i.inc_ref(oid)      # one more reference that nothing will drop: HDF5 never closes it early
        except Exception:      # noqa: BLE001
            pass
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(oid))   # and the wrapper itself is never deallocated
        _kept_alive.append(oid)


def abandon(tmp: str | Path | None = None) -> None:
    """After a failed write: abandon the open HDF5 files and remove the temporary file being written."""
    abandon_open_hdf5()
    if tmp is not None:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def as_disk_full(exc: BaseException, default_file: str | Path | None = None) -> DiskFullError:
    file = failed_file(exc, default_file) or "(unknown file)"
    # the file being replaced, not its temporary: <name>.tmp, <name>.copy.tmp, or io.atomic's .<name>.<random>.tmp
    file = re.sub(r"(^|/)\.([^/]+)\.[A-Za-z0-9_]+\.tmp$", r"\1\2", file)
    return DiskFullError(re.sub(r"(\.copy)?\.tmp$", "", file))


@contextlib.contextmanager
def guard(path: str | Path, tmp: str | Path | None = None):
    """A full disk while writing `path`: abandon the HDF5 files without closing them, remove `tmp` if
    given, and raise the one-line DiskFullError (exit 2) naming `path`. Any other error passes unchanged."""
    try:
        yield
    except BaseException as e:
        if not is_disk_full(e):
            raise
        abandon(tmp)
        raise as_disk_full(e, path) from e


@contextlib.contextmanager
def closing_on_error(f):
    """Close the HDF5 file `f` when the block fails, unless a full disk failed it: closing would retry the
    failed write (see the module's doc); `guard` abandons it instead. On success `f` stays open."""
    try:
        yield f
    except BaseException as e:
        if not is_disk_full(e):
            f.close()
        raise


def quiet_dealloc_errors() -> None:
    """h5py reports a failed close inside an object's deallocation twice (Cython prints the traceback through
    sys.excepthook, then calls sys.unraisablehook); when the disk is full those are the failure the one-line
    error already names, so they are dropped. Every other exception is shown as before."""
    import sys
    if getattr(sys.unraisablehook, "_hpc_rg_disk_full", False):
        return
    previous_unraisable, previous_except = sys.unraisablehook, sys.excepthook

    def unraisable(u):
        if not is_disk_full(u.exc_value):
            previous_unraisable(u)

    def excepthook(kind, value, tb):
        inner = tb
        while inner is not None and inner.tb_next is not None:
            inner = inner.tb_next
        in_dealloc = inner is not None and "_objects.pyx" in inner.tb_frame.f_code.co_filename
        if not (in_dealloc and is_disk_full(value)):
            previous_except(kind, value, tb)
    unraisable._hpc_rg_disk_full = True
    sys.unraisablehook, sys.excepthook = unraisable, excepthook

"""What code wrote an output file: the package version and, in a git checkout, the commit.

`provenance()` is what output files record in their attributes (`hpc_rg_version`, `git_commit`,
`git_dirty`); `version_string()` is what `hpc-rg --version` prints. An installed wheel has no git
checkout: then only the version is known, and the git keys are left out rather than guessed.
"""
from __future__ import annotations

import functools
import subprocess
from pathlib import Path

from hpc_rg import __version__

_SOURCE = Path(__file__).resolve().parent.parent   # the checkout that holds this hpc_rg/, if any


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(_SOURCE), *args], capture_output=True, text=True, timeout=5,
                             check=False)
    except (OSError, subprocess.SubprocessError):      # no git, or it hangs on a network file system
        return None
    return out.stdout.strip() if out.returncode == 0 else None


@functools.lru_cache(maxsize=1)
def git_state() -> tuple[str, bool] | None:
    """(commit, dirty) of the checkout this package is imported from, or None outside a git checkout.

    Only when the package really lies in the work tree's top level (a wheel installed in a virtual
    environment inside some other repository must not report that repository's commit). `dirty`: tracked
    files under hpc_rg/ differ from the commit."""
    top = _git("rev-parse", "--show-toplevel")
    if top is None or Path(top).resolve() != _SOURCE:
        return None
    commit = _git("rev-parse", "HEAD")
    if not commit:
        return None
    status = _git("status", "--porcelain", "--untracked-files=no", "--", "hpc_rg")
    return commit, bool(status)


def provenance() -> dict[str, str | bool]:
    """Attributes for output files: {"hpc_rg_version", and in a checkout "git_commit", "git_dirty"}."""
    out: dict[str, str | bool] = {"hpc_rg_version": __version__}
    state = git_state()
    if state is not None:
        out["git_commit"], out["git_dirty"] = state
    return out


def version_string() -> str:
    """"0.1.0", or "0.1.0 (git 231e908c1a2b, modified)" in a checkout with local changes."""
    state = git_state()
    if state is None:
        return __version__
    commit, dirty = state
    return f"{__version__} (git {commit[:12]}{', modified' if dirty else ''})"


def file_attrs() -> dict[str, str | int]:
    """`provenance()` as HDF5 root attributes every netCDF reader can decode: `git_dirty` as 0/1 (h5py
    stores a bool as an HDF5 enum, which h5netcdf and netCDF-C do not read as a plain attribute)."""
    return {k: int(v) if isinstance(v, bool) else v for k, v in provenance().items()}

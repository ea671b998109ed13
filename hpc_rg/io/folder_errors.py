"""A run folder refused: the one-line errors (exit 2), and how rank 0's decision reaches every rank."""
from __future__ import annotations

from pathlib import Path

from hpc_rg.io import diskfull
from hpc_rg.schema import ConfigError


class RunFolderError(ConfigError):
    """A refused run folder: one line naming the folder, what it holds and the way out."""

    def __init__(self, folder: Path | str, message: str):
        ValueError.__init__(self, f"{folder}: {message}")
        self.file, self.key, self.found, self.allowed = str(folder), "", None, message


class RelayedError(ConfigError):
    """Rank 0's refusal, raised with the same line on the other ranks (so every rank exits 2 together)."""

    def __init__(self, line: str, file: str):
        ValueError.__init__(self, line)
        self.file, self.key, self.found, self.allowed = file, "", None, line


def on_root(world, fn):
    """Run fn on rank 0 only and share its outcome: its result, or its ConfigError on every rank."""
    result, error = None, None
    if world.is_root:
        try:
            result = fn()
        except ConfigError as e:
            error = e
        except OSError as e:                # a full disk while claiming: every rank exits 2 with its one line
            if not diskfull.is_disk_full(e):
                raise
            error = diskfull.as_disk_full(e)
    shared = world.bcast(None if error is None else (str(error), error.file))
    if shared is not None:
        raise error if world.is_root else RelayedError(*shared)
    return result

"""Reading and writing the run folder's files. Public: `open_ensemble` (file or run folder) -> `Ensemble`,
`read_results` (file or run folder) -> `Results`, `write_ensemble`, `FileError`. Imported on first use,
so `import hpc_rg.io` costs nothing and needs no optional package."""
from __future__ import annotations

import importlib

__all__ = ["open_ensemble", "read_results", "Ensemble", "Results", "write_ensemble", "FileError"]

_WHERE = {"open_ensemble": "hpc_rg.api", "read_results": "hpc_rg.api", "Ensemble": "hpc_rg.io.ensemble",
          "write_ensemble": "hpc_rg.io.ensemble", "FileError": "hpc_rg.io.ensemble",
          "Results": "hpc_rg.io.results_view"}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'hpc_rg.io' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))

"""The notebook API: `hpc_rg.open_ensemble(path)` and `hpc_rg.read_results(path)`.

Both take a file or a run folder (then its ensemble.h5 / results.h5). `open_ensemble` needs only the core
install (h5py, numpy); `read_results` and `Ensemble.to_xarray()` need `pip install hpc_rg[xarray]`.
"""
from __future__ import annotations

from pathlib import Path

__all__ = ["open_ensemble", "read_results"]


def _in_run_folder(path, name: str) -> Path:
    """`path` itself, or `path/name` when path is a run folder that holds it (the readers refuse a folder
    with one line, naming what they expected, when it does not)."""
    path = Path(path)
    return path / name if path.is_dir() and (path / name).is_file() else path


def open_ensemble(path):
    """A lazy `Ensemble` of an ensemble.h5 (or of a run folder's): `repr` shows model, lattice,
    temperatures, chains, samples and storage; `.to_xarray()` a lazy `xarray.Dataset`; `.iter_spins(t)`
    streams spins. Close it (or use `with`) when done."""
    from hpc_rg.io.ensemble import Ensemble
    return Ensemble(_in_run_folder(path, "ensemble.h5"))


def read_results(path):
    """A `Results` of a results.h5 (or of a run folder's): {reduction: xarray.Dataset}, with
    `.to_dataframe()` giving tidy rows (reduction, quantity, T, L, value, error)."""
    from hpc_rg.io.results_view import load_results
    return load_results(_in_run_folder(path, "results.h5"))

"""The notebook API: `hpc_rg.open_ensemble(path)` and `hpc_rg.read_results(path)`.

Both take a file or a run folder (then its ensemble.h5 / results.h5). `open_ensemble` needs only the core
install (h5py, numpy); `read_results` and `Ensemble.to_xarray()` need `pip install hpc_rg[xarray]`.
"""
from __future__ import annotations

from pathlib import Path

__all__ = ["open_ensemble", "read_results"]


def _in_run_folder(path, name: str, made_by: str) -> Path:
    """`path` itself, or `path/name` when path is a folder; FileError (one line) for a folder without it,
    saying which stage writes it (rather than the reader's "is a folder", which sends a user looking for a
    file to pass instead)."""
    path = Path(path)
    if not path.is_dir():
        return path
    if not (path / name).exists():
        from hpc_rg.io.ensemble import FileError
        raise FileError(path, f"is a folder without {name} (a run folder has one once its {made_by} stage "
                              f"has run; or pass the path of the {name} file itself)")
    return path / name


def open_ensemble(path):
    """A lazy `Ensemble` of an ensemble.h5 (or of a run folder's): `repr` shows model, lattice,
    temperatures, chains, samples and storage; `.to_xarray()` a lazy `xarray.Dataset`; `.iter_spins(t)`
    streams spins. Close it (or use `with`) when done."""
    from hpc_rg.io.ensemble import open_ensemble as open_file
    return open_file(_in_run_folder(path, "ensemble.h5", "simulate"))


def read_results(path):
    """A `Results` of a results.h5 (or of a run folder's): {reduction: xarray.Dataset}, with
    `.to_dataframe()` giving tidy rows (reduction, quantity, T, L, value, error)."""
    from hpc_rg.io.results_view import load_results
    return load_results(_in_run_folder(path, "results.h5", "analyze"))

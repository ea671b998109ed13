"""hpc_rg: Monte Carlo at scale on spin lattices, neural networks trained on the samples, and
renormalization-group diagnostics comparing the two. See README.md and docs/ (docs/architecture.md first;
docs/python-api.md for notebooks).

`__version__` is the one version source: setup.cfg reads it (`version = attr: hpc_rg.__version__`), and
`hpc_rg.provenance` adds the git commit for `hpc-rg --version` and the attributes of output files.

The notebook API, `open_ensemble(path)` and `read_results(path)`, is imported on first use (module
`__getattr__`), so `import hpc_rg` stays cheap and imports none of h5py, torch, mpi4py or matplotlib.
"""
__version__ = "0.1.0"

__all__ = ["__version__", "open_ensemble", "read_results", "Ensemble", "Results"]

_WHERE = {"open_ensemble": "hpc_rg.api", "read_results": "hpc_rg.api", "Ensemble": "hpc_rg.io.ensemble",
          "Results": "hpc_rg.io.results_view"}


def __getattr__(name: str):
    if name in _WHERE:
        import importlib
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'hpc_rg' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))

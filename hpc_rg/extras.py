"""Optional dependencies ("extras") and the one-line message naming the extra that provides a missing one.

The core install (numpy, numba, h5py, scipy, mpmath, tqdm) reads files and runs `info`, `check`, `status`,
`assemble` and `simulate` on one rank. Everything else is an extra of setup.cfg:

    mpi      mpi4py                       several ranks (mpiexec, srun)
    train    torch, optuna, scikit-learn  train, tune, and the reductions that read or train models
    plot     matplotlib                   figures (analyze, report)
    xarray   xarray, h5netcdf, pandas     Ensemble.to_xarray, results as xarray / data frames
    report   jinja2, markdown-it-py       report.html
    all      all of the above

A stage asks for what it needs before it writes anything (`require_for_stage`); anything that slips past
(an import deep inside a reduction) is turned into the same message by the command line (`from_import_error`).
"""
from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from hpc_rg.schema import ConfigError

__all__ = ["EXTRA_OF", "MissingExtra", "available", "from_import_error", "require", "require_for_stage"]

# top-level module -> (extra, what pip calls the distribution)
EXTRA_OF = {
    "mpi4py": ("mpi", "mpi4py"),
    "torch": ("train", "torch"),
    "optuna": ("train", "optuna"),
    "sklearn": ("train", "scikit-learn"),    # the reconstructions diagnostic (PCA of hidden layers)
    "matplotlib": ("plot", "matplotlib"),
    "xarray": ("xarray", "xarray"),
    "h5netcdf": ("xarray", "h5netcdf"),
    "pandas": ("xarray", "pandas"),
    "jinja2": ("report", "jinja2"),
    "markdown_it": ("report", "markdown-it-py"),
}


class MissingExtra(ConfigError):
    """A stage needs an optional dependency that is not installed: exit 2 with one line naming the extra."""

    def __init__(self, module: str, stage: str | None = None, extra: str | None = None):
        top = module.split(".")[0]
        extra = extra or EXTRA_OF.get(top, ("all", top))[0]
        self.module, self.extra, self.stage = top, extra, stage
        ValueError.__init__(self, f"needs {EXTRA_OF.get(top, (None, top))[1]}; install it with "
                                  f"pip install 'hpc_rg[{extra}]'")
        self.file, self.key, self.found, self.allowed = "hpc_rg", stage or "", None, str(self)

    def line(self) -> str:
        """`hpc-rg train: needs torch; install it with pip install 'hpc_rg[train]'`"""
        return f"hpc-rg {self.stage}: {self}" if self.stage else f"hpc-rg: {self}"


def available(module: str) -> bool:
    """Whether `module` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require(module: str, extra: str | None = None, stage: str | None = None) -> ModuleType:
    """`module`, imported; MissingExtra (one line, exit 2) when it is not installed."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name is None or module.split(".")[0] != e.name.split(".")[0]:
            raise                       # the module is there but something it imports is not: a real bug
        raise MissingExtra(module, stage, extra) from None


# what each stage needs besides the core, checked before it writes anything
STAGE_NEEDS = {
    "train": ("torch",),
    "tune": ("torch", "optuna"),
    "analyze": ("matplotlib",),          # figures; torch too when a reduction reads trained models (below)
    "report": ("jinja2", "markdown_it"),  # report.html: markdown -> HTML through a jinja2 template
    "demo": ("torch", "matplotlib"),
}


def require_for_stage(stage: str, cfg=None) -> None:
    """Raise MissingExtra for the first module `stage` (of job `cfg`) needs that is not installed. A reduction's
    declaration says what it imports (`imports=`) and whether it reads trained models (`needs` "models":
    torch), read without importing it."""
    needs = list(STAGE_NEEDS.get(stage, ()))
    if stage == "analyze" and cfg is not None:
        from hpc_rg import plugins
        declared = plugins.table("reduction")
        for plugin in (declared[name] for name in cfg.analyze if name in declared):
            needs += plugin.imports + (("torch",) if "models" in plugin.needs else ())
    for module in dict.fromkeys(needs):
        if not available(module):
            raise MissingExtra(module, stage)


def from_import_error(e: BaseException, stage: str | None = None) -> MissingExtra | None:
    """The MissingExtra for a ModuleNotFoundError of an optional dependency that is not installed, else None
    (a submodule missing from an installed package is a real error, not a missing extra)."""
    if isinstance(e, ModuleNotFoundError) and e.name:
        top = e.name.split(".")[0]
        if top in EXTRA_OF and not available(top):
            return MissingExtra(top, stage)
    return None

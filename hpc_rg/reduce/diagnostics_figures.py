"""Former home of the model reductions' figures, kept importable for `hpc_rg.report.build` and tests/report
until they read `hpc_rg.reduce.figures.plots()`: its names resolve in `figures` (PLOTS holds every reduction)."""


def __getattr__(name: str):
    from hpc_rg.reduce import figures
    return getattr(figures, name)

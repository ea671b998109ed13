"""Reductions of ensembles to numbers with error bars: the `hpc-rg analyze` stage (`stage.run_analyze`),
the plug-in registry (`registry`: `@reduction`, `Result`, `Context`), results.h5 (`results`), and the
statistics of correlated data (`stats`). Nothing is imported until used; the notebook reader of
results.h5 is `hpc_rg.read_results`."""

__all__ = ["registry", "results", "stage", "stats"]

"""Reductions of ensembles (and trained models) to numbers with error bars: the `hpc-rg analyze` stage
(`stage.run`), each reduction declared as a plugin in the module that implements it (`registry`: `Result`,
`Context`, what a reduction needs), its import-light spec (`specs`, `model_specs`), its figures (`figures`),
one seeding rule (`seeding`), results.h5 (`results`) and the statistics of correlated data (`stats`).
Nothing is imported until used; the notebook reader of results.h5 is `hpc_rg.read_results`."""

__all__ = ["registry", "results", "seeding", "stage", "stats"]

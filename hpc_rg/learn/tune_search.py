"""The old import path of `hpc_rg.tune.search` and `hpc_rg.tune.study` (tests/mpi and hpc_rg/summary.py
import it; the lead may switch them and delete this)."""
from hpc_rg.tune.search import Outcome, Pruned, evaluate_in_snapshot, run_free, run_reproducible  # noqa: F401
from hpc_rg.tune.study import (_optuna, distributions, journal_storage, make_pruner, make_sampler,  # noqa: F401
                               open_study, status_lines, summary_counts)

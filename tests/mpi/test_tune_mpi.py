"""The reproducible search mode over the MPI world: rounds of trials dealt to the ranks, pruned against the
round's snapshot and told in trial order give the study one rank gives. Run under `mpiexec -n 2` and `-n 4`
with `pytest --only-mpi` (the CLI on 1, 2 and 3 ranks: tests/learn/test_tune.py)."""
from __future__ import annotations

import math
import tempfile
from pathlib import Path

import pytest

from hpc_rg.parallel import World, world

pytestmark = pytest.mark.mpi(min_size=2)


def toy(params, number, report):
    v = (math.log10(params["lr"]) + 2.5) ** 2 + (params["x"] - 0.3) ** 2 + (0.0 if params["c"] == "b" else 0.5)
    for epoch in range(1, 6):
        report(epoch, v + (1.0 + number % 3) / epoch)   # uneven curves, so the pruners act
    return v


@pytest.mark.parametrize("pruner", ["median", "hyperband"])
def test_rounds_over_ranks_equal_one_rank(pruner):
    from hpc_rg.tune import search as tune_search, study as tune_study
    from hpc_rg.tune.spec import SpaceEntry, TuneSpec
    w = world()
    folder = Path(w.bcast(tempfile.mkdtemp(prefix="hpc_rg_tune_") if w.is_root else None))
    space = (SpaceEntry("lr", "log", 1e-4, 1e-1), SpaceEntry("x", "float", -1.0, 1.0),
             SpaceEntry("c", "choice", choices=("a", "b")))
    tspec = TuneSpec(trials=15, metric="val_loss", direction="minimize", space=space, batch=5, pruner=pruner,
                     warmup_epochs=1, startup_trials=5)

    def run(path, in_world):
        study = tune_study.open_study(path, "toy", tspec, tune_study.make_sampler(tspec, 3, 0), tune_study.make_pruner(tspec, 5), True) \
            if in_world.is_root else None
        tune_search.run_reproducible(study, tspec, toy, in_world, "toy", lambda: tune_study.make_pruner(tspec, 5))
        return study
    parallel = run(folder / "world.journal", w)
    if w.is_root:
        serial = run(folder / "serial.journal", World(None, 0, 1))

        def table(study):
            return [(t.number, t.state.name, t.params, t.value, dict(t.intermediate_values))
                    for t in sorted(study.get_trials(), key=lambda t: t.number)]
        assert len(table(parallel)) == 15
        assert table(parallel) == table(serial)
        assert tune_study.summary_counts(serial).get("PRUNED", 0) > 0
    w.barrier()

"""Rank-count invariance: the stochastic diagnostics (RBM flows, sampled decimation network, ⟨vh⟩ with sampled
thermometer inputs) give the same numbers on 2 ranks as on one (noise keyed by the work, not the rank).
Run: .venv/bin/mpiexec -n 2 .venv/bin/python -m pytest --only-mpi tests/reduce/test_model_reductions_mpi.py"""
import numpy as np
import pytest
import torch

from model_helpers import T_C, context, exact_chain_samples, save, spec_of, wolff_samples, write
from hpc_rg.learn.dbn import DBN
from hpc_rg.learn.rbm import RBM
from hpc_rg.learn.thermometer import Thermometer
from hpc_rg.parallel import World, world


@pytest.mark.mpi(min_size=2)
def test_diagnostics_rank_invariant(tmp_path_factory, reductions):
    w = world()
    tmp = w.bcast(tmp_path_factory.mktemp("mpi") if w.is_root else None)
    chain, grid = tmp / "chain", tmp / "grid"
    if w.is_root:
        chain.mkdir()
        grid.mkdir()
        rng = np.random.default_rng(4)
        write(chain / "ensemble.h5", [1.0], np.stack([np.stack([exact_chain_samples(16, 1.0, 60, rng)
                                                                 for _ in range(3)])]), "ising1d")
        save(chain, "rbm", "rbm", RBM(16, 8, init_scale=0.5), (16,))
        write(grid / "ensemble.h5", [T_C], np.stack([np.stack([wolff_samples(8, T_C, 40, s) for s in (1, 2, 3)])]),
              "ising2d")
        torch.manual_seed(1)
        save(grid, "dbn", "dbn", DBN([64, 16, 4], units="spin"), (8, 8))
        save(grid, "thermo", "thermometer", Thermometer([2.0, 2.5], channels=2, hidden=4), (8, 8))
    w.barrier()
    runs = [("rbm_flow", chain, dict(model="rbm", lengths=(0, 2, 7), n_blocks=6, batch=7,
                                     window_spin=(1, 3), window_energy=(1, 3))),
            ("decimation_network", chain, dict(layers=2, n_blocks=6, batch=9)),
            ("vh_correlators", grid, dict(model="dbn", thermometer="thermo", rg_steps=2, kernel="majority",
                                          n_blocks=6, batch=8))]
    for name, out, kw in runs:
        par = reductions[name](spec_of(name, **kw), context(out, world=w))
        ser = reductions[name](spec_of(name, **kw), context(out, world=World(None, 0, 1)))
        for q, (v, e) in ser.values.items():
            np.testing.assert_allclose(par.values[q][0], v, rtol=1e-10, atol=1e-12, err_msg=f"{name}.{q}")
            if e is not None:
                np.testing.assert_allclose(par.values[q][1], e, rtol=1e-8, atol=1e-12, err_msg=f"{name}.{q}_err")

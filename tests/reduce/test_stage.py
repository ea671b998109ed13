"""`run_analyze` end to end: every built-in reduction from a job file, results.h5 layout, figures, and the
same numbers on 2 MPI ranks."""
import h5py
import numpy as np
import pytest

from hpc_rg.config import loads

from hpc_rg.schema import ConfigError
from hpc_rg.parallel import world
from hpc_rg.reduce import registry
from hpc_rg.reduce.results import read_results
from hpc_rg.reduce.specs import SPECS
from hpc_rg.reduce.stage import run as run_stage
from ising_data import T_C, make_ensemble

JOB = """
[job]
name = "t"
seed = 7
out = "{out}"
[analyze.observables]
files = ["{out}/ensemble.h5"]
reweight_points = 11
[analyze.binder_crossing]
files = ["{small}", "{out}/ensemble.h5"]
n_grid = 50
n_blocks = 4
[analyze.correlators]
[analyze.scaling_dimensions]
files = ["{small}"]
window_spin = [1, 4]
window_energy = [1, 4]
[analyze.mutual_information]
block = 2
kernels = ["majority", "average", "weights"]
weights = [1.0, 0.5, 0.5, 1.0]
n_boot = 20
[analyze.block_rg]
levels = 2
[analyze.mcrg]
levels = 2
n_blocks = 4
"""


def _run(tmp, w):
    out = tmp / "run"
    if w.is_root:
        out.mkdir(exist_ok=True)
        make_ensemble(out / "ensemble.h5", (16, 16), [2.2, T_C, 2.35], 2, 80, seed=3)
        make_ensemble(tmp / "small.h5", (8, 8), [2.2, T_C, 2.35], 2, 80, seed=4)
    w.barrier()
    cfg = loads(JOB.format(out=out, small=tmp / "small.h5"), tmp / "job.toml")
    run_stage(cfg, w)
    return out


BUILTIN = {"observables", "binder_crossing", "correlators", "scaling_dimensions", "mutual_information",
           "block_rg", "mcrg", "decimation_1d"}


def test_every_declared_reduction_has_its_spec_and_function():
    """Every [analyze.<name>] table is a declared reduction with a function (built-ins and plug-ins)."""
    assert BUILTIN <= set(SPECS) == set(registry.declared())
    for name in SPECS:
        assert callable(registry.load(name)) and SPECS[name] is registry.spec_class(name)


def test_bad_table_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="window_spin"):
        loads('[job]\nname="t"\nseed=1\n[analyze.scaling_dimensions]\nwindow_spin = [3, 2]\n', tmp_path / "j.toml")
    with pytest.raises(ConfigError, match="did you mean"):
        loads('[job]\nname="t"\nseed=1\n[analyze.mcgr]\n', tmp_path / "j.toml")


def test_run_analyze_serial(tmp_path, serial_world):
    out = _run(tmp_path, serial_world)
    res = read_results(out / "results.h5")
    with h5py.File(out / "results.h5") as f:
        assert f.attrs["format"] == "hpc_rg.results/1"
        assert "[analyze.mcrg]" in f.attrs["job_toml"]
    assert set(res) == BUILTIN - {"decimation_1d"}
    o = res["observables"]
    assert o["binder"].shape == (3,) and np.all(o["binder_err"] > 0)
    assert res["correlators"]["G_s"].shape == (3, 9)
    assert res["mcrg"]["y_h"].shape == (3, 2) and np.all(np.isfinite(res["mcrg"]["y_h_err"]))
    assert "delta_eps_fss_G" in res["scaling_dimensions"]
    assert np.all(res["mutual_information"]["I_blocks"] > res["mutual_information"]["I_image_majority"])
    assert "ensembles" in res["mcrg"]["attrs"]
    figs = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert "mcrg.png" in figs and "binder_crossing.png" in figs and len(figs) == 7


@pytest.mark.mpi(min_size=2)
def test_run_analyze_mpi_matches_serial(tmp_path_factory):
    w = world()
    tmp = w.bcast(tmp_path_factory.mktemp("mpi") if w.is_root else None)
    out = _run(tmp, w)
    if w.is_root:
        par = read_results(out / "results.h5")
        from hpc_rg.parallel import World
        (out / "results.h5").rename(out / "par.h5")
        run_stage(loads(JOB.format(out=out, small=tmp / "small.h5"), tmp / "job.toml"), World(None, 0, 1))
        ser = read_results(out / "results.h5")
        for name in ser:
            for k, v in ser[name].items():
                if isinstance(v, np.ndarray) and v.dtype.kind == "f":
                    assert np.allclose(v, par[name][k], rtol=1e-9, atol=1e-12, equal_nan=True), (name, k)
    w.barrier()


def test_correlators_on_a_rectangular_lattice(tmp_path):
    # before: axes/r had L//2+1 entries while the profiles stop at the shorter side, and the figure crashed
    out = tmp_path / "run"
    out.mkdir()
    make_ensemble(out / "ensemble.h5", (8, 16), [2.2, T_C], 2, 60, seed=5)
    job = f'[job]\nname = "rect"\nseed = 1\nout = "{out}"\n[analyze.correlators]\n'
    run_stage(loads(job, tmp_path / "job.toml"), world())
    res = read_results(out / "results.h5")["correlators"]
    assert res["G_s"].shape == (2, len(res["axes"]["r"])) and len(res["axes"]["r"]) == 8 // 2 + 1
    assert (out / "figures").is_dir() and any((out / "figures").glob("correlators*.png"))


def test_each_reduction_draws_with_the_figure_its_spec_names():
    """One wiring: a reduction's figure function is its spec's FIGURE; the stage and the report (figures.plots)
    find it by the reduction's name, and a Result carries no plot function of its own."""
    from hpc_rg.reduce import figures
    drawn = figures.plots()
    for name in SPECS:
        assert drawn.get(name) is registry.figure_function(name)
    assert BUILTIN <= set(drawn) and set(drawn) <= set(SPECS)
    assert all(callable(fn.figures) for fn in drawn.values())
    assert figures.PLOTS == drawn and figures.plot_mcrg is drawn["mcrg"]     # the notebook names resolve
    assert not hasattr(registry.Result(), "plot")

"""The notebook API: `hpc_rg.open_ensemble` (repr, a lazy to_xarray), `hpc_rg.read_results` (a Dataset per
reduction, tidy rows), lazy exports, and `import hpc_rg` importing none of the heavy packages."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

import hpc_rg
from hpc_rg.schema import ConfigError
from hpc_rg.io.ensemble import write_ensemble
from hpc_rg.reduce.registry import Result
from hpc_rg.reduce.results import read_results as read_results_dicts
from hpc_rg.reduce.results import write_results

ROOT = Path(__file__).resolve().parents[2]
TEMPS = [2.0, 2.25, 2.5]


def python(code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def ensemble(tmp_path):
    rng = np.random.default_rng(3)
    spins = np.where(rng.random((3, 2, 10, 4, 6)) < 0.7, 1, -1).astype(np.int8)
    energy = rng.normal(size=(3, 2, 10))
    path = write_ensemble(tmp_path / "ensemble.h5", TEMPS, spins, energy=energy,
                          attrs={"model": "ising2d", "seed": 7},
                          timeseries={"energy": rng.normal(size=(3, 2, 20))})
    return path, spins, energy


# -- exports ----------------------------------------------------------------------------------------------

def test_import_hpc_rg_imports_no_heavy_package():
    proc = python("import sys, hpc_rg, hpc_rg.io, hpc_rg.reduce, hpc_rg.learn\n"
                  "print(sorted(m for m in ('torch', 'mpi4py', 'matplotlib', 'xarray', 'pandas', 'h5py', 'numba')"
                  " if m in sys.modules))")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_open_ensemble_imports_neither_torch_nor_mpi_nor_matplotlib(ensemble):
    path, _, _ = ensemble
    proc = python(f"import sys, hpc_rg\ne = hpc_rg.open_ensemble({str(path)!r}); repr(e); e.close()\n"
                  "print(sorted(m for m in ('torch', 'mpi4py', 'matplotlib', 'xarray') if m in sys.modules))")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_public_names_resolve():
    for name in hpc_rg.__all__:
        assert getattr(hpc_rg, name) is not None
    assert hpc_rg.io.open_ensemble is hpc_rg.open_ensemble        # README's spelling
    assert hpc_rg.io.read_results is hpc_rg.read_results
    for module in ("hpc_rg.io", "hpc_rg.reduce", "hpc_rg.learn", "hpc_rg.io.ensemble", "hpc_rg.io.results_view",
                   "hpc_rg.io.xarray_view", "hpc_rg.api"):
        namespace: dict = {}
        exec(f"from {module} import *", namespace)
        assert set(__import__(module, fromlist=["__all__"]).__all__) <= set(namespace)
    with pytest.raises(AttributeError):
        hpc_rg.no_such_name


# -- Ensemble ---------------------------------------------------------------------------------------------

def test_repr_shows_model_lattice_temperatures_chains_samples_storage(ensemble):
    path, _, _ = ensemble
    with hpc_rg.open_ensemble(path) as ens:
        text = repr(ens)
    for fragment in ("ising2d", "4 x 6 (24 sites)", "3: 2, 2.25, 2.5", "chains        2",
                     "10 per chain", "int8"):
        assert fragment in text, (fragment, text)
    assert repr(ens).endswith("(closed)>")


def test_repr_abbreviates_many_temperatures(tmp_path):
    temps = np.linspace(1.0, 3.0, 40)
    path = write_ensemble(tmp_path / "e.h5", temps, np.ones((40, 1, 2, 4, 4), np.int8))
    with hpc_rg.open_ensemble(path) as ens:
        line = next(line for line in repr(ens).splitlines() if "temperatures" in line)
    assert line.split()[1:4] == ["40:", "1,", "1.05128,"] and "..." in line and line.endswith("3")
    assert len(line) < 100


def test_open_ensemble_takes_a_run_folder(ensemble):
    path, _, _ = ensemble
    with hpc_rg.open_ensemble(path.parent) as ens:
        assert ens.path == path
    (path.parent / "empty").mkdir()
    with pytest.raises(ConfigError, match="empty: is a folder without ensemble.h5 "):
        hpc_rg.open_ensemble(path.parent / "empty")         # a folder without ensemble.h5: one line


class ReadLog:
    """Every h5py read of a dataset, as (dataset name, selection)."""

    def __init__(self, monkeypatch):
        self.reads: list[tuple[str, object]] = []
        original = h5py.Dataset.__getitem__

        def logged(dset, key, *args, **kwargs):
            self.reads.append((dset.name, key))
            return original(dset, key, *args, **kwargs)
        monkeypatch.setattr(h5py.Dataset, "__getitem__", logged)

    def of(self, *names):
        return [r for r in self.reads if r[0] in names]


def test_to_xarray_reads_nothing_until_asked_then_only_the_slab(ensemble, monkeypatch):
    path, spins, energy = ensemble
    with hpc_rg.open_ensemble(path) as ens:
        log = ReadLog(monkeypatch)
        ds = ens.to_xarray()
        sub = ds.spins.sel(temperature=2.25).isel(chain=1, sample=slice(2, 5))
        mean_e = ds.energy.isel(temperature=0)
        assert log.reads == []                                   # building and selecting read nothing
        values = sub.values
        assert len(log.of("/spins")) == 1 and log.of("/energy", "/magnetization", "/timeseries/energy") == []
        assert values.shape == (3, 4, 6) and values.dtype == np.int8
        np.testing.assert_array_equal(values, spins[1, 1, 2:5])
        np.testing.assert_array_equal(mean_e.values, energy[0])
        assert len(log.of("/energy")) == 1


def test_to_xarray_values_equal_the_ensemble_reads(ensemble):
    path, spins, energy = ensemble
    with hpc_rg.open_ensemble(path) as ens:
        ds = ens.to_xarray()
        assert dict(ds.spins.sizes) == {"temperature": 3, "chain": 2, "sample": 10, "y": 4, "x": 6}
        np.testing.assert_array_equal(ds.temperature.values, TEMPS)
        assert ds.temperature.attrs["units"] == "J/k_B"
        np.testing.assert_array_equal(ds.spins.values, spins)
        np.testing.assert_array_equal(ds.spins[:, ::-1, ::-3, 1].values, spins[:, ::-1, ::-3, 1])
        np.testing.assert_array_equal(ds.spins.isel(sample=[7, 1, 4]).values, spins[:, :, [7, 1, 4]])
        for t in range(3):
            streamed = np.concatenate(list(ens.iter_spins(t, batch=4)))
            np.testing.assert_array_equal(ds.spins.isel(temperature=t).values.reshape(-1, 4, 6), streamed)
        np.testing.assert_array_equal(ds.energy.values, ens.energy)
        np.testing.assert_array_equal(ds.magnetization.values, ens.magnetization)
        np.testing.assert_array_equal(ds.timeseries_energy.values, ens.timeseries("energy"))
        assert ds.attrs["model"] == "ising2d" and ds.attrs["seed"] == 7
        assert float(abs(ds.magnetization).mean()) == pytest.approx(np.abs(spins.mean(axis=(3, 4))).mean())
    with pytest.raises(ValueError, match="the Ensemble was closed"):
        ds.spins.values


def test_missing_xarray_is_one_line_naming_the_extra(ensemble, tmp_path):
    path, _, _ = ensemble
    results = _results_file(tmp_path)
    for call in (f"hpc_rg.open_ensemble({str(path)!r}).to_xarray()", f"hpc_rg.read_results({str(results)!r})"):
        proc = python("import sys\nsys.modules['xarray'] = None\nimport hpc_rg\n"
                      f"try:\n    {call}\nexcept ImportError as e:\n    print(type(e).__name__, e)\n")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == "MissingExtra this needs the optional package 'xarray': " \
                                      "pip install 'hpc_rg[xarray]'", proc.stdout


# -- Results ----------------------------------------------------------------------------------------------

def _results_file(folder: Path) -> Path:
    """results.h5 with the shapes the reductions write: per temperature, (T, r), several sizes, scalars,
    exact numbers without errors, unknown shapes, string axes."""
    obs = Result(attrs={"method": "jackknife", "lattice_shape": np.array([8, 8])})
    obs.put("abs_m", [0.9, 0.7, 0.5], [0.01, 0.02, 0.03])
    obs.put("tau_int_abs_m", [1.0, 2.0, 1.5])
    obs.axes["temperatures"] = np.array(TEMPS)
    obs.axes["L"] = np.array([8])
    corr = Result(attrs={"distance": "axes"})
    corr.put("G_s", np.arange(15.0).reshape(3, 5), np.full((3, 5), 0.1))
    corr.put("abs_m", [0.9, 0.7, 0.5], [0.01, 0.02, 0.03])
    corr.axes["temperatures"] = np.array(TEMPS)
    corr.axes["r"] = np.arange(5)
    clash = Result()                   # a quantity named like an axis: netCDF cannot name both `r`
    clash.put("r", [1.0, 2.0, 3.0], [0.1, 0.2, 0.3])
    clash.axes["temperatures"] = np.array(TEMPS)
    clash.axes["r"] = np.arange(5)
    sizes = Result()
    sizes.put("abs_m_L8", [0.9, 0.8], [0.01, 0.01])
    sizes.put("abs_m_L16", [0.95, 0.85, 0.6], [0.02, 0.02, 0.02])
    sizes.axes["temperatures_L8"] = np.array([2.0, 2.5])
    sizes.axes["temperatures_L16"] = np.array(TEMPS)
    sizes.axes["L"] = np.array([8, 16])
    sizes.axes["reweight_T_L8"] = np.linspace(2.0, 2.5, 4)
    sizes.axes["reweighted_abs_m_L8"] = np.array([0.9, 0.87, 0.83, 0.8])
    odd = Result(attrs={"note": "unknown shapes"})
    odd.put("cube", np.arange(30.0).reshape(2, 3, 5))
    odd.put("scalar", 4.5, 0.5)
    odd.put("per_model", [0.1, 0.2], [0.01, 0.02])
    odd.axes["model"] = np.array([b"a", b"b"])
    odd.axes["matrix"] = np.eye(2)
    path = folder / "results.h5"
    write_results(path, {"observables": obs, "correlators": corr, "sizes": sizes, "odd": odd,
                         "clash": clash}, "[job]\n",
                  n_ranks=2, version="9.9")
    return path


def test_read_results_gives_a_dataset_per_reduction(tmp_path):
    path = _results_file(tmp_path)
    res = hpc_rg.read_results(path)
    ref = read_results_dicts(path)
    assert set(res) == set(ref) == {"observables", "correlators", "sizes", "odd", "clash"}
    assert res.attrs["job_toml"] == "[job]\n" and res.attrs["n_ranks"] == 2

    obs = res["observables"]
    assert obs.abs_m.dims == ("temperature",) and obs.abs_m_error.dims == ("temperature",)
    np.testing.assert_array_equal(obs.temperature.values, TEMPS)
    np.testing.assert_array_equal(obs.abs_m.values, ref["observables"]["abs_m"])
    np.testing.assert_array_equal(obs.abs_m_error.values, ref["observables"]["abs_m_err"])
    assert "tau_int_abs_m_error" not in obs and obs.L.item() == 8 and obs.attrs["method"] == "jackknife"
    assert float(obs.abs_m.sel(temperature=2.25)) == 0.7

    corr = res["correlators"]
    assert corr.G_s.dims == ("temperature", "r") and "L" not in corr.coords       # no size recorded
    np.testing.assert_array_equal(corr.G_s.values, ref["correlators"]["G_s"])
    np.testing.assert_array_equal(corr.r.values, np.arange(5))
    clash = res["clash"]
    np.testing.assert_array_equal(clash.r.values, np.arange(5))
    np.testing.assert_array_equal(clash.r_value.values, [1.0, 2.0, 3.0])
    assert clash.r_value.attrs["quantity"] == "r" and clash.r_value.attrs["ancillary_variables"] == "r_error"

    sizes = res["sizes"]
    assert sizes.abs_m_L8.dims == ("temperature_L8",) and sizes.abs_m_L16.dims == ("temperature_L16",)
    assert sizes.abs_m_L16.attrs["quantity"] == "abs_m" and sizes.abs_m_L16.attrs["L"] == 16
    assert sizes.reweighted_abs_m_L8.dims == ("reweight_T_L8",)
    np.testing.assert_array_equal(sizes.L.values, [8, 16])

    odd = res["odd"]                      # unknown shapes come through, on generic axes
    assert odd.cube.dims == ("cube_dim_0", "cube_dim_1", "cube_dim_2")
    np.testing.assert_array_equal(odd.cube.values, ref["odd"]["cube"])
    assert odd.scalar.dims == () and float(odd.scalar_error) == 0.5
    assert list(odd.model.values) == ["a", "b"]
    np.testing.assert_array_equal(odd.matrix.values, np.eye(2))
    text = repr(res)
    assert text.startswith(f"<Results {path}: 5 reduction(s), hpc_rg 9.9")
    assert "observables  [temperature: 3]  abs_m±, tau_int_abs_m" in text


def test_dataframe_rows_are_the_files_numbers(tmp_path):
    path = _results_file(tmp_path)
    ref = read_results_dicts(path)
    df = hpc_rg.read_results(path).to_dataframe()
    assert list(df.columns[:6]) == ["reduction", "quantity", "T", "L", "value", "error"]
    obs = df[(df.reduction == "observables") & (df.quantity == "abs_m")].sort_values("T")
    np.testing.assert_array_equal(obs["T"], TEMPS)
    np.testing.assert_array_equal(obs["value"], ref["observables"]["abs_m"])
    np.testing.assert_array_equal(obs["error"], ref["observables"]["abs_m_err"])
    assert set(obs["L"]) == {8}
    tau = df[df.quantity == "tau_int_abs_m"]
    assert tau["error"].isna().all() and list(tau["value"]) == [1.0, 2.0, 1.5]
    g = df[df.quantity == "G_s"]
    assert len(g) == 15
    for _, row in g.iterrows():
        t = TEMPS.index(row["T"])
        assert row["value"] == ref["correlators"]["G_s"][t, int(row["r"])]
    r = df[(df.reduction == "clash") & (df.quantity == "r")]
    assert list(r["value"]) == [1.0, 2.0, 3.0] and list(r["error"]) == [0.1, 0.2, 0.3]
    l16 = df[(df.reduction == "sizes") & (df.quantity == "abs_m") & (df.L == 16)]
    np.testing.assert_array_equal(l16["T"], TEMPS)
    np.testing.assert_array_equal(l16["value"], ref["sizes"]["abs_m_L16"])
    assert len(df[(df.reduction == "sizes") & (df.quantity == "abs_m") & (df.L == 8)]) == 2
    cube = df[df.quantity == "cube"]
    assert len(cube) == 30 and cube["T"].isna().all() and set(cube["index"]) == set(np.ndindex(2, 3, 5))
    assert df[df.quantity == "scalar"][["value", "error"]].values.tolist() == [[4.5, 0.5]]
    only = hpc_rg.read_results(path).to_dataframe("observables")
    assert set(only.reduction) == {"observables"} and len(only) == 6


def test_dimension_scales_name_the_axes(tmp_path):
    """A file with HDF5 dimension scales (as `hpc-rg analyze` writes them) is labelled by them, not by
    lengths: here an axis of length 3 that is not the temperature."""
    path = _results_file(tmp_path)
    with h5py.File(path, "a") as f:
        g = f["correlators"]
        g["step"] = np.array([10, 20, 30])
        g["step"].make_scale("step")
        g["flow"] = np.ones(3)
        g["flow"].dims[0].attach_scale(g["step"])
        g["flow"].attrs["units"] = "1"
    ds = hpc_rg.read_results(path)["correlators"]
    assert ds.flow.dims == ("step",) and list(ds.step.values) == [10, 20, 30]
    assert ds.flow.attrs["units"] == "1" and ds.flow.attrs["dims_from"] == "HDF5 dimension scales"
    assert "step" not in ds.data_vars


def test_read_results_refuses_other_files_in_one_line(ensemble, tmp_path):
    path, _, _ = ensemble
    with pytest.raises(ConfigError, match=r"attribute format = 'hpc_rg.ensemble/1': expected 'hpc_rg.results/1'"):
        hpc_rg.read_results(path)
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(ConfigError, match="is not a results file"):
        hpc_rg.read_results(tmp_path / "junk.h5")
    assert hpc_rg.read_results(_results_file(tmp_path).parent).path == tmp_path / "results.h5"


# -- hostile inputs ---------------------------------------------------------------------------------------

def test_a_folder_without_the_file_is_named_with_the_stage_that_writes_it(tmp_path):
    """Before: "is a folder, not a results file", which sent the user looking for a file to pass."""
    with pytest.raises(ConfigError, match=r"is a folder without results.h5 \(.*analyze stage"):
        hpc_rg.read_results(tmp_path)
    with pytest.raises(ConfigError, match=r"is a folder without ensemble.h5 \(.*simulate stage"):
        hpc_rg.open_ensemble(tmp_path)


@pytest.mark.parametrize("error, why", [(np.ones(5), r"has shape \(5,\), its value \(3,\)"),
                                        (np.ones((3, 2)), r"has shape \(3, 2\), its value \(3,\)"),
                                        (np.array([b"a", b"b", b"c"]), r"holds \|S1 values, not numbers")])
def test_an_error_bar_that_does_not_fit_its_value_is_refused(tmp_path, error, why):
    """Before: rows with NaN errors (shape) or a ValueError from to_dataframe (strings)."""
    path = _results_file(tmp_path)
    with h5py.File(path, "a") as f:
        del f["observables/abs_m_err"]
        f["observables/abs_m_err"] = error
    with pytest.raises(ConfigError, match=f"results.h5: /observables/abs_m_err {why}"):
        hpc_rg.read_results(path).to_dataframe()


@pytest.mark.parametrize("temperatures", [np.ones((3, 1)), np.array([b"a", b"b", b"c"]), [2.0, np.nan, 2.5]])
def test_temperatures_that_are_not_one_number_each_are_refused(ensemble, temperatures):
    """Before: the file opened, and repr raised TypeError/ValueError from a format string (NaN: accepted)."""
    path, _, _ = ensemble
    with h5py.File(path, "a") as f:
        del f["temperatures"]
        f["temperatures"] = temperatures
    with pytest.raises(ConfigError, match=r"ensemble.h5: /temperatures is .*: expected finite numbers, one per"):
        hpc_rg.open_ensemble(path)


def test_to_xarray_of_a_file_whose_timeseries_is_not_a_group(ensemble):
    """Before: AttributeError ('Dataset' object has no attribute 'items')."""
    pytest.importorskip("xarray")
    path, spins, _ = ensemble
    with h5py.File(path, "a") as f:
        del f["timeseries"]
        f["timeseries"] = np.arange(3.0)
    with hpc_rg.open_ensemble(path) as ens:
        ds = ens.to_xarray()
        assert not [v for v in ds.data_vars if v.startswith("timeseries")]
        assert (ds.spins.values == spins).all()


def test_a_dataset_declaring_more_values_than_memory_is_refused(tmp_path):
    """A few KiB of results.h5 can declare 10^12 values (unwritten chunks read as the fill value).
    Before: numpy's MemoryError ("Unable to allocate 7.28 TiB") from read_results and result_from_file."""
    from hpc_rg.reduce.figures import result_from_file
    path = _results_file(tmp_path)
    with h5py.File(path, "a") as f:
        f["observables"].create_dataset("vast", shape=(10**6, 10**6), dtype="f8", chunks=(1000, 1000))
    with pytest.raises(ConfigError, match=r"results.h5: /observables/vast declares 1000000000000 values"):
        hpc_rg.read_results(path)
    with pytest.raises(ConfigError, match=r"/observables/vast declares 1000000000000 values .* GiB"):
        result_from_file(path, "observables")


def test_a_lattice_size_that_is_no_integer_is_not_rounded_and_names_stay_on_their_line(tmp_path):
    """Before: L = 8.5 in the file came out as L = 8; a reduction named "a\\nb" split the repr's table."""
    path = _results_file(tmp_path)
    with h5py.File(path, "a") as f:
        del f["observables/axes/L"]
        f["observables/axes/L"] = np.array([8.5])
        f.copy(f["odd"], "odd\nname")
    results = hpc_rg.read_results(path)
    assert results["observables"].L.item() == 8.5
    assert set(results.to_dataframe(reductions="observables")["L"]) == {8.5}
    lines = repr(results).splitlines()
    assert len(lines) == 1 + len(results) and any(line.startswith("  'odd\\nname'") for line in lines)


@pytest.mark.parametrize("key", ["observables/abs_m_error", "clash/r_value", "sizes/axes/abs_m_L8"])
def test_two_datasets_for_one_variable_are_refused(tmp_path, key):
    """Before: a quantity `abs_m_error` beside abs_m and abs_m_err replaced abs_m's error bar without a word
    (rows with errors 7, 8, 9); likewise a quantity `r_value` beside the renamed `r`, an axis like a quantity."""
    path = _results_file(tmp_path)
    with h5py.File(path, "a") as f:
        f[key] = [[7.0, 8.0]] if key.startswith("sizes") else [7.0, 8.0, 9.0]
    with pytest.raises(ConfigError, match="would both be the variable"):
        hpc_rg.read_results(path)


def test_a_virtual_energy_whose_source_is_missing_is_refused(ensemble, tmp_path):
    """Only /spins was checked: a virtual /energy over a missing file read as zeros in to_xarray and the
    report's table."""
    from hpc_rg.cli import main
    path, _, energy = ensemble
    with h5py.File(tmp_path / "source.h5", "w") as s:
        s["e"] = energy
    layout = h5py.VirtualLayout(shape=energy.shape, dtype="f8")
    layout[:, :, :] = h5py.VirtualSource("source.h5", "e", shape=energy.shape)[:, :, :]
    with h5py.File(path, "a") as f:
        del f["energy"], f["timeseries"]
        f.create_virtual_dataset("energy", layout, fillvalue=0.0)
    with hpc_rg.open_ensemble(path) as ens:
        assert np.array_equal(ens.to_xarray().energy.values, energy)       # with its source: read through
    (tmp_path / "source.h5").unlink()
    with hpc_rg.open_ensemble(path) as ens:
        with pytest.raises(ConfigError, match=r"/energy is a virtual dataset .* source.h5 \(missing\)"):
            ens.to_xarray()
    assert main(["report", str(tmp_path)]) == 2 and not (tmp_path / "report.md").exists()


def test_repr_keeps_one_line_per_field_whatever_the_model_attribute_says(tmp_path):
    """Before: a model attribute with line breaks (or 10 kB of text) broke the repr's layout."""
    spins = np.ones((1, 1, 2, 2, 2), dtype=np.int8)
    model = "ising2d\n  chains  999\n" + "x" * 10_000
    path = write_ensemble(tmp_path / "ensemble.h5", [2.0], spins, attrs={"model": model})
    with hpc_rg.open_ensemble(path) as ens:
        lines = repr(ens).splitlines()
    assert len(lines) == 7 and lines[1].startswith("  model         ising2d chains 999 xxx") and len(lines[1]) < 100
    assert lines[4] == "  chains        1"


@pytest.mark.parametrize("axis, data", [("temperatures", [b"a", b"b", b"c"]), ("L", [b"x"])])
def test_temperatures_or_sizes_that_are_not_numbers_are_refused(tmp_path, axis, data):
    """Before: read_results worked and to_dataframe raised numpy's "could not convert string to float"."""
    path = _results_file(tmp_path)
    with h5py.File(path, "a") as f:
        del f[f"observables/axes/{axis}"]
        f[f"observables/axes/{axis}"] = np.array(data)
    with pytest.raises(ConfigError, match=rf"results.h5: /observables/axes/{axis} is object \[.*\]: expected numbers"):
        hpc_rg.read_results(path).to_dataframe()

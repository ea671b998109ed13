"""Issue 19, points 1 and 3: ensemble.h5 and results.h5 read anywhere; spins stored 8 per byte.

`xarray.open_dataset(path, engine="h5netcdf")` — with no help from hpc_rg — must name every axis, show the
temperature coordinate (the job's ladder), give units and long names, and find the provenance (version,
git commit, job text) in the root attributes; paths in attributes are relative to the run folder. The files
are made by the real pipeline (CLI in a subprocess) or the real writers."""
from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import pytest

from hpc_rg.config import loads

from hpc_rg.schema import ConfigError
from hpc_rg.io import spin_storage
from hpc_rg.io.ensemble import Ensemble, write_ensemble
from hpc_rg.provenance import provenance
from hpc_rg.reduce.registry import Result
from hpc_rg.reduce.results import read_results, write_results
from tests.io.helpers import cli, one_line_exit_2, write_job

xr = pytest.importorskip("xarray")
pytest.importorskip("h5netcdf")

TEMPERATURES = [2.0, 2.269185, 2.6]
SIMULATE = """[simulate]
model = "ising2d"
L = 10
temperatures = [2.0, 2.269185, 2.6]
chains = 2
thermalize = 20
samples = 24
thin = 2
replica_exchange = true
exchange_every = 4
checkpoint_every = 40
spin_storage = "{storage}"
"""
ANALYZE = """[analyze.observables]
[analyze.correlators]
[analyze.block_rg]
levels = 1
"""


@pytest.fixture(scope="module", params=["int8", "bits"])
def run(request, tmp_path_factory):
    """A simulated and analysed run folder (10x10: x is not a multiple of 8), per storage."""
    folder = tmp_path_factory.mktemp(request.param)
    job = write_job(folder, "xr", simulate=SIMULATE.format(storage=request.param), extra=ANALYZE)
    proc = cli("run", job, "--force", timeout=300)
    assert proc.returncode == 0, proc.stderr
    return request.param, folder / "xr", job


def _opened(path, **kw):
    return xr.open_dataset(path, engine="h5netcdf", **kw)


def test_ensemble_has_named_dims_temperature_coordinate_units(run):
    storage, out, job = run
    with _opened(out / "ensemble.h5") as ds:
        x = "x_packed" if storage == "bits" else "x"
        assert ds["spins"].dims == ("temperature", "chain", "sample", "y", x)
        assert dict(ds.sizes) == {"temperature": 3, "chain": 2, "sample": 24, "y": 10,
                                  x: 2 if storage == "bits" else 10}
        assert ds["energy"].dims == ds["magnetization"].dims == ("temperature", "chain", "sample")
        assert "temperature" in ds.coords and list(ds.coords) == ["temperature"]
        np.testing.assert_array_equal(ds["temperature"].values, TEMPERATURES)
        assert ds["temperature"].attrs["units"] == "J/k_B"
        for name, v in ds.variables.items():
            assert v.attrs.get("units") and v.attrs.get("long_name"), name
        assert not any(d.startswith("phony_dim") for d in ds.dims)
        # provenance in the root attributes, once each
        assert ds.attrs["job_toml"] == job.read_text()
        for k, v in provenance().items():
            assert ds.attrs[k] == v
        assert ds.attrs["format"] == "hpc_rg.ensemble/1"
    for group, dims in (("timeseries", ("temperature", "chain", "measurement")),
                        ("exchange", ("exchange_step", "ladder", "replica"))):
        with _opened(out / "ensemble.h5", group=group) as ds:
            v = ds["energy" if group == "timeseries" else "slot_history"]
            assert v.dims == dims and v.attrs["units"] and v.attrs["long_name"]


def test_virtual_spins_are_labelled_and_not_read_on_open(run, monkeypatch):
    """/spins is a virtual dataset over parts/: its dimension scales are its own attributes, and a lazy
    open reads none of it (the data may be terabytes)."""
    storage, out, _ = run
    with h5py.File(out / "ensemble.h5") as f:
        assert f["spins"].is_virtual and len(f["spins"].dims[4]) == 1
    reads = []
    real = h5py.Dataset.__getitem__

    def spy(self, key):
        reads.append(self.name)
        return real(self, key)

    monkeypatch.setattr(h5py.Dataset, "__getitem__", spy)
    with _opened(out / "ensemble.h5") as ds:
        _ = ds.sizes, ds.attrs, ds["temperature"].values, ds["spins"].attrs
        assert "/spins" not in reads
        one = ds["spins"].isel(temperature=1, chain=0, sample=slice(3, 5)).values
    assert "/spins" in reads
    assert one.shape[:2] == (2, 10)


def test_spins_read_through_xarray_equal_ensemble_reads(run):
    storage, out, _ = run
    with Ensemble(out / "ensemble.h5") as e, _opened(out / "ensemble.h5") as ds:
        assert e.spin_storage == storage
        ours = e.spins[()]
        assert ours.dtype == np.int8 and set(np.unique(ours)) == {-1, 1}
        raw = ds["spins"].values
        if storage == "bits":
            assert raw.dtype == np.uint8 and ds["spins"].attrs["spin_storage"] == "bits"
            np.testing.assert_array_equal(ds["spins"].attrs["unpacked_shape"], ours.shape)
            np.testing.assert_array_equal(spin_storage.unpack(raw, ours.shape[-1]), ours)
        else:
            np.testing.assert_array_equal(raw, ours)
        np.testing.assert_array_equal(ds["magnetization"].values, e.magnetization)
        np.testing.assert_array_equal(ds["magnetization"].values, ours.mean(axis=(3, 4)))


def test_results_have_reduction_dims_coordinates_units_relative_paths(run):
    _, out, job = run
    with _opened(out / "results.h5") as ds:
        assert ds.attrs["job_toml"] == job.read_text()
        assert ds.attrs["git_commit"] == provenance().get("git_commit", ds.attrs.get("git_commit"))
    with _opened(out / "results.h5", group="observables") as ds:
        np.testing.assert_array_equal(ds["temperature"].values, TEMPERATURES)
        assert ds["abs_m"].dims == ds["abs_m_err"].dims == ("temperature",)
        assert ds["energy"].attrs["units"] == "J" and ds["susceptibility"].attrs["units"] == "1/J"
        assert ds.attrs["ensembles"] == "ensemble.h5"            # relative to the run folder
    with _opened(out / "results.h5", group="correlators") as ds:
        assert ds["G_s"].dims == ("temperature", "r")
        np.testing.assert_array_equal(ds["r"].values, np.arange(6))
    with _opened(out / "results.h5", group="block_rg") as ds:
        assert ds["abs_m"].dims == ("temperature", "level") and list(ds["level"].values) == [0, 1]
        for name, v in ds.data_vars.items():
            assert v.attrs.get("long_name"), name
    # hpc_rg's reader resolves the relative path, and still reads files with absolute ones
    res = read_results(out / "results.h5")
    assert res["observables"]["attrs"]["ensembles"] == str((out / "ensemble.h5").resolve())
    assert "temperature" not in res["observables"] and "abs_m" in res["observables"]


def test_old_absolute_paths_and_undeclared_outputs(tmp_path):
    res = Result(attrs={"ensembles": "/elsewhere/run/ensemble.h5, " + str(tmp_path / "b" / "ensemble.h5")})
    res.put("grid", np.ones((2, 3)), np.zeros((2, 3)))
    res.axes["temperatures"] = np.array([1.0, 2.0])
    path = write_results(tmp_path / "results.h5", {"not_declared": res}, "job")
    with _opened(path, group="not_declared") as ds:
        assert ds["grid"].dims == ("grid_dim0", "grid_dim1")
        assert "temperature" in ds.coords
    with h5py.File(path, "r") as f:
        stored = f["not_declared"].attrs["ensembles"].split(", ")
    assert stored[1] == "b/ensemble.h5" and stored[0].endswith("elsewhere/run/ensemble.h5")
    assert not any(os.path.isabs(p) for p in stored)
    got = read_results(path)["not_declared"]["attrs"]["ensembles"].split(", ")
    assert got == ["/elsewhere/run/ensemble.h5", str(tmp_path.resolve() / "b" / "ensemble.h5")]
    with h5py.File(path, "a") as f:                      # a file from before: absolute paths stay as they are
        f["not_declared"].attrs["ensembles"] = "/old/run/ensemble.h5"
    assert read_results(path)["not_declared"]["attrs"]["ensembles"] == "/old/run/ensemble.h5"


def test_assemble_copy_keeps_labels_and_storage(run):
    storage, out, _ = run
    import shutil
    copy = out.parent / f"copy_{storage}"
    shutil.copytree(out, copy)
    proc = cli("assemble", copy, "--copy")
    assert proc.returncode == 0, proc.stderr
    shutil.rmtree(copy / "parts")
    with Ensemble(out / "ensemble.h5") as a, Ensemble(copy / "ensemble.h5") as b:
        assert not b.spins_dataset.is_virtual and b.spin_storage == storage
        np.testing.assert_array_equal(a.spins[()], b.spins[()])
    with _opened(copy / "ensemble.h5") as ds:
        assert ds["spins"].dims[:3] == ("temperature", "chain", "sample")
        np.testing.assert_array_equal(ds["temperature"].values, TEMPERATURES)


# -- compact spins ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(3, 16), (5, 10), (7,), (2, 3, 9)])
def test_pack_unpack_round_trip_exactly(shape):
    s = np.random.default_rng(0).integers(0, 2, size=(4, *shape), dtype=np.int8) * 2 - 1
    p = spin_storage.pack(s)
    assert p.dtype == np.uint8 and p.shape == (4, *shape[:-1], -(-shape[-1] // 8))
    np.testing.assert_array_equal(p, np.packbits(s > 0, axis=-1))           # the documented layout
    out = spin_storage.unpack(p, shape[-1])
    assert out.dtype == np.int8
    np.testing.assert_array_equal(out, s)
    assert spin_storage.pack(np.ones(8, np.int8))[0] == 255 and spin_storage.pack(-np.ones(8, np.int8))[0] == 0


def test_packed_view_indexes_like_int8(tmp_path):
    s = np.random.default_rng(1).integers(0, 2, size=(2, 3, 7, 4, 12), dtype=np.int8) * 2 - 1
    write_ensemble(tmp_path / "e.h5", [1.0, 2.0], s, storage="bits")
    with Ensemble(tmp_path / "e.h5") as e:
        assert e.spins.shape == s.shape and e.spins.dtype == np.int8 and e.spins_dataset.shape[-1] == 2
        for key in [(), (1,), (1, 2, slice(2, 5)), (0, 1, [0, 3, 6]), (1, 0, 3, 2), (1, 0, 3, slice(None), 5),
                    (Ellipsis, slice(1, 9)), (0, Ellipsis)]:
            np.testing.assert_array_equal(e.spins[key], s[key])
        np.testing.assert_array_equal(np.concatenate(list(e.iter_spins(1, batch=3))), s[1].reshape(-1, 4, 12))


def test_bits_files_take_an_eighth_of_the_disk(tmp_path):
    s = np.random.default_rng(2).integers(0, 2, size=(1, 1, 64, 64, 64), dtype=np.int8) * 2 - 1
    sizes = {}
    for st in spin_storage.STORAGES:
        with h5py.File(write_ensemble(tmp_path / f"{st}.h5", [1.0], s, storage=st), "r") as f:
            sizes[st] = f["spins"].id.get_storage_size()
    assert sizes["int8"] == s.nbytes and sizes["bits"] == s.nbytes // 8, sizes


def test_spin_storage_key_is_validated_and_defaults_from_L(tmp_path):
    base = '[job]\nname = "s"\nseed = 1\n[simulate]\nmodel = "ising2d"\ntemperatures = [2.0]\n'
    assert loads(base + "L = 16\n").simulate.spin_storage == "int8"
    assert loads(base + "L = 256\n").simulate.spin_storage == "bits"
    assert loads(base + 'L = 512\nspin_storage = "int8"\n').simulate.spin_storage == "int8"
    with pytest.raises(ConfigError) as e:
        loads(base + 'L = 16\nspin_storage = "int4"\n')
    assert e.value.key == "simulate.spin_storage"
    job = write_job(tmp_path, "bad", simulate='[simulate]\nmodel = "ising2d"\nL = 8\ntemperatures = [2.0]\n'
                                               'spin_storage = "packed"\n')
    one_line_exit_2(cli("simulate", job), "simulate.spin_storage", "packed")
    assert not (tmp_path / "bad").exists()


def test_bits_ensemble_repr_and_lazy_view_unpack(tmp_path):
    # the notebook API over a "bits" file: the repr names the storage, to_xarray gives the int8 spins back
    import hpc_rg
    from hpc_rg.io.ensemble import write_ensemble
    rng = np.random.default_rng(3)
    s = np.where(rng.random((2, 2, 5, 8, 16)) < 0.5, 1, -1).astype(np.int8)
    path = write_ensemble(tmp_path / "ensemble.h5", [2.0, 2.5], s, attrs={"model": "ising2d"}, storage="bits")
    with hpc_rg.open_ensemble(path) as ens:
        text = repr(ens)
        assert "spins bits" in text and "8 x 16" in text
        view = ens.to_xarray()
        assert view.spins.dtype == np.int8 and view.spins.dims[-2:] == ("y", "x")
        np.testing.assert_array_equal(view.spins.isel(temperature=1).values, s[1])

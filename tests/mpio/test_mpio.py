"""The collective (driver="mpio") ensemble writer against the virtual-dataset one.

Needs h5py built against parallel HDF5 (the .venv-mpio of tests/mpio/setup_venv.sh); skipped otherwise.
Run by tests/mpio/run.sh under `mpiexec.mpich -n 2` and `-n 3`: with 3 ranks and 2 units one rank has
nothing to write and must still join every collective call (h5py #965/#1108 hang otherwise).
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from hpc_rg.io import mpio

pytestmark = pytest.mark.skipif(not mpio.available(), reason="h5py without MPI (build .venv-mpio: "
                                                             "tests/mpio/setup_venv.sh)")

JOB = ('[job]\nname = "m"\nseed = 3\nout = "{out}"\n[simulate]\nmodel = "ising2d"\nL = 8\n'
       'temperatures = [2.0, 2.3, 2.6]\nchains = 3\nthermalize = 50\nsamples = 20\nthin = 3\n'
       'replica_exchange = true\nexchange_every = 4\ncheckpoint_every = 40\n')


def shared_folder(w) -> Path:
    return Path(w.bcast(tempfile.mkdtemp(prefix="hpc_rg_mpio_") if w.is_root else None))


def remove(w, folder: Path) -> None:
    w.barrier()
    if w.is_root:
        shutil.rmtree(folder, ignore_errors=True)


# -- a synthetic ensemble cut into parts by runs on several numbers of ranks --------------------------------
SHAPE = (4, 6)
SAMPLE_CUTS = (0, 3, 5, 7)          # part c holds samples SAMPLE_CUTS[c] .. SAMPLE_CUTS[c+1]-1
MEASURE_CUTS = (0, 4, 9, 11)
WRITER_RANKS = (2, 3, 1)            # part c was written by a run on this many ranks (resumes in between)


def expected_ensemble(n_ladders: int, n_t: int, width: int, seed: int = 11) -> dict:
    rng = np.random.default_rng(seed)
    n_c, n_s, n_m = n_ladders * width, SAMPLE_CUTS[-1], MEASURE_CUTS[-1]
    return {"spins": (2 * rng.integers(0, 2, size=(n_t, n_c, n_s, *SHAPE)) - 1).astype(np.int8),
            "energy": rng.normal(size=(n_t, n_c, n_s)), "magnetization": rng.normal(size=(n_t, n_c, n_s)),
            "timeseries/energy": rng.normal(size=(n_t, n_c, n_m)),
            "timeseries/magnetization": rng.normal(size=(n_t, n_c, n_m)),
            "exchange/slot_history": rng.integers(0, n_t, size=(9, n_ladders, n_t)).astype(np.int16)}


def write_parts(folder: Path, exp: dict, n_ladders: int, n_t: int, width: int, storage: str = "int8") -> None:
    """Part files as the driver writes them: units dealt like the driver deals them, one file per writer
    rank and part, the exchange history in rank 0's files."""
    from hpc_rg.io.parts import PartWriter, part_path
    from hpc_rg.parallel import deal
    folder.mkdir(parents=True)
    history_cuts = (0, 2, 7, 9)
    for c, n_ranks in enumerate(WRITER_RANKS):
        j0, j1 = SAMPLE_CUTS[c], SAMPLE_CUTS[c + 1]
        k0, k1 = MEASURE_CUTS[c], MEASURE_CUTS[c + 1]
        for r in range(n_ranks):
            units = [(u // n_t, u % n_t) for u in deal(n_ladders * n_t, n_ranks, r)]
            if not units:
                continue        # PartWriter cannot make a file without units (see the report)
            w = PartWriter(part_path(folder, c, r), units, width, SHAPE, j0, k0, storage=storage)
            for g, t in reversed(units):        # any delivery order
                cs = slice(g * width, (g + 1) * width)
                w.add_timeseries((g, t), k0, exp["timeseries/energy"][t, cs, k0:k1],
                                 exp["timeseries/magnetization"][t, cs, k0:k1])
                for j in range(j0, j1):
                    w.add_sample((g, t), j, exp["spins"][t, cs, j], exp["energy"][t, cs, j],
                                 exp["magnetization"][t, cs, j])
            if r == 0:
                w.add_history(exp["exchange/slot_history"][history_cuts[c]:history_cuts[c + 1]])
            w.close()


def args(folder: Path, n_ladders: int, n_t: int, width: int) -> dict:
    exchange = {"acceptance": np.linspace(0.2, 0.4, max(n_t - 1, 1)), "attempts": np.int64(17)}
    attrs = {"model": "ising2d", "seed": 11, "job_toml": "[job]\nname = 'x'\n" * 40, "J": 1.0,
             "replica_exchange": True}
    return dict(parts_folder=folder / "parts", n_parts=len(WRITER_RANKS), temperatures=np.linspace(1.5, 3.0, n_t),
                n_chains=n_ladders * width, lattice_shape=SHAPE, n_samples=SAMPLE_CUTS[-1],
                n_measurements=MEASURE_CUTS[-1], attrs=attrs, exchange=exchange)


def assert_same_file(a_path: Path, b_path: Path) -> None:
    """Every dataset and attribute equal (values, shapes, dtypes); /spins virtual in `a`, real in `b`."""
    import h5py
    with h5py.File(a_path, "r") as a, h5py.File(b_path, "r") as b:
        def names(f):
            out = []
            f.visititems(lambda n, o: out.append(n) if isinstance(o, h5py.Dataset) else None)
            return sorted(out)
        assert names(a) == names(b)
        for n in names(a):
            x, y = a[n], b[n]
            assert x.dtype == y.dtype and x.shape == y.shape, n
            assert np.array_equal(x[()], y[()], equal_nan=x.dtype.kind == "f"), n
        assert sorted(a.attrs) == sorted(b.attrs)
        for k in a.attrs:
            assert np.array_equal(np.asarray(a.attrs[k]), np.asarray(b.attrs[k])), k
        assert not b["spins"].is_virtual


@pytest.mark.mpi(min_size=2)
@pytest.mark.parametrize("n_ladders,n_t,width", [(1, 1, 1), (1, 2, 1), (3, 3, 2)])
def test_collective_and_virtual_paths_write_equal_ensembles(n_ladders, n_t, width):
    """Same datasets from both paths, and equal to what went into the parts. (1, 1) and (1, 2) leave ranks
    with no unit at 2 and 3 ranks; the parts were written on 2, 3 and 1 ranks, so most ranks copy units out
    of files named after other ranks."""
    import h5py
    from hpc_rg.io.parts import assemble
    from hpc_rg.parallel import world
    w = world()
    folder = shared_folder(w)
    exp = expected_ensemble(n_ladders, n_t, width)
    a = args(folder, n_ladders, n_t, width)
    if w.is_root:
        write_parts(folder / "parts", exp, n_ladders, n_t, width)
        (folder / "vds").mkdir()
        assemble(folder / "vds", **a)
        (folder / "mpio").mkdir()
    w.barrier()
    # only rank 0's attrs and exchange count
    mine = a if w.is_root else dict(a, attrs=None, exchange=None)
    path = mpio.assemble_collective(w, folder / "mpio", **mine)
    assert path == folder / "mpio" / "ensemble.h5" and path.exists()
    assert not (folder / "mpio" / "ensemble.h5.tmp").exists()
    if w.is_root:
        assert_same_file(folder / "vds" / "ensemble.h5", path)
        with h5py.File(path, "r") as f:
            for name, want in exp.items():
                assert np.array_equal(f[name][()], want), name
            assert f["spins"].chunks[:2] == (1, 1)
    remove(w, folder)


@pytest.mark.mpi(min_size=2)
def test_bits_spins_are_copied_packed_and_labelled():
    """simulate.spin_storage = "bits": the collective copy moves the packed bytes as they are (never unpacked),
    equal to the virtual assembler's file, reads back as the int8 spins, and carries the same dimension
    scales (made by the same collective calls on every rank)."""
    import h5py
    from hpc_rg.io.ensemble import Ensemble
    from hpc_rg.io.parts import assemble
    from hpc_rg.parallel import world
    w = world()
    folder = shared_folder(w)
    exp = expected_ensemble(3, 3, 2, seed=7)
    a = dict(args(folder, 3, 3, 2), storage="bits")
    if w.is_root:
        write_parts(folder / "parts", exp, 3, 3, 2, storage="bits")
        (folder / "vds").mkdir()
        assemble(folder / "vds", **a)
        (folder / "mpio").mkdir()
    w.barrier()
    path = mpio.assemble_collective(w, folder / "mpio", **(a if w.is_root else dict(a, attrs=None, exchange=None)))
    if w.is_root:
        assert_same_file(folder / "vds" / "ensemble.h5", path)
        with h5py.File(path, "r") as f:
            assert f["spins"].dtype == np.uint8 and f["spins"].shape[-1] == 1
            assert [f["spins"].dims[k][0].name for k in range(5)] == \
                ["/temperature", "/chain", "/sample", "/y", "/x_packed"]
            np.testing.assert_array_equal(f["temperature"][()], a["temperatures"])
        with Ensemble(path) as e:
            assert np.array_equal(e.spins[()], exp["spins"])
    remove(w, folder)


@pytest.mark.mpi(min_size=2)
@pytest.mark.parametrize("compression", ["gzip", "lzf"])
def test_compressed_spins_are_written_collectively(compression):
    """Compressed datasets can only be written collectively; a rank with no unit (1 ladder x 2 temperatures
    at 3 ranks, 1 x 1 at 2) joins with an empty selection."""
    import h5py
    from hpc_rg.parallel import world
    w = world()
    folder = shared_folder(w)
    n_t = 2 if w.size > 2 else 1
    exp = expected_ensemble(1, n_t, 1, seed=5)
    a = args(folder, 1, n_t, 1)
    if w.is_root:
        write_parts(folder / "parts", exp, 1, n_t, 1)
    w.barrier()
    path = mpio.assemble_collective(w, folder, **a, compression=compression)
    if w.is_root:
        with h5py.File(path, "r") as f:
            assert f["spins"].compression == compression
            assert np.array_equal(f["spins"][()], exp["spins"])
            assert np.array_equal(f["energy"][()], exp["energy"])
    remove(w, folder)


@pytest.mark.mpi(min_size=2)
def test_missing_part_fails_every_rank_without_a_file():
    from hpc_rg.parallel import world
    w = world()
    folder = shared_folder(w)
    exp = expected_ensemble(3, 3, 2)
    a = args(folder, 3, 3, 2)
    if w.is_root:
        write_parts(folder / "parts", exp, 3, 3, 2)
        (folder / "parts" / "p00001.r0001.h5").unlink()
    w.barrier()
    with pytest.raises(RuntimeError, match="parts incomplete"):
        mpio.assemble_collective(w, folder, **a)
    w.barrier()
    assert not (folder / "ensemble.h5").exists() and not (folder / "ensemble.h5.tmp").exists()
    remove(w, folder)


@pytest.mark.mpi(min_size=2)
def test_a_read_error_on_one_rank_fails_every_rank_instead_of_hanging(monkeypatch):
    from hpc_rg.parallel import world
    w = world()
    folder = shared_folder(w)
    exp = expected_ensemble(3, 3, 2)
    a = args(folder, 3, 3, 2)
    if w.is_root:
        write_parts(folder / "parts", exp, 3, 3, 2)
    w.barrier()
    if w.rank == w.size - 1:
        calls = {"n": 0}
        real = mpio._read_block

        def flaky(*args, **kw):
            calls["n"] += 1
            if calls["n"] == 2:
                raise OSError("injected read failure")
            return real(*args, **kw)
        monkeypatch.setattr(mpio, "_read_block", flaky)
        with pytest.raises(OSError, match="injected"):
            mpio.assemble_collective(w, folder, **a)
    else:
        with pytest.raises(RuntimeError, match="another rank failed"):
            mpio.assemble_collective(w, folder, **a)
    w.barrier()
    assert not (folder / "ensemble.h5").exists() and not (folder / "ensemble.h5.tmp").exists()
    remove(w, folder)


@pytest.mark.mpi(min_size=2)
def test_driver_run_assembled_collectively_equals_the_virtual_ensemble():
    """End to end: the chain driver on all ranks (checkpoints cut the run into 3 parts, replica exchange
    moves data between ranks) writes its ensemble; the collective writer over the same parts, with the
    driver's arguments, must write the same datasets and attributes."""
    import h5py
    from hpc_rg.config import loads
    from hpc_rg.io.labels import is_scale
    from hpc_rg.io.parts import list_parts
    from hpc_rg.mc.stage import run as run_simulate
    from hpc_rg.parallel import world
    w = world()
    folder = shared_folder(w)
    cfg = loads(JOB.format(out=folder / "par"), folder / "job.toml")
    assert run_simulate(cfg, w) == 0
    driver_file = folder / "par" / "ensemble.h5"
    a = None
    if w.is_root:
        (folder / "col").mkdir()
        with h5py.File(driver_file, "r") as f:      # the driver's own arguments, recovered from its file
            attrs = {k: v for k, v in f.attrs.items() if k not in ("format", "lattice_shape")}
            exchange = {k: v[()] for k, v in f["exchange"].items()           # not its dimension scales
                        if k != "slot_history" and not is_scale(v)}
            a = dict(n_parts=len({p for p, _, _ in list_parts(folder / "par" / "parts")}),
                     temperatures=f["temperatures"][()], n_chains=f["spins"].shape[1],
                     lattice_shape=tuple(int(x) for x in f.attrs["lattice_shape"]), n_samples=f["spins"].shape[2],
                     n_measurements=f["timeseries/energy"].shape[2], attrs=attrs, exchange=exchange)
    a = w.bcast(a)
    assert a["n_parts"] == 3 and a["n_samples"] == 20
    path = mpio.assemble_collective(w, folder / "col", folder / "par" / "parts", **a)
    if w.is_root:
        assert_same_file(driver_file, path)
    remove(w, folder)


@pytest.mark.mpi(min_size=2)
def test_the_two_assemblers_take_one_layout_and_write_equal_files():
    """`CollectiveAssembler` and `VirtualAssembler`, siblings on one base, given the same `EnsembleLayout`
    (rank 0's attributes and exchange statistics only) write the same datasets and attributes."""
    from hpc_rg.io.layout import EnsembleLayout
    from hpc_rg.io.virtual_assembler import VirtualAssembler
    from hpc_rg.parallel import world
    w = world()
    folder = shared_folder(w)
    exp = expected_ensemble(3, 3, 2, seed=13)
    a = args(folder, 3, 3, 2)
    layout = EnsembleLayout(a["temperatures"], a["n_chains"], a["lattice_shape"], a["n_samples"],
                            a["n_measurements"], attrs=a["attrs"] if w.is_root else {},
                            exchange=a["exchange"] if w.is_root else None)
    if w.is_root:
        write_parts(folder / "parts", exp, 3, 3, 2)
        (folder / "vds").mkdir()
        VirtualAssembler(folder / "vds", folder / "parts", a["n_parts"], layout).write()
        (folder / "col").mkdir()
    w.barrier()
    # uncompressed: with gzip the bare netCDF dimensions (/chain, /sample: no values by convention) hold
    # whatever bytes parallel HDF5 allocated, on main too, so they could not be compared
    path = mpio.CollectiveAssembler(w, folder / "col", folder / "parts", a["n_parts"], layout).write()
    assert path == folder / "col" / "ensemble.h5"
    if w.is_root:
        assert_same_file(folder / "vds" / "ensemble.h5", path)
    remove(w, folder)

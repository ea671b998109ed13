"""The two ensemble assemblers share one base (`hpc_rg.io.assembler`): one inventory of the parts and one
coverage check, so the virtual writer refuses exactly the incomplete parts the collective one refuses."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from hpc_rg.io.assembler import EnsembleAssembler, check_coverage
from hpc_rg.io.layout import EnsembleLayout
from hpc_rg.io.part_files import inventory
from hpc_rg.io.parts import PartWriter, assemble, part_path
from hpc_rg.io.virtual_assembler import VirtualAssembler

SHAPE = (4, 4)


def _parts(folder, n_t=2, n_j=3, k_cuts=((0, 0, 2), (1, 0, 2))):
    """Two units (ladder 0, slots 0 and 1) of one chain, in one part per unit; unit u's time series covers
    points k_cuts[u][1] .. k_cuts[u][2]-1."""
    rng = np.random.default_rng(1)
    folder.mkdir()
    for u, k0, k1 in k_cuts:
        w = PartWriter(part_path(folder, 0, u), [(0, u)], 1, SHAPE, 0, k0)
        for j in range(n_j):
            w.add_sample((0, u), j, np.ones((1, *SHAPE), np.int8), rng.normal(size=1), rng.normal(size=1))
        w.add_timeseries((0, u), k0, rng.normal(size=(1, k1 - k0)), rng.normal(size=(1, k1 - k0)))
        w.close()
    return EnsembleLayout([2.0, 2.5][:n_t], 1, SHAPE, n_j, 2, attrs={"model": "ising2d"})


def test_layout_is_normalised_and_checked():
    lay = EnsembleLayout(np.array([2.0, 2.5]), np.int64(3), [4, 4], 5, storage="bits")
    assert lay.temperatures == (2.0, 2.5) and lay.lattice_shape == (4, 4) and type(lay.n_chains) is int
    assert lay.spins_shape == (2, 3, 5, 4, 4) and lay.stored_spins_shape == (2, 3, 5, 4, 1)
    assert lay.spin_fill == 0 and EnsembleLayout([1.0], 1, (4,), 1).spin_fill == -128
    with pytest.raises(ValueError, match="spin storage 'int4'"):
        EnsembleLayout([1.0], 1, (4,), 1, storage="int4")


def test_complete_parts_assemble_and_the_positional_form_writes_the_same(tmp_path):
    layout = _parts(tmp_path / "parts")
    a = VirtualAssembler(tmp_path, tmp_path / "parts", 1, layout).write()
    with h5py.File(a, "r") as f:
        assert f.attrs["format"] == "hpc_rg.ensemble/1" and f.attrs["model"] == "ising2d"
        assert f["spins"].is_virtual and not np.isnan(f["timeseries/energy"][()]).any()
        first = {k: f[k][()] for k in ("energy", "magnetization", "timeseries/energy", "spins")}
    (tmp_path / "b").mkdir()
    b = assemble(tmp_path / "b", tmp_path / "parts", 1, layout.temperatures, 1, SHAPE, 3, 2, {"model": "ising2d"})
    with h5py.File(b, "r") as f:
        for k, v in first.items():
            assert np.array_equal(f[k][()], v), k


def test_a_missing_sample_is_refused_naming_it(tmp_path):
    layout = _parts(tmp_path / "parts")
    (tmp_path / "parts" / "p00000.r0001.h5").unlink()
    with pytest.raises(RuntimeError, match="no part holds sample 0 of temperature 1, chain 0 \\(parts incomplete"):
        VirtualAssembler(tmp_path, tmp_path / "parts", 1, layout).write()
    assert not list(tmp_path.glob("ensemble.h5*"))


def test_a_time_series_hole_is_refused_by_the_virtual_writer_too(tmp_path):
    """Unit 1's part holds measurement 1 only: the collective writer always refused this; the virtual one
    used to write NaN in its place (one coverage check now serves both)."""
    layout = _parts(tmp_path / "parts", k_cuts=((0, 0, 2), (1, 1, 2)))
    with pytest.raises(RuntimeError, match="no part holds measurement 0 of temperature 1, chain 0"):
        VirtualAssembler(tmp_path, tmp_path / "parts", 1, layout).write()
    assert not list(tmp_path.glob("ensemble.h5*"))


def test_parts_stored_otherwise_are_refused_before_anything_is_written(tmp_path):
    layout = _parts(tmp_path / "parts")
    bits = EnsembleLayout(layout.temperatures, 1, SHAPE, 3, 2, storage="bits")
    with pytest.raises(RuntimeError, match="spins stored as 'int8', the ensemble is assembled as 'bits'"):
        check_coverage(inventory(tmp_path / "parts", 1), bits, tmp_path / "parts")
    with pytest.raises(RuntimeError, match="assembled as 'bits'"):
        EnsembleAssembler(tmp_path, tmp_path / "parts", 1, bits).plan()

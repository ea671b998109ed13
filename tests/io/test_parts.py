"""Part files hold their data and little else: whole chunks plus an exact-size tail per array (HDF5
allocates a whole chunk for a partly filled one; with one ~1 MiB chunk per unit and part, parts took ~20x
their data). And however a part is laid out, both ensemble writers read it the same."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from tests.io.helpers import cli, main_in_process, one_line_exit_2, write_job

SIM = """[simulate]
model = "ising2d"
L = 64
temperatures = [2.0, 2.6]
algorithm = "metropolis"
chains = 4
thermalize = 10
samples = 90
thin = 2
checkpoint_every = 50
"""


def on_disk(paths) -> int:
    return sum(Path(p).stat().st_size for p in paths)


def test_parts_and_ensemble_within_1_1x_of_the_spins(tmp_path):
    """A checkpointed run (4 parts, 22-23 samples per unit and part): parts + ensemble.h5 <= 1.1 x spins."""
    proc = cli("simulate", write_job(tmp_path, "sizes", simulate=SIM), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    run = tmp_path / "sizes"
    parts = sorted((run / "parts").glob("p*.h5"))
    assert len(parts) == 4
    with h5py.File(run / "ensemble.h5", "r") as f:
        spin_bytes = f["spins"].size
        assert spin_bytes == 2 * 4 * 90 * 64 * 64
    ratio = on_disk(parts + [run / "ensemble.h5"]) / spin_bytes
    assert ratio <= 1.1, f"parts + ensemble.h5 take {ratio:.2f}x the spin bytes"
    # one part missing among four (each read through two datasets): named once, counted as one file
    parts[2].rename(parts[2].with_suffix(".moved"))
    one_line_exit_2(main_in_process("info", run / "ensemble.h5"), f"1 of its 4 parts are missing or damaged: "
                    f"parts/{parts[2].name} (missing); ")


def _expected(n_units, width, n_j, n_k, shape, seed=3):
    rng = np.random.default_rng(seed)
    return {"spins": (2 * rng.integers(0, 2, size=(n_units, width, n_j, *shape)) - 1).astype(np.int8),
            "energy": rng.normal(size=(n_units, width, n_j)), "magnetization": rng.normal(size=(n_units, width, n_j)),
            "ts_energy": rng.normal(size=(n_units, width, n_k)),
            "ts_magnetization": rng.normal(size=(n_units, width, n_k))}


@pytest.mark.parametrize("n_j,shape", [(0, (4, 4)), (5, (4, 4)), (300, (8, 8)), (700, (16, 16))],
                         ids=["empty", "tail only", "chunks and tail", "whole chunks"])
def test_a_part_reads_back_whatever_its_layout(tmp_path, n_j, shape):
    """Rows delivered in any order and in pieces come back in order: from whole chunks and the tail."""
    from hpc_rg.io.parts import PartWriter, read_rows, segments
    units, width, n_k = [(0, 0), (0, 1), (1, 0)], 2, 2 * n_j + 3
    exp = _expected(len(units), width, n_j, n_k, shape)
    w = PartWriter(tmp_path / "p.h5", units, width, shape, j0=10, k0=20)
    w.spins.per = 256 if shape == (16, 16) else w.spins.per      # 700 = 2 whole chunks of 256 + tail
    for j in range(n_j):
        for u in reversed(range(len(units))):
            w.add_sample(units[u], 10 + j, exp["spins"][u, :, j], exp["energy"][u, :, j], exp["magnetization"][u, :, j])
        if j % 97 == 0:
            w.flush()
    for u in range(len(units)):
        for a, b in ((0, 1), (1, n_k // 2), (n_k // 2, n_k)):
            w.add_timeseries(units[u], 20 + a, exp["ts_energy"][u, :, a:b], exp["ts_magnetization"][u, :, a:b])
    w.close()
    with h5py.File(tmp_path / "p.h5", "r") as f:
        assert (f.attrs["n_samples"], f.attrs["n_measurements"]) == (n_j, n_k)
        for name, n in (("spins", n_j), ("energy", n_j), ("magnetization", n_j), ("ts_energy", n_k),
                        ("ts_magnetization", n_k)):
            got = read_rows(f, name, n) if n else np.zeros_like(exp[name])
            assert np.array_equal(got, exp[name]), name
            for d, _, _ in segments(f, name, n):
                ds = f[d]
                allocated = ds.id.get_storage_size()
                assert allocated <= ds.size * ds.dtype.itemsize, f"{d}: {allocated} bytes for {ds.size} values"


def test_vds_and_collective_readers_agree_on_parts(tmp_path):
    """Parts of a run resumed on other rank counts: the virtual ensemble and the collective writer's reader
    (hpc_rg.io.mpio, run serially here: its MPI path needs parallel HDF5) give the same arrays."""
    from hpc_rg.io import mpio
    from hpc_rg.io.assembler import EnsembleAssembler
    from hpc_rg.io.layout import EnsembleLayout
    from hpc_rg.io.parts import PartWriter, assemble, part_path
    shape, width, n_t, n_ladders = (4, 6), 1, 3, 2
    cuts, mcuts = (0, 3, 5, 9), (0, 4, 9, 13)
    rng = np.random.default_rng(5)
    n_c = n_ladders * width
    exp = {"spins": (2 * rng.integers(0, 2, size=(n_t, n_c, cuts[-1], *shape)) - 1).astype(np.int8),
           "energy": rng.normal(size=(n_t, n_c, cuts[-1])), "magnetization": rng.normal(size=(n_t, n_c, cuts[-1])),
           "timeseries/energy": rng.normal(size=(n_t, n_c, mcuts[-1])),
           "timeseries/magnetization": rng.normal(size=(n_t, n_c, mcuts[-1]))}
    folder = tmp_path / "parts"
    folder.mkdir()
    all_units = [(g, t) for g in range(n_ladders) for t in range(n_t)]
    for c, n_ranks in enumerate((2, 3, 1)):
        for r in range(n_ranks):
            units = all_units[r::n_ranks]
            w = PartWriter(part_path(folder, c, r), units, width, shape, cuts[c], mcuts[c])
            w.spins.per = 2                           # whole chunks and a tail in the longer parts
            for g, t in units:
                w.add_timeseries((g, t), mcuts[c], exp["timeseries/energy"][t, g:g + 1, mcuts[c]:mcuts[c + 1]],
                                 exp["timeseries/magnetization"][t, g:g + 1, mcuts[c]:mcuts[c + 1]])
                for j in range(cuts[c], cuts[c + 1]):
                    w.add_sample((g, t), j, exp["spins"][t, g:g + 1, j], exp["energy"][t, g:g + 1, j],
                                 exp["magnetization"][t, g:g + 1, j])
            w.close()
    path = assemble(tmp_path, folder, 3, np.linspace(1, 2, n_t), n_c, shape, cuts[-1], mcuts[-1], {"model": "x"})
    with h5py.File(path, "r") as f:
        for name, want in exp.items():
            assert np.array_equal(f[name][()], want), name
    layout = EnsembleLayout(np.linspace(1, 2, n_t), n_c, shape, cuts[-1], mcuts[-1])
    inv = EnsembleAssembler(tmp_path, folder, 3, layout).plan()        # the inventory, checked to cover
    assert mpio.common_width(inv, folder, n_c) == width
    holders = {}
    for p in inv.parts:
        for i, u in enumerate(p.units):
            holders.setdefault(u, []).append((p, i))
    cache = mpio._PartCache()
    try:
        for name, want in exp.items():
            n = want.shape[2]
            for (g, t), hold in holders.items():
                got = mpio._read_block(cache, hold, name, 0, n, width, shape if name == "spins" else (),
                                       np.int8 if name == "spins" else np.float64)
                assert np.array_equal(got[0], want[t, g * width:(g + 1) * width]), (name, g, t)
    finally:
        cache.close()

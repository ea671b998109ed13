"""An ensemble.h5 whose /spins is a virtual dataset over parts/ must never be read without its parts
(HDF5 reads the fill value there, silently): every reader refuses it with exit 2 naming the missing part and
the fix, and `hpc-rg assemble RUN --copy` makes a self-contained file that reads bit for bit the same."""
from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest

from tests.io.helpers import (assert_same_contents, cli, h5_contents, main_in_process, one_line_exit_2,
                                    write_job)

TRAIN = '[train.rbm]\nkind = "rbm"\nensemble = "ENS"\nn_hidden = 4\nepochs = 1\nbatch_size = 8\nais_runs = 0\n'


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished simulate run (virtual /spins over parts/p00000.r0000.h5)."""
    folder = tmp_path_factory.mktemp("sources")
    proc = cli("simulate", write_job(folder), cwd=folder)
    assert proc.returncode == 0, proc.stderr
    out = folder / "iso"
    with h5py.File(out / "ensemble.h5", "r") as f:
        assert f["spins"].is_virtual
    return out


def _alone(run, dest):
    """ensemble.h5 copied without its parts/ (what users do to take results off a cluster)."""
    dest.mkdir(parents=True)
    shutil.copy2(run / "ensemble.h5", dest / "ensemble.h5")
    return dest / "ensemble.h5"


def test_fill_value_is_not_a_spin(run):
    from hpc_rg.io.ensemble import SPIN_FILL
    with h5py.File(run / "ensemble.h5", "r") as f:
        assert f["spins"].fillvalue == SPIN_FILL
        assert SPIN_FILL not in (-1, 1)
        assert set(np.unique(f["spins"][()])) == {-1, 1}


def test_info_refuses_an_ensemble_without_its_parts(run, tmp_path):
    ens = _alone(run, tmp_path / "moved")
    line = one_line_exit_2(main_in_process("info", ens), "parts/p00000.r0000.h5", "missing", "hpc-rg assemble RUN --copy")
    assert str(ens) in line


def test_reader_refuses_it_in_process(run, tmp_path):
    from hpc_rg.schema import ConfigError
    from hpc_rg.io.ensemble import open_ensemble
    ens = _alone(run, tmp_path / "moved")
    with pytest.raises(ConfigError, match="p00000.r0000.h5"):
        open_ensemble(ens)


def test_train_refuses_an_ensemble_without_its_parts(run, tmp_path):
    ens = _alone(run, tmp_path / "moved")
    job = tmp_path / "t.toml"
    job.write_text(f'[job]\nname = "t"\nseed = 1\nout = "t"\n\n' + TRAIN.replace("ENS", str(ens)))
    one_line_exit_2(cli("train", job, cwd=tmp_path), "p00000.r0000.h5", "hpc-rg assemble")
    assert not list((tmp_path / "t").glob("models/*.pt"))


def test_analyze_refuses_an_ensemble_without_its_parts(run, tmp_path):
    _alone(run, tmp_path / "moved")
    job = tmp_path / "a.toml"
    job.write_text('[job]\nname = "a"\nseed = 1\nout = "moved"\n\n[analyze.observables]\n')
    one_line_exit_2(cli("analyze", job, cwd=tmp_path), "p00000.r0000.h5", "hpc-rg assemble")
    assert not (tmp_path / "moved" / "results.h5").exists()


@pytest.mark.parametrize("compression", [None, "lzf", "gzip"])
def test_assemble_copy_reads_bit_identically_alone(run, tmp_path, compression):
    from hpc_rg.io.ensemble import SPIN_FILL, open_ensemble
    reference = h5_contents(run / "ensemble.h5")          # read through the parts
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    args = ["assemble", copy, "--copy"] + (["--compression", compression] if compression else [])
    proc = cli(*args)
    assert proc.returncode == 0, proc.stderr
    assert not list(copy.glob("*.tmp"))
    ens = _alone(copy, tmp_path / "moved")                 # now it travels alone
    with h5py.File(ens, "r") as f:
        assert not f["spins"].is_virtual
        assert f["spins"].compression == compression
        assert f["spins"].fillvalue == SPIN_FILL
    assert_same_contents(reference, h5_contents(ens))
    assert main_in_process("info", ens).returncode == 0
    with open_ensemble(ens) as e:
        assert e.n_samples == 24


def test_assemble_copy_refuses_an_ensemble_without_its_parts(run, tmp_path):
    ens = _alone(run, tmp_path / "moved")
    before = ens.read_bytes()
    one_line_exit_2(main_in_process("assemble", ens.parent, "--copy"), "p00000.r0000.h5", "missing")
    assert ens.read_bytes() == before
    assert sorted(p.name for p in ens.parent.iterdir()) == ["ensemble.h5"]

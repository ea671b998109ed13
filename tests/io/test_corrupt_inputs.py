"""Corrupt, truncated or wrong input files given to info, status, report, train and analyze: exit 2 with
one line naming the file and what is wrong; nothing "succeeds" on a garbled part; nothing is written."""
from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import pytest

from tests.io.helpers import cli, main_in_process, one_line_exit_2, write_job


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run folder with ensemble.h5 (virtual, over one part) and results.h5."""
    folder = tmp_path_factory.mktemp("corrupt")
    job = write_job(folder, "iso", extra="[analyze.observables]\n")
    for stage in ("simulate", "analyze"):
        proc = cli(stage, job, cwd=folder)
        assert proc.returncode == 0, proc.stderr
    return folder / "iso"


@pytest.fixture
def copy(run, tmp_path):
    dest = tmp_path / "iso"
    shutil.copytree(run, dest)
    return dest


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])


def garble_start(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[:64] = b"\x00garbage" * 8
    path.write_bytes(bytes(data))


def part(run: Path) -> Path:
    return next((run / "parts").glob("p*.h5"))


# -- info -------------------------------------------------------------------------------------------------
def test_info_on_a_folder_or_a_text_file(tmp_path, run):
    one_line_exit_2(main_in_process("info", run), f"{run}: is a folder")
    text = run / "job.toml"
    one_line_exit_2(main_in_process("info", text), f"{text}: is not an .h5 file")
    one_line_exit_2(main_in_process("info", tmp_path / "nope.h5"), "nope.h5: not found")


@pytest.mark.parametrize("damage", ["truncated", "garbled start"])
def test_info_on_a_damaged_ensemble_or_results_file(copy, damage):
    for name in ("ensemble.h5", "results.h5"):
        path = copy / name
        truncate(path) if damage == "truncated" else garble_start(path)
        one_line_exit_2(main_in_process("info", path), str(path))


def test_info_on_an_ensemble_without_spins_or_of_another_format(copy):
    path = copy / "ensemble.h5"
    with h5py.File(path, "a") as f:
        del f["spins"]
    one_line_exit_2(main_in_process("info", path), str(path), "has no /spins")
    with h5py.File(path, "a") as f:
        f.attrs["format"] = "something/9"
    from hpc_rg.schema import ConfigError
    from hpc_rg.io.ensemble import open_ensemble
    with pytest.raises(ConfigError, match="expected 'hpc_rg.ensemble/1'"):     # every reader opens it so
        open_ensemble(path)
    assert "something/9" in main_in_process("info", path).stdout      # info lists any HDF5 file, saying its format


@pytest.mark.parametrize("damage,why", [("truncated", "damaged"), ("garbled start", "not HDF5"),
                                        ("no spins", "has no /spins"), ("never closed", "never closed")])
def test_a_garbled_part_fails_info_and_analyze(copy, damage, why):
    """info and the observables read only the small arrays copied into ensemble.h5; they must still not
    succeed over a part that cannot be read."""
    p = part(copy)
    if damage == "truncated":
        truncate(p)
    elif damage == "garbled start":
        garble_start(p)
    else:
        with h5py.File(p, "a") as f:
            if damage == "no spins":
                for name in [n for n in f if n.startswith("spins")]:
                    del f[name]
            else:
                del f.attrs["n_samples"]
    rel = str(p.relative_to(copy))
    one_line_exit_2(main_in_process("info", copy / "ensemble.h5"), rel, why)
    (copy / "results.h5").unlink()
    job = write_job(copy.parent, "iso", extra="[analyze.observables]\n")
    one_line_exit_2(cli("analyze", job, cwd=copy.parent), rel, why)
    assert not (copy / "results.h5").exists()


# -- report and status ------------------------------------------------------------------------------------
def test_report_on_a_missing_folder(tmp_path):
    one_line_exit_2(main_in_process("report", tmp_path / "nope"), "nope: a run folder (not found)")


@pytest.mark.parametrize("name", ["ensemble.h5", "results.h5"])
def test_report_on_a_damaged_file(copy, name):
    truncate(copy / name)
    one_line_exit_2(main_in_process("report", copy), name)
    assert not (copy / "report.md").exists() and not (copy / "report.html").exists()


def test_report_on_a_results_file_of_another_format(copy):
    with h5py.File(copy / "results.h5", "a") as f:
        f.attrs["format"] = "else/1"
    one_line_exit_2(main_in_process("report", copy), "results.h5", "not a results file")


def test_status_on_a_damaged_ensemble_is_not_complete(copy):
    truncate(part(copy))
    proc = main_in_process("status", copy)
    one_line_exit_2(proc, "ensemble.h5", part(copy).name)
    assert "simulate: complete" not in proc.stdout and "DAMAGED" in proc.stdout
    (copy / "ensemble.h5").unlink()
    proc = main_in_process("status", copy)
    assert proc.returncode == 0 and "simulate: complete" not in proc.stdout
    assert "ensemble.h5 not written" in proc.stdout


def test_status_on_a_file(run):
    one_line_exit_2(main_in_process("status", run / "job.toml"), "a run folder (is a file)")


# -- an ensemble path that is a folder ----------------------------------------------------------------------
def test_train_on_an_ensemble_path_that_is_a_folder(tmp_path):
    (tmp_path / "ens.h5").mkdir()
    job = tmp_path / "t.toml"
    job.write_text('[job]\nname = "t"\nseed = 1\nout = "t"\n\n[train.rbm]\nkind = "rbm"\nensemble = "ens.h5"\n'
                   'n_hidden = 4\nepochs = 1\nbatch_size = 8\n')
    one_line_exit_2(cli("train", job, cwd=tmp_path), "ens.h5", "is a folder")
    assert not list((tmp_path / "t").glob("models/*.pt"))


def test_analyze_on_an_ensemble_that_is_a_folder(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "ensemble.h5").mkdir()
    job = tmp_path / "a.toml"
    job.write_text('[job]\nname = "a"\nseed = 1\nout = "a"\n\n[analyze.observables]\n')
    one_line_exit_2(cli("analyze", job, cwd=tmp_path), "ensemble.h5: is a folder")
    assert not (tmp_path / "a" / "results.h5").exists()

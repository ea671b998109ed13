"""`info`/`status --json` (one JSON object on stdout, the keys their help lists, the exit codes of the text
form), every bad path refused in one line with exit 2, and the τ_int warning (emcee's rule: a chain should
hold at least 50 autocorrelation times) in `info`, the observables result and its log."""
from __future__ import annotations

import io
import json
import subprocess
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import h5py
import numpy as np
import pytest

from hpc_rg import summary
from hpc_rg.cli import main
from hpc_rg.cli_parser import build_parser
from hpc_rg.reduce.stats import chains_too_short, min_samples, tau_int_warning

JOB = """[job]
name = "{name}"
seed = 5
out = "run"
stages = ["simulate", "analyze"]

[simulate]
model = "ising2d"
L = 4
temperatures = {temperatures}
algorithm = "metropolis"
thermalize = 20
samples = {samples}
thin = {measure_every}
measure_every = {measure_every}

[analyze.observables]
"""


def cli(*args) -> subprocess.CompletedProcess:
    """`hpc-rg ARGS` through cli.main in this process (these commands only read files, or fail early)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main([str(a) for a in args])
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


def run_job(folder: Path, name: str, samples: int, temperatures, measure_every: int = 1) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "job.toml").write_text(JOB.format(name=name, samples=samples, temperatures=list(temperatures),
                                                measure_every=measure_every))
    proc = cli("run", folder / "job.toml", "-q")
    assert proc.returncode == 0, proc.stderr
    return folder / "run"


@pytest.fixture(scope="module")
def short(tmp_path_factory):
    """40 samples per chain near T_c: fewer than 50 τ, as the issue's example."""
    return run_job(tmp_path_factory.mktemp("short"), "short", 40, [2.2, 2.3], measure_every=10)


@pytest.fixture(scope="module")
def long(tmp_path_factory):
    """3000 samples far above T_c (τ_int ≈ 0.5-1): plenty."""
    return run_job(tmp_path_factory.mktemp("long"), "long", 3000, [6.0, 8.0], measure_every=10)


# -- τ_int warning ------------------------------------------------------------------------------------------

def test_emcee_rule_in_this_convention():
    # emcee's τ = 1 + 2Σρ = 2 τ_int here; it asks for 50 of them
    assert min_samples(0.5) == 50 and min_samples(3.0) == 300
    assert chains_too_short(40, 0.5) and not chains_too_short(50, 0.5)
    assert tau_int_warning(5000, [0.5, 20.0], [2.0, 2.3]) == ""
    note = tau_int_warning(40, [0.5, 3.0], [2.0, 2.3], "E")
    assert "chains of 40 samples" in note and "T = 2, 2.3" in note and "at least 300 samples" in note


def test_short_chains_warned_in_the_observables_result_and_log(short, long):
    with h5py.File(short / "results.h5", "r") as f:
        note = f["observables"].attrs["tau_int_warning"]
    assert "chains of 40 samples hold fewer than 50 autocorrelation times" in note, note
    with h5py.File(long / "results.h5", "r") as f:
        assert f["observables"].attrs["tau_int_warning"] == ""


def test_analyze_logs_the_warning(short, caplog):
    proc = cli("analyze", short.parent / "job.toml", "--force")
    assert proc.returncode == 0, proc.stderr
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(w.startswith("analyze observables: chains of 40 samples hold fewer than 50") for w in warned), warned


def test_info_warns_on_short_chains(short, long):
    text = cli("info", short / "ensemble.h5").stdout
    assert "warning: chains of 40 measurements hold fewer than 50 autocorrelation times" in text, text
    assert "(chains too short)" in text
    results = cli("info", short / "results.h5").stdout
    assert "warning: observables: chains of 40 samples" in results, results
    assert "warning" not in cli("info", long / "ensemble.h5").stdout
    assert "warning" not in cli("info", long / "results.h5").stdout


# -- --json -------------------------------------------------------------------------------------------------

def test_info_json_ensemble(short):
    proc = cli("info", short / "ensemble.h5", "--json")
    assert proc.returncode == 0, proc.stderr
    rec = json.loads(proc.stdout)                       # the whole of stdout is one JSON object
    assert tuple(rec) == summary.INFO_KEYS["ensemble"]
    assert rec["kind"] == "ensemble" and rec["lattice_shape"] == [4, 4] and rec["n_samples"] == 40
    assert [row["T"] for row in rec["temperatures"]] == [2.2, 2.3]
    for row in rec["temperatures"]:
        assert tuple(row) == summary.INFO_KEYS["per_temperature"]
        assert row["too_short"] is True and row["series_length"] == 40
    assert len(rec["warnings"]) == 1 and "50 autocorrelation times" in rec["warnings"][0]


def test_info_json_results(short, long):
    rec = json.loads(cli("info", short / "results.h5", "--json").stdout)
    assert tuple(rec) == summary.INFO_KEYS["other"] and rec["kind"] == "results"
    names = {item["name"] for item in rec["items"]}
    assert "observables/" in names and "observables/energy" in names
    assert rec["warnings"] and rec["warnings"][0].startswith("observables: chains of 40 samples")
    assert json.loads(cli("info", long / "results.h5", "--json").stdout)["warnings"] == []


def test_status_json(short):
    proc = cli("status", short, "--json")
    assert proc.returncode == 0, proc.stderr
    rec = json.loads(proc.stdout)
    assert tuple(rec) == summary.STATUS_KEYS and rec["kind"] == "run"
    assert rec["job"] == {"name": "short", "seed": 5, "stages": ["simulate", "analyze"]}
    assert tuple(rec["simulate"]) == summary.SIMULATE_KEYS and rec["simulate"]["state"] == "complete"
    assert set(rec["files"]) == {"ensemble.h5", "results.h5"} and rec["problem"] is None


def test_status_json_of_a_damaged_run_keeps_exit_2(short, tmp_path):
    import shutil
    run = tmp_path / "run"
    shutil.copytree(short, run)
    data = bytearray((run / "ensemble.h5").read_bytes())
    (run / "ensemble.h5").write_bytes(bytes(data[: len(data) // 3]))       # truncated
    text, js = cli("status", run), cli("status", run, "--json")
    assert text.returncode == js.returncode == 2
    rec = json.loads(js.stdout)
    assert rec["files"]["ensemble.h5"]["damaged"] is True and rec["problem"]
    assert js.stderr.count("\n") == 1 and "Traceback" not in js.stderr


def test_json_stdout_stays_json_with_verbose_logging(short):
    proc = cli("-v", "info", short / "ensemble.h5", "--json", "--progress-every", "0.001")
    json.loads(proc.stdout)


def test_the_help_lists_the_json_keys():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    info_help, status_help = sub.choices["info"].format_help(), sub.choices["status"].format_help()
    flat = lambda text: " ".join(text.split())      # noqa: E731
    for key in summary.INFO_KEYS["ensemble"] + summary.INFO_KEYS["per_temperature"] + summary.INFO_KEYS["other"]:
        assert key in flat(info_help), key
    for key in summary.STATUS_KEYS + summary.SIMULATE_KEYS:
        assert key in flat(status_help), key


# -- bad paths ----------------------------------------------------------------------------------------------

@pytest.fixture()
def bad(tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "text.h5").write_text("not HDF5\n")
    return tmp_path


@pytest.mark.parametrize("command", [["info"], ["info", "--json"], ["status"], ["status", "--json"], ["report"],
                                     ["assemble", "--copy"], ["check"], ["simulate"]])
@pytest.mark.parametrize("what", ["folder", "text.h5", "missing"])
def test_every_bad_path_is_one_line_exit_2(bad, command, what):
    before = sorted(p.name for p in bad.rglob("*"))
    proc = cli(*command, bad / what)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("hpc-rg: error: "), proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert sorted(p.name for p in bad.rglob("*")) == before          # nothing written


def test_report_refuses_a_folder_no_stage_wrote_to(bad):
    proc = cli("report", bad / "folder")
    assert proc.returncode == 2 and "no stage has run here" in proc.stderr
    assert list((bad / "folder").iterdir()) == []


def test_a_results_file_with_a_non_string_warning_attribute_is_shown(tmp_path):
    # an untrusted file: whatever the attribute holds, info prints it and does not crash
    with h5py.File(tmp_path / "r.h5", "w") as f:
        f.attrs["format"] = "hpc_rg.results/1"
        f.create_group("observables").attrs["tau_int_warning"] = np.int64(3)
    proc = cli("info", tmp_path / "r.h5", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["warnings"] == ["observables: 3"]


def test_status_json_of_a_sweep(tmp_path):
    text = JOB.format(name="sw", samples=10, temperatures=[2.5], measure_every=1).replace(
        'stages = ["simulate", "analyze"]', 'stages = ["simulate"]')
    (tmp_path / "sw.toml").write_text(text + '\n[sweep]\n"simulate.L" = [4, 6]\n')
    assert cli("run", tmp_path / "sw.toml", "--point", "1", "-q").returncode == 0
    proc = cli("status", tmp_path / "run", "--json")
    assert proc.returncode == 0, proc.stderr
    rec = json.loads(proc.stdout)
    assert rec["kind"] == "sweep" and rec["name"] == "sw" and rec["keys"] == ["simulate.L"]
    assert [p["values"] for p in rec["points"]] == [{"simulate.L": 4}, {"simulate.L": 6}]
    assert [p["simulate"] for p in rec["points"]] == ["-", "complete"]
    assert [p["started"] for p in rec["points"]] == [False, True]

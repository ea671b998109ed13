"""docs/examples/ run as written: a small run of the quickstart's kinds of reductions is simulated and
analysed, then each example script runs on it in a subprocess (as a user would run it)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples"
JOB = """[job]
name = "explore"
seed = 11
out = "run"

[simulate]
model = "ising2d"
L = 8
temperatures = [2.0, 2.269185, 2.6]
algorithm = "metropolis"
chains = 2
thermalize = 50
samples = 40
thin = 2

[analyze.observables]

[analyze.mutual_information]
block = 2
n_boot = 10
"""


def env() -> dict:
    return dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg",
                PYTHONPATH=os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("explore")
    (folder / "job.toml").write_text(JOB)
    proc = subprocess.run([sys.executable, "-m", "hpc_rg", "-q", "run", "job.toml"], cwd=folder, env=env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return folder / "run"


def test_explore_run_plots_and_tabulates(run_folder, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(EXAMPLES / "explore_run.py"), str(run_folder), str(out)],
                          env=env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    figure = out / "abs_m.png"
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and figure.stat().st_size > 10_000
    table = (out / "mutual_information.csv").read_text().splitlines()
    assert table[0].split(",")[:2] == ["L", "T"] and "I_blocks" in table[0] and "I_blocks_error" in table[0]
    assert [row.split(",")[:2] for row in table[1:]] == [["8", "2.0"], ["8", "2.269185"], ["8", "2.6"]]
    for row in table[1:]:
        assert all(cell not in ("", "nan") for cell in row.split(",")), row
    assert "<Ensemble" in proc.stdout and "mutual_information  [temperature: 3]" in proc.stdout
    assert f"figure: {figure}" in proc.stdout


def test_explore_run_on_a_run_not_yet_analysed(run_folder, tmp_path):
    """Before: a FileError traceback ("is a folder, not a results file") on a folder with no results.h5."""
    import shutil
    simulated = tmp_path / "simulated"
    shutil.copytree(run_folder, simulated)                 # with its parts/, which /spins reads through
    (simulated / "results.h5").unlink()
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(EXAMPLES / "explore_run.py"), str(simulated), str(out)],
                          env=env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "has no results.h5 yet (run its analyze stage)" in proc.stdout and "no results to tabulate" in proc.stdout
    assert (out / "abs_m.png").stat().st_size > 10_000 and not list(out.glob("*.csv"))

"""The example of docs/python-api.md runs as written on a run folder of the quickstart's layout."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from hpc_rg.io.ensemble import write_ensemble
from hpc_rg.reduce.registry import Result
from hpc_rg.reduce.results import write_results

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "python-api.md"
JOB = """[job]
name = "quickstart"
seed = 2024
out = "."

[simulate]
model = "ising2d"
L = 4
temperatures = [2.0, 2.5]
chains = 2
samples = 50
"""


def _run_folder(folder: Path) -> None:
    run = folder / "runs" / "quickstart"
    run.mkdir(parents=True)
    (run / "job.toml").write_text(JOB)
    rng = np.random.default_rng(1)
    spins = np.where(rng.random((2, 2, 50, 4, 4)) < 0.8, 1, -1).astype(np.int8)
    energy = -np.mean(spins * np.roll(spins, 1, -1) + spins * np.roll(spins, 1, -2), axis=(-2, -1))
    write_ensemble(run / "ensemble.h5", [2.0, 2.5], spins, energy=energy,
                   attrs={"model": "ising2d", "seed": 2024})
    res = Result()
    res.put("energy", [-1.5, -1.0], [0.01, 0.02])
    res.axes["temperatures"] = np.array([2.0, 2.5])
    write_results(run / "results.h5", {"observables": res}, JOB)


def test_the_example_runs(tmp_path, monkeypatch, capsys):
    # every python block of the page, in order (the figure block draws into an Agg axes)
    code = "\n".join(re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), re.S))
    import matplotlib
    matplotlib.use("Agg")
    _run_folder(tmp_path)
    monkeypatch.chdir(tmp_path)
    space = {"__name__": "docs_example"}
    exec(compile(code, str(PAGE), "exec"), space)
    assert space["ax"].lines or space["ax"].containers, "the figure block drew nothing"
    out = capsys.readouterr().out
    assert "quickstart ising2d (2.0, 2.5)" in out
    assert re.search(r"T = 2\.0000: E/N = -?\d\.\d{4} \+- \d\.\d{4} \(tau_int \d+\.\d\), exact -\d\.\d{4}", out)
    assert "<Ensemble runs/quickstart/ensemble.h5\n  model         ising2d\n  lattice       4 x 4" in out
    assert "<Results runs/quickstart/results.h5: 1 reduction(s)" in out
    assert "observables ['energy'] ['temperature']" in out
    assert "-1.5 0.01" in out
    assert re.search(r"T\s+value\s+error\n\s*2\.0\s+-1\.5\s+0\.01\n\s*2\.5\s+-1\.0\s+0\.02", out), out


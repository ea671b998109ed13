"""The generic comparator (hpc_rg.report.compare): a toy study TOML against a toy results.h5.

Checked: σ pulls where both sides have errors, within-tolerance where only a tolerance is known, "no error
given" where neither has one; above/below against a quantity of the run; a quantity missing from a reduction
that ran gives a row saying so, a reduction the run did not compute gives no row; axis=value selection; a
bad study file is one ConfigError naming the file and key; the four shipped studies load and name jobs that
exist."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from hpc_rg.report.compare import SHIPPED, STUDIES, load_study, rows
from hpc_rg.reduce.registry import Result
from hpc_rg.reduce.results import write_results
from hpc_rg.schema import ConfigError

ROOT = Path(__file__).resolve().parents[2]

TOY = '''
[study]
title = "Toy & Paper 2026"
jobs = ["toy"]

[[compare]]
quantity = "energy"
ours = "toy/energy[temperatures=2.0]"
value = -1.40
error = 0.03
source = "Table 1"

[[compare]]
quantity = "gap"
ours = "toy/gap"
value = 0.52
tolerance = 0.05
source = "Fig. 2"

[[compare]]
quantity = "exponent without errors"
ours = "toy/exponent"
value = 1.0
source = "p. 3"

[[compare]]
quantity = "signal above its null"
ours = "toy/signal"
rule = "above"
reference = "toy/null"
axis = "layer"
source = "Fig. 3"
note = "the null: shuffled sites"

[[compare]]
quantity = "a quantity this version does not write"
ours = "toy/missing_quantity"
value = 1.0
source = "Fig. 4"

[[compare]]
quantity = "a reduction this job does not run"
ours = "other/anything"
value = 1.0
source = "Fig. 5"

[[compare]]
quantity = "at a temperature the run lacks"
ours = "toy/energy[temperatures=9.0]"
value = 0.0
source = "Fig. 6"
'''


@pytest.fixture()
def run(tmp_path):
    res = Result()
    res.axes["temperatures"] = np.array([1.0, 2.0])
    res.axes["layer"] = np.array([1, 2])
    res.put("energy", [-1.9, -1.30], [0.01, 0.04])
    res.put("gap", 0.55)
    res.put("exponent", 1.2)
    res.put("signal", [0.30, 0.11], [0.01, 0.01])
    res.put("null", [0.10, 0.10], [0.01, 0.01])
    write_results(tmp_path / "results.h5", {"toy": res}, "", 1, "")
    return tmp_path


def _study(tmp_path, text=TOY):
    path = tmp_path / "paper.toml"
    path.write_text(text)
    return load_study(path)


def test_pull_tolerance_no_error_above_and_missing(run, tmp_path):
    by = {r["quantity"]: r for r in rows(_study(tmp_path), run)}
    energy = by["energy"]
    z = abs(-1.30 + 1.40) / math.hypot(0.04, 0.03)             # 2.0σ
    assert energy["pull"] == f"{z:.1f}σ" and "within 4σ" in energy["note"]
    assert energy["ours"] == "-1.300 ± 0.040" and "Table 1" in energy["paper"]
    assert by["gap"]["pull"] == "" and "within the tolerance ±0.05" in by["gap"]["note"]
    assert by["exponent without errors"]["pull"] == "" and "no error given" in by["exponent without errors"]["note"]
    above = [r for q, r in by.items() if q.startswith("signal above its null")]
    assert [r["quantity"] for r in above] == ["signal above its null, layer 1", "signal above its null, layer 2"]
    assert above[0]["pull"] == f"{0.20 / math.hypot(0.01, 0.01):+.1f}σ" and above[0]["note"].startswith("above")
    assert above[1]["note"].startswith("NOT above") and above[1]["note"].endswith("the null: shuffled sites")
    missing = by["a quantity this version does not write"]
    assert missing["ours"] == "(missing)" and "results.h5 has no toy/missing_quantity" in missing["note"]
    assert "a reduction this job does not run" not in by           # the job does not run it: no row
    assert "at a temperature the run lacks" not in by


def test_outside_tolerance_and_beyond_4_sigma(run, tmp_path):
    text = TOY.replace("value = 0.52\ntolerance = 0.05", "value = 0.40\ntolerance = 0.05").replace(
        "value = -1.40\nerror = 0.03", "value = -1.60\nerror = 0.03")
    by = {r["quantity"]: r for r in rows(_study(tmp_path, text), run)}
    assert "outside the tolerance ±0.05" in by["gap"]["note"]
    assert by["energy"]["pull"] == "6.0σ" and "differs by more than 4σ" in by["energy"]["note"]


def test_no_results_says_run_analyze(tmp_path):
    (tmp_path / "run").mkdir()
    r, = rows(_study(tmp_path), tmp_path / "run")
    assert r["quantity"] == "(no results.h5)" and "analyze" in r["note"]


@pytest.mark.parametrize("edit, key", [
    (("rule = \"above\"", "rule = \"greater\""), "compare[3].rule"),
    (("value = 1.0\nsource = \"p. 3\"", "source = \"p. 3\""), "compare[2].value"),
    (("quantity = \"gap\"", "quantitty = \"gap\""), "compare[1].quantitty"),
])
def test_a_bad_study_file_is_one_line_naming_file_and_key(tmp_path, edit, key):
    with pytest.raises(ConfigError) as e:
        _study(tmp_path, TOY.replace(*edit))
    assert key in str(e.value) and "paper.toml" in str(e.value) and "\n" not in str(e.value)


def test_a_missing_study_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="a study file"):
        load_study(tmp_path / "nope.toml")


@pytest.mark.parametrize("name", SHIPPED)
def test_the_shipped_studies_load_and_name_existing_jobs(name):
    study = load_study(STUDIES / name / "paper.toml")
    assert study.claims and study.jobs
    for job in study.jobs:
        assert (ROOT / "jobs" / f"{job}.toml").exists(), job
    assert (STUDIES / name / "README.md").exists()

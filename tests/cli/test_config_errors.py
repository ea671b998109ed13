"""Malformed job files: one line naming the file and the key, exit code 2, nothing written."""
from __future__ import annotations

import pytest

from hpc_rg.cli import main

GOOD = {
    "job": 'name = "t"\nseed = 1\nout = "run"',
    "simulate": 'model = "ising2d"\nL = 8\ntemperatures = [2.0, 2.5]\nalgorithm = "metropolis"\n'
                'chains = 1\nthermalize = 10\nsamples = 5\nthin = 2',
}


def job_text(job=None, simulate=None, extra=""):
    parts = [f"[job]\n{job if job is not None else GOOD['job']}"]
    if simulate is not False:
        parts.append(f"[simulate]\n{simulate if simulate is not None else GOOD['simulate']}")
    return "\n\n".join(parts) + "\n" + extra


def sim_with(**changes):
    lines = dict(line.split(" = ", 1) for line in GOOD["simulate"].splitlines())
    for k, v in changes.items():
        if v is None:
            lines.pop(k, None)
        else:
            lines[k] = v
    return "\n".join(f"{k} = {v}" for k, v in lines.items())


CASES = [
    # (id, job-file text, the key the message must name, a fragment of what is allowed)
    ("misspelt algorithm", job_text(simulate=sim_with(algorithm='"wolf"')), "simulate.algorithm", 'did you mean "wolff"'),
    ("unknown key", job_text(simulate=sim_with(therm='10')), "simulate.therm", "did you mean"),
    ("unknown section", job_text(extra='[simulat]\nL = 3\n'), "simulat", "did you mean"),
    ("negative size", job_text(simulate=sim_with(L="-8")), "simulate.L", ">= 2"),
    ("wrong type", job_text(simulate=sim_with(L='"big"')), "simulate.L", "integer"),
    ("float where int", job_text(simulate=sim_with(samples="5.5")), "simulate.samples", "integer"),
    ("empty ladder", job_text(simulate=sim_with(temperatures="[]")), "simulate.temperatures", "non-empty"),
    ("zero temperature", job_text(simulate=sim_with(temperatures="[0.0, 1.0]")), "simulate.temperatures", "> 0"),
    ("negative temperature", job_text(simulate=sim_with(temperatures="[-1.0, 1.0]")), "simulate.temperatures", "> 0"),
    ("descending ladder", job_text(simulate=sim_with(temperatures="[2.5, 2.0]")), "simulate.temperatures", "ascending"),
    ("range missing num", job_text(simulate=sim_with(temperatures="{start = 1.0, stop = 2.0}")), "simulate.temperatures", "num"),
    ("range bad key", job_text(simulate=sim_with(temperatures="{start = 1.0, stop = 2.0, n = 3}")), "simulate.temperatures.n", "start, stop and num"),
    ("block does not divide L", job_text(simulate=sim_with(L="10", block="3")), "simulate.L", "multiple of simulate.block"),
    ("unknown model", job_text(simulate=sim_with(model='"ising3d"')), "simulate.model", "ising2d"),
    ("algorithm of another model", job_text(simulate=sim_with(algorithm='"fukui_todo"')), "simulate.algorithm", "for model ising2d"),
    ("long-range alpha too small", job_text(simulate=sim_with(model='"longrange2d"', alpha="1.5")), "simulate.alpha", "alpha > d"),
    ("multispin chain count", job_text(simulate=sim_with(algorithm='"multispin"', chains="10")), "simulate.chains", "multiple of 64"),
    ("exchange with one temperature", job_text(simulate=sim_with(temperatures="[2.0]", replica_exchange="true")), "simulate.temperatures", "at least two"),
    ("measure_every not dividing thin", job_text(simulate=sim_with(thin="10", measure_every="3")), "simulate.measure_every", "divisor"),
    ("missing seed", job_text(job='name = "t"'), "job.seed", "missing"),
    ("negative seed", job_text(job='name = "t"\nseed = -4'), "job.seed", ">= 0"),
    ("unknown stage", job_text(job='name = "t"\nseed = 1\nstages = ["simulate", "trian"]'), "job.stages", 'did you mean "train"'),
    ("stage without its table", job_text(job='name = "t"\nseed = 1\nstages = ["simulate", "train"]'), "job.stages", "[train.<name>]"),
    ("bad TOML", "[job\nname = 1", "", "valid TOML"),
    ("compression choice", job_text(simulate=sim_with(compression='"zstd"')), "simulate.compression", "gzip"),
    ("Ly for a chain", job_text(simulate=sim_with(model='"ising1d"', Ly="4")), "simulate.Ly", "no Ly"),
]


@pytest.mark.parametrize("text,key,allowed", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_job_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, text, key, allowed):
    job = tmp_path / "bad.toml"
    job.write_text(text)
    before = sorted(p.name for p in tmp_path.iterdir())
    code = main(["simulate", str(job)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"hpc-rg: error: {job.name}:"), err
    if key:
        assert f" {key} " in lines[0] or f" {key}:" in lines[0] or f" {key} =" in lines[0], err
    assert allowed in lines[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == before     # nothing written


def test_missing_job_file(tmp_path, capsys):
    assert main(["check", str(tmp_path / "nope.toml")]) == 2
    assert "not found" in capsys.readouterr().err


def test_check_prints_resolved_job(tmp_path, capsys):
    job = tmp_path / "good.toml"
    job.write_text(job_text())
    assert main(["check", str(job)]) == 0
    out = capsys.readouterr().out
    assert 'algorithm = "metropolis"' in out and "exchange_every = 10" in out   # defaults filled in
    assert not (tmp_path / "run").exists()


def test_folder_of_another_job_is_refused(tmp_path, capsys):
    job = tmp_path / "a.toml"
    job.write_text(job_text())
    assert main(["simulate", str(job)]) == 0
    ens = (tmp_path / "run" / "ensemble.h5").read_bytes()
    other = tmp_path / "b.toml"
    other.write_text(job_text(simulate=sim_with(L="12")))
    capsys.readouterr()
    assert main(["simulate", str(other)]) == 2
    err = capsys.readouterr().err
    assert "simulate.L differs" in err and "--force" in err
    assert main(["simulate", str(job)]) == 2                      # same job again: must say --resume/--force
    assert "--resume" in capsys.readouterr().err
    assert (tmp_path / "run" / "ensemble.h5").read_bytes() == ens  # nothing overwritten
    assert main(["simulate", str(other), "--force"]) == 0

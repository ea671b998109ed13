"""Malformed job files: one line naming the file and the key, exit code 2, nothing written."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import hpc_rg
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
    # issue #16: names become paths
    ("model name leaving the run folder", job_text(extra='[train."../../x"]\nkind = "rbm"\n'), "train.../../x", "letters, digits"),
    ("model name ..", job_text(extra='[train.".."]\nkind = "rbm"\n'), "train...", "not '.' or '..'"),
    ("model name with a slash", job_text(extra='[train."a/b"]\nkind = "rbm"\n'), "train.a/b", "letters, digits"),
    ("reduction name leaving the run folder", job_text(extra='[analyze."../x"]\n'), "analyze.../x", "letters, digits"),
    ("job name leaving runs/", job_text(job='name = "../../evil"\nseed = 1'), "job.name", "letters, digits"),
    ("job name ..", job_text(job='name = ".."\nseed = 1'), "job.name", "not '.' or '..'"),
    # issue #16: one line, exit 2, nothing written (today: a traceback or a wrong result)
    ("job file not UTF-8", job_text().encode() + b"# caf\xe9\n", "", "UTF-8"),
    ("duplicated stage", job_text(job='name = "t"\nseed = 1\nstages = ["simulate", "simulate"]'), "job.stages", "at most once"),
    ("stages out of order", job_text(job='name = "t"\nseed = 1\nstages = ["analyze", "simulate"]'), "job.stages", "in the order"),
    ("1/T overflows", job_text(simulate=sim_with(temperatures="[1e-320, 1.0]")), "simulate.temperatures", "finite 1/T"),
    ("J/T overflows", job_text(simulate=sim_with(J="1e308", temperatures="[0.5, 1.0]")), "simulate.J", "finite"),
    ("batch larger than the data", job_text(extra='[train.m]\nkind = "rbm"\nbatch_size = 100\n'), "train.m.batch_size", "at most the 9 training"),
    ("batch larger than the data of the selection", job_text(extra='[train.m]\nkind = "rbm"\nbatch_size = 5\nsamples = 2\n'
                                                                  'temperatures = [2.5]\ntest_fraction = 0.0\n'), "train.m.batch_size", "at most the 2 training"),
    ("batch larger than the patches", job_text(extra='[train.c]\nkind = "coarse_cnn"\nn_train = 10\nbatch_size = 50\n'), "train.c.batch_size", "n_train = 10"),
    ("train temperature not in the ladder", job_text(extra='[train.m]\nkind = "rbm"\nbatch_size = 2\ntemperatures = [3.0]\n'), "train.m.temperatures", "temperatures of"),
    ("train ensemble is a folder", job_text(extra='[train.m]\nkind = "rbm"\nbatch_size = 2\nensemble = "."\n'), "train.m.ensemble", "is a folder"),
    ("analyze file is a folder", job_text(extra='[analyze.observables]\nfiles = ["."]\n'), "analyze.observables.files[0]", "is a folder"),
    ("binder crossing without files", job_text(extra='[analyze.binder_crossing]\nn_grid = 20\n'), "analyze.binder_crossing.files", "required"),
    ("decimation_1d on a 2D lattice", job_text(extra='[analyze.decimation_1d]\n'), "analyze.decimation_1d", "1D chain"),
    ("mcrg on a chain", job_text(simulate=sim_with(model='"ising1d"'), extra='[analyze.mcrg]\n'), "analyze.mcrg", "2D lattice"),
    ("block_rg levels beyond L", job_text(extra='[analyze.block_rg]\nlevels = 4\n'), "analyze.block_rg.levels", "at most 2 blockings"),
    ("mcrg levels beyond L", job_text(extra='[analyze.mcrg]\nlevels = 2\n'), "analyze.mcrg.levels", "at most 1 blockings"),
    ("mcrg default levels on a tiny L", job_text(simulate=sim_with(L="4"), extra='[analyze.mcrg]\n'), "analyze.mcrg.levels", "at most 0 blockings"),
    ("decimation steps beyond L", job_text(simulate=sim_with(model='"ising1d"'), extra='[analyze.decimation_1d]\nsteps = 3\n'), "analyze.decimation_1d.steps", "divisible"),
    ("decimation_network on a 2D lattice", job_text(extra='[analyze.decimation_network]\n'), "analyze.decimation_network", "1D chain"),
    ("model reference leaving models/", job_text(extra='[analyze.receptive_fields]\nmodel = "../../x"\n'), "analyze.receptive_fields.model", "letters, digits"),
    ("model list reference leaving models/", job_text(extra='[analyze.learned_coarse_graining]\nmodels = ["a", "../b"]\n'), "analyze.learned_coarse_graining.models[1]", "letters, digits"),
    ("GPU lattice shape", job_text(simulate=sim_with(device='"cuda"', L="12")), "simulate.L", "multiple of 8"),
]


@pytest.mark.parametrize("text,key,allowed", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_job_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, text, key, allowed):
    job = tmp_path / "bad.toml"
    job.write_bytes(text if isinstance(text, bytes) else text.encode())
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


def test_lattice_that_cannot_fit_in_memory_is_refused_by_check(tmp_path, capsys):
    """1e14 spins: refused when the job is read, naming the size per rank and the memory found."""
    job = tmp_path / "huge.toml"
    job.write_text(job_text(simulate=sim_with(L="10000000")))
    assert main(["check", str(job)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("hpc-rg: error: huge.toml: simulate.L = 10000000"), err
    assert "per rank" in err and "this machine has" in err and "TiB" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["huge.toml"]


def test_memory_estimate_per_rank():
    from hpc_rg.config import loads
    from hpc_rg.schema import ConfigError
    from hpc_rg.mc.memory_check import bytes_per_rank, check_memory
    sim = loads(job_text(simulate=sim_with(L="64", chains="2"))).simulate       # 2 T x 2 chains x 4096 sites
    assert bytes_per_rank(sim) == 2 * 4096                    # one replica per rank: spins + one stored sample
    assert bytes_per_rank(sim, ranks=1) == 4 * 2 * 4096
    assert bytes_per_rank(sim, ranks=3) == 2 * 2 * 4096
    check_memory(sim, "j.toml", available=8192)
    with pytest.raises(ConfigError, match="8 KiB per rank"):
        check_memory(sim, "j.toml", available=8191)
    multi = loads(job_text(simulate=sim_with(L="64", chains="64", algorithm='"multispin"'))).simulate
    assert bytes_per_rank(multi) == 4096 * 8 + 64 * 4096      # one 64-bit word per site + 64 unpacked samples


def test_gpu_error_names_the_job_file(tmp_path):
    from hpc_rg.config import loads
    from hpc_rg.schema import ConfigError
    from hpc_rg.mc.gpu_common import gpu_present
    from hpc_rg.mc.gpu_select import gpu_sampler
    if gpu_present():
        pytest.skip("a CUDA device is visible: the request is valid")
    cfg = loads(job_text(simulate=sim_with(device='"cuda"', L="16")), tmp_path / "gpu.toml")
    with pytest.raises(ConfigError) as e:
        gpu_sampler(cfg.simulate, cfg.file)
    assert str(e.value).startswith("gpu.toml: simulate.device")


# ---------------------------------------------------------------------------------------------------------
# Checks that need the ensemble itself (a job that trains on or analyzes an existing run): made by the
# stage before any work, with the real file names; nothing is written.

REPO = Path(hpc_rg.__file__).resolve().parents[1]   # the tree under test (its hpc_rg first on the path)


def _cli(*args, cwd):
    """`hpc-rg ARGS` in a subprocess (as a user runs it; this tree's hpc_rg first on the path)."""
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "hpc_rg", *map(str, args)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def run_2d(tmp_path_factory):
    """An 8x8 ensemble (2 temperatures x 1 chain x 5 samples), made by `hpc-rg simulate`."""
    folder = tmp_path_factory.mktemp("run2d")
    (folder / "sim.toml").write_text(job_text())
    p = _cli("simulate", folder / "sim.toml", cwd=folder)
    assert p.returncode == 0, p.stderr
    return folder / "run"


def _stage_error(tmp_path, run, stage, body):
    job = tmp_path / "stage.toml"
    job.write_text(f'[job]\nname = "t"\nseed = 1\nout = "{run}"\n' + body.replace("RUN", str(run)))
    p = _cli(stage, job, cwd=tmp_path)
    errors = [ln for ln in p.stderr.splitlines() if ln.startswith("hpc-rg: error")]
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
    assert len(errors) == 1 and errors[0].startswith("hpc-rg: error: stage.toml: "), p.stderr
    return errors[0]


@pytest.mark.parametrize("body,key,allowed", [
    ("[analyze.decimation_1d]\n", "analyze.decimation_1d", "1D chain"),
    ("[analyze.block_rg]\nlevels = 4\n", "analyze.block_rg.levels", "at most 2 blockings"),
    ("[analyze.mcrg]\nlevels = 2\n", "analyze.mcrg.levels", "at most 1 blockings"),
    ('[analyze.observables]\nfiles = ["nope.h5"]\n', "analyze.observables.files[0]", "not found"),
    ('[analyze.observables]\n[analyze.binder_crossing]\nfiles = ["RUN/ensemble.h5", "missing.h5"]\n',
     "analyze.binder_crossing.files[1]", "not found"),
], ids=["decimation_1d on 2D", "block_rg levels", "mcrg levels", "missing file", "second file missing"])
def test_analyze_checks_the_ensemble_before_any_reduction(tmp_path, run_2d, body, key, allowed):
    line = _stage_error(tmp_path, run_2d, "analyze", body)
    assert f" {key} " in line and allowed in line, line
    assert not (run_2d / "results.h5").exists() and not (run_2d / "figures").exists()


def test_train_checks_every_model_before_any_trains(tmp_path, run_2d):
    body = ('[train.first]\nkind = "rbm"\nbatch_size = 2\nepochs = 1\n'
            '[train.second]\nkind = "rbm"\nbatch_size = 1000\n')
    line = _stage_error(tmp_path, run_2d, "train", body)
    assert " train.second.batch_size = 1000" in line and "at most the 9 training" in line, line
    assert "ensemble.h5" in line
    assert not (run_2d / "models").exists()

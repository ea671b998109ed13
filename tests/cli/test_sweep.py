"""Sweeps in the job file (hpc_rg.sweep): a [sweep] table of lists expands into one validated job per point,
run in order by `hpc-rg run`, one at a time by `--point K` (a Slurm array task), tabulated by status/report."""
from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from hpc_rg import sweep
from hpc_rg.cli import main
from hpc_rg.schema import ConfigError

ROOT = Path(__file__).resolve().parents[2]
BASE = """[job]
name = "sw"
seed = 11
out = "out"

[simulate]
model = "ising1d"
L = 8
temperatures = [1.0, 2.0]
algorithm = "metropolis"
thermalize = 10
samples = 6
thin = 2
"""
LJ = '[sweep]\n"simulate.L" = [8, 12]\n"simulate.J" = [1.0, 0.5]\n'
SAFE = re.compile(r"[A-Za-z0-9_.=,-]+")


def write(folder: Path, sweep_table: str, base: str = BASE, name: str = "sweep.toml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(base + "\n" + sweep_table)
    return path


def spins(run: Path) -> np.ndarray:
    with h5py.File(run / "ensemble.h5", "r") as f:
        return f["spins"][()]


# ---- expansion -------------------------------------------------------------------------------------------

def test_product_is_every_combination_first_key_slowest(tmp_path):
    s = sweep.load(write(tmp_path, LJ))
    assert s.mode == "product" and s.keys == ("simulate.L", "simulate.J")
    assert [p.name for p in s.points] == ["L=8,J=1.0", "L=8,J=0.5", "L=12,J=1.0", "L=12,J=0.5"]
    assert [(p.cfg.simulate.L, p.cfg.simulate.J) for p in s.points] == [(8, 1.0), (8, 0.5), (12, 1.0), (12, 0.5)]
    for p in s.points:
        assert p.cfg.out == (tmp_path / "out" / p.name).resolve()
        assert p.cfg.simulate.temperatures == (1.0, 2.0)         # the rest of the job is kept
    assert s.out == (tmp_path / "out").resolve()


def test_zip_pairs_the_lists(tmp_path):
    s = sweep.load(write(tmp_path, '[sweep]\nmode = "zip"\n"simulate.L" = [8, 12, 16]\n'
                                   '"simulate.J" = [1.0, 0.5, 0.25]\n'))
    assert [p.name for p in s.points] == ["L=8,J=1.0", "L=12,J=0.5", "L=16,J=0.25"]
    with pytest.raises(ConfigError, match=r"sweep\.simulate\.J = \[1\.0, 0\.5\]: expected 3 values"):
        sweep.load(write(tmp_path, '[sweep]\nmode = "zip"\n"simulate.L" = [8, 12, 16]\n"simulate.J" = [1.0, 0.5]\n'))


def test_dotted_and_quoted_keys_are_the_same(tmp_path):
    quoted = sweep.load(write(tmp_path / "a", LJ))
    dotted = sweep.load(write(tmp_path / "b", "[sweep]\nsimulate.L = [8, 12]\nsimulate.J = [1.0, 0.5]\n"))
    assert [p.name for p in quoted.points] == [p.name for p in dotted.points]
    assert [p.seed for p in quoted.points] == [p.seed for p in dotted.points]


def test_a_job_without_sweep_loads_as_a_plain_config(tmp_path):
    path = tmp_path / "plain.toml"
    path.write_text(BASE)
    from hpc_rg import config
    assert sweep.load(path) == config.load(path)


def test_each_point_is_a_job_file_of_its_own(tmp_path):
    """The point's text (its <out>/job.toml, the ensembles' job_toml) loads as the same point, no [sweep]."""
    from hpc_rg import config
    s = sweep.load(write(tmp_path, LJ + '"train.rbm.epochs" = [2]\n',
                         base=BASE + '\n[train.rbm]\nkind = "rbm"\ntemperatures = [1.0]\nbatch_size = 4\n'
                                     'epochs = 1\n\n[analyze.observables]\n'))
    p = s.points[3]
    assert "[sweep]" not in p.cfg.text
    again = config.loads(p.cfg.text, tmp_path / "sweep.toml")
    assert again.as_dict() == p.cfg.as_dict()
    assert again.train["rbm"].epochs == 2 and again.simulate.J == 0.5 and "observables" in again.analyze


def test_the_toml_writer_round_trips_what_tomllib_reads():
    """Points are written with the job grammar's one TOML writer (schema.toml_value/toml_key): quoted keys,
    control characters, nested tables, dates and special floats come back as they were."""
    import datetime
    from hpc_rg.schema import toml_value, tomllib
    table = {"x": {"simulate.L": [16, 32], "a b": "tab\there\nline \"q\" \\ \x7f", "n": {"inner key": 1.5}},
             "when": datetime.date(2024, 5, 1), "at": datetime.datetime(2024, 5, 1, 12, 30),
             "f": [1e-05, 1e20, float("inf")], "t": True}
    for key, value in table.items():
        assert tomllib.loads(f"v = {toml_value(value)}")["v"] == value, key
    text = sweep.dump_toml({"job": {"name": "a", "seed": 1}, "simulate": {"odd key": "x\ny"}})
    assert tomllib.loads(text)["simulate"]["odd key"] == "x\ny"


# ---- folder names ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value,name", [
    (16, "16"), (-3, "-3"), (2.5, "2.5"), (3.0, "3.0"), (1e-5, "1e-05"), (1e20, "1e20"), (0.1, "0.1"),
    (True, "true"), ("wolff", "wolff"), ("swendsen_wang", "swendsen_wang"), ([1.0, 2.0], "1.0_2.0")])
def test_values_are_formatted_compactly(value, name):
    assert sweep._format_value(value) == name


@pytest.mark.parametrize("value", ["a b/c", "x,y=z", {"start": 1.0, "stop": 2.0, "num": 3},
                                   list(np.linspace(1, 2, 30).tolist()), [], ["a", "b"]])
def test_other_values_get_safe_distinct_names(value):
    name = sweep._format_value(value)
    assert re.fullmatch(r"[A-Za-z0-9_.-]+", name), name
    assert name != sweep._format_value(str(value) + "!")


def test_folder_names_are_safe_and_labels_disambiguate(tmp_path):
    base = BASE + '\n[train.a]\nkind = "rbm"\ntemperatures = [1.0]\nepochs = 1\nbatch_size = 4\n' \
                  '\n[train.b]\nkind = "rbm"\ntemperatures = [1.0]\nepochs = 1\nbatch_size = 4\n'
    s = sweep.load(write(tmp_path, '[sweep]\n"train.a.epochs" = [1, 2]\n"train.b.epochs" = [3]\n'
                                   '"simulate.temperatures" = [[1.0, 2.0], {start = 1.0, stop = 3.0, num = 5}]\n',
                         base=base))
    names = [p.name for p in s.points]
    assert names[0] == "train.a.epochs=1,train.b.epochs=3,temperatures=1.0_2.0"
    assert names[1].startswith("train.a.epochs=1,train.b.epochs=3,temperatures=h")
    assert len(set(names)) == 4 and all(SAFE.fullmatch(n) for n in names)
    assert s.points[1].cfg.simulate.temperatures == (1.0, 1.5, 2.0, 2.5, 3.0)


# ---- validation: every point before any work -----------------------------------------------------------------

def test_a_bad_point_is_one_line_exit_2_and_nothing_written(tmp_path, capsys):
    job = write(tmp_path, '[sweep]\n"simulate.L" = [8, 12, 16, 1]\n')     # point 3 is bad
    assert main(["run", str(job)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert 'sweep.simulate.L = 1: expected a value >= 2 (in sweep point 3, L=1)' in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep.toml"]     # not even point 0 ran
    assert main(["check", str(job)]) == 2


def test_a_problem_of_the_combination_names_the_point(tmp_path, capsys):
    job = write(tmp_path, '[sweep]\n"simulate.L" = [8, 10]\n"simulate.block" = [2, 4]\n')
    assert main(["run", str(job), "--point", "0"]) == 2                     # L=10, block=4 is point 3
    err = capsys.readouterr().err
    assert "sweep.simulate.L = 10: expected a multiple of simulate.block = 4 (in sweep point 3, L=10,block=4)" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("table,key,allowed", [
    ('"simulate.L" = 8', "sweep.simulate.L", "a non-empty list"),
    ('"simulate.L" = []', "sweep.simulate.L", "a non-empty list"),
    ('"simulat.L" = [8]', "sweep.simulat.L", 'did you mean "simulate"'),
    ('"simulate" = [8]', "sweep.simulate", "a dotted job key"),
    ('"train.rbm.epochs" = [1]', "sweep.train.rbm.epochs", "no [train] table"),
    ('"job.out" = ["a", "b"]', "sweep.job.out", "own folder"),
    ('"job.name" = ["a", "b"]', "sweep.job.name", "named after"),
    ('"simulate.L" = [8, 8]', "sweep.simulate.L", "distinct values"),
    ('mode = "cartesian"\n"simulate.L" = [8]', "sweep.mode", "product, zip"),
    ('mode = "zip"', "sweep", "at least one job key"),
    ('"simulate.Lx" = [8]', "sweep.simulate.Lx", "known key"),
    ('"simulate.algorithm" = ["metropolis", "wolf"]', "sweep.simulate.algorithm",
     'for model ising1d (did you mean "wolff"?; in sweep point 1, algorithm=wolf)'),
])
def test_bad_sweep_tables(tmp_path, table, key, allowed):
    with pytest.raises(ConfigError) as e:
        sweep.load(write(tmp_path, "[sweep]\n" + table + "\n"))
    assert e.value.key == key and allowed in str(e.value), str(e.value)


def test_point_out_of_range_and_point_on_a_plain_job(tmp_path, capsys):
    job = write(tmp_path, LJ)
    assert main(["run", str(job), "--point", "4"]) == 2
    assert "--point = 4: expected 0 to 3 (the sweep has 4 points)" in capsys.readouterr().err
    plain = tmp_path / "plain.toml"
    plain.write_text(BASE)
    assert main(["run", str(plain), "--point", "0"]) == 2
    assert "a job file with a [sweep] table" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# ---- seeds ---------------------------------------------------------------------------------------------------

def test_seeds_differ_per_point_and_follow_the_point_not_its_position(tmp_path):
    a = sweep.load(write(tmp_path / "a", LJ))
    seeds = {p.name: p.seed for p in a.points}
    assert len(set(seeds.values())) == len(seeds)
    assert all(0 <= s < 2 ** 63 and s != 11 for s in seeds.values())
    assert {p.name: p.seed for p in sweep.load(write(tmp_path / "a", LJ)).points} == seeds      # stable
    # another order, another value added, zip instead of product: the same points keep their seeds
    b = sweep.load(write(tmp_path / "b", '[sweep]\n"simulate.L" = [16, 12, 8]\n"simulate.J" = [0.5, 1.0, 2.0]\n'))
    c = sweep.load(write(tmp_path / "c", '[sweep]\nmode = "zip"\n"simulate.L" = [12]\n"simulate.J" = [0.5]\n'))
    assert {p.name: p.seed for p in b.points if p.name in seeds} == seeds
    assert c.points[0].seed == seeds["L=12,J=0.5"]
    # the sweep's seed enters; a pinned value guards the derivation (changing it changes every sweep's data)
    other = sweep.load(write(tmp_path / "d", LJ, base=BASE.replace("seed = 11", "seed = 12")))
    assert not set(p.seed for p in other.points) & set(seeds.values())
    assert sweep.point_seed(11, {"simulate.L": 8, "simulate.J": 1.0}) == seeds["L=8,J=1.0"]
    assert sweep.point_seed(0, {"simulate.L": 16}) == sweep.point_seed(0, {"simulate.L": 16})
    assert sweep.point_seed(0, {"simulate.L": 16}) == 1606093414577774303


def test_a_swept_job_seed_is_used_as_written(tmp_path):
    s = sweep.load(write(tmp_path, '[sweep]\n"job.seed" = [1, 2, 3]\n'))
    assert [p.seed for p in s.points] == [1, 2, 3] and [p.name for p in s.points] == ["seed=1", "seed=2", "seed=3"]


# ---- running ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def whole_sweep(tmp_path_factory):
    """A 2-point sweep run whole with `hpc-rg run`: the same physics at both points, only the seeds differ."""
    folder = tmp_path_factory.mktemp("whole")
    job = write(folder, '[sweep]\n"simulate.checkpoint_seconds" = [600.0, 601.0]\n"simulate.L" = [8]\n'
                        '"simulate.thin" = [2]\n')
    assert main(["run", str(job), "-q"]) == 0
    return job, sweep.load(job)


def test_run_runs_every_point_in_its_folder(whole_sweep):
    job, s = whole_sweep
    assert len(s.points) == 2
    for p in s.points:
        assert p.cfg.out.is_dir() and (p.cfg.out / "ensemble.h5").exists()
        with h5py.File(p.cfg.out / "ensemble.h5", "r") as f:
            assert int(f.attrs["seed"]) == p.seed
            assert "[sweep]" not in f.attrs["job_toml"]
    index = json.loads((s.out / "sweep.json").read_text())
    assert [q["folder"] for q in index["points"]] == [p.name for p in s.points]
    assert [q["seed"] for q in index["points"]] == [p.seed for p in s.points]
    # same physics, different seeds: different samples
    assert not np.array_equal(spins(s.points[0].cfg.out), spins(s.points[1].cfg.out))


def test_point_k_runs_exactly_that_point_and_equals_the_whole_run(whole_sweep, tmp_path):
    job, s = whole_sweep
    alone = tmp_path / "alone"
    alone.mkdir()
    copy = shutil.copy(job, alone / job.name)
    assert main(["run", str(copy), "--point", "1", "-q"]) == 0
    out = alone / "out"
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint_seconds=601.0,L=8,thin=2", "sweep.json"]
    assert np.array_equal(spins(out / s.points[1].name), spins(s.points[1].cfg.out))
    # the index lists every point before any runs: status shows the others as not started
    assert main(["status", str(out)]) == 0


def test_status_and_report_tabulate_every_point(whole_sweep, tmp_path, capsys):
    job, s = whole_sweep
    assert main(["status", str(s.out)]) == 0
    text = capsys.readouterr().out
    for p in s.points:
        assert re.search(rf"^\s+{p.index}\s+{re.escape(p.name)}\s+complete", text, re.M), text
    assert "2 of 2 points simulated" in text
    assert main(["report", str(s.out)]) == 0
    md = (s.out / "report.md").read_text()
    assert (s.out / "report.html").exists()
    for p in s.points:
        assert f"`{p.name}`" in md and str(p.seed) in md
        assert f"[report]({p.name}/report.md)" in md and (p.cfg.out / "report.md").exists()
        rows = re.findall(rf"^\| `{re.escape(p.name)}` \| (\S+) \|", md, re.M)   # observables: one per T
        assert rows == ["1", "2"], md
    # a partial sweep: the points not yet run are listed as such
    partial = tmp_path / "partial"
    partial.mkdir()
    assert main(["run", str(shutil.copy(job, partial / job.name)), "--point", "0", "-q"]) == 0
    capsys.readouterr()
    assert main(["status", str(partial / "out")]) == 0
    text = capsys.readouterr().out
    assert re.search(r"^\s+1\s+\S+\s+not started", text, re.M) and "1 of 2 points simulated" in text


def test_a_rerun_is_refused_before_any_point_runs_and_resume_completes_it(tmp_path, capsys):
    job = write(tmp_path, LJ)
    assert main(["run", str(job), "--point", "2", "-q"]) == 0
    assert main(["run", str(job)]) == 2                     # point 2 holds an ensemble: refused up front
    assert "pass --resume" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["L=12,J=1.0", "sweep.json"]
    before = spins(tmp_path / "out" / "L=12,J=1.0")
    assert main(["run", str(job), "--resume", "-q"]) == 0   # the others run, the finished point is kept
    assert all((p.cfg.out / "ensemble.h5").exists() for p in sweep.load(job).points)
    assert np.array_equal(spins(tmp_path / "out" / "L=12,J=1.0"), before)


def test_check_lists_the_points_and_explains_one(tmp_path, capsys):
    job = write(tmp_path, LJ)
    assert main(["check", str(job)]) == 0
    text = capsys.readouterr().out
    assert "valid sweep of 4 points" in text and "sbatch --array=0-3 slurm/sweep.sbatch" in text
    for name in ("L=8,J=1.0", "L=8,J=0.5", "L=12,J=1.0", "L=12,J=0.5"):
        assert name in text
    assert main(["check", "--explain", str(job), "--point", "2"]) == 0
    explained = capsys.readouterr().out
    from hpc_rg.schema import tomllib
    table = tomllib.loads(explained)
    assert table["simulate"]["L"] == 12 and table["simulate"]["J"] == 1.0 and "sweep" not in table
    assert main(["check", "--explain", str(job)]) == 0          # the list as comments, then point 0: TOML
    assert tomllib.loads(capsys.readouterr().out)["simulate"]["L"] == 8
    assert not (tmp_path / "out").exists()


def test_the_example_sweep_is_valid():
    s = sweep.load(ROOT / "jobs" / "sweeps" / "example.toml")
    assert len(s.points) == 6 and s.points[0].name == "L=16,J=1.0"


# ---- slurm/sweep.sbatch, without Slurm: srun and squeue stand-ins -----------------------------------------------

def _fake_slurm(tmp_path: Path) -> dict:
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    scripts = {
        "srun": '#!/bin/bash\nwhile [[ $1 == --* ]]; do shift; done\nexec "$@"\n',   # drop srun's options
        "squeue": "#!/bin/bash\nexit 1\n",
        "hpc-rg": f'#!/bin/bash\nexec "{sys.executable}" -m hpc_rg "$@"\n',
    }
    for name, text in scripts.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod((bin_dir / name).stat().st_mode | stat.S_IXUSR)
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "activate").write_text("")
    return dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", HPC_RG_VENV=str(venv),
                SLURM_JOB_ID="4242", OMP_NUM_THREADS="1",
                PYTHONPATH=os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))


def test_sweep_sbatch_runs_the_array_tasks_point(tmp_path):
    env = _fake_slurm(tmp_path)
    job = write(tmp_path, LJ)
    proc = subprocess.run(["bash", str(ROOT / "slurm" / "sweep.sbatch"), str(job)], cwd=tmp_path, timeout=300,
                          env=dict(env, SLURM_ARRAY_TASK_ID="2"), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "--point 2" in proc.stdout
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["L=12,J=1.0", "sweep.json"]
    assert (out / "L=12,J=1.0" / "ensemble.h5").exists()


def test_sweep_sbatch_keeps_its_one_file_per_task_mode(tmp_path):
    env = _fake_slurm(tmp_path)
    jobs = []
    for L in (8, 10):
        path = tmp_path / f"L{L}.toml"
        path.write_text(BASE.replace("L = 8", f"L = {L}").replace('out = "out"', f'out = "L{L}"'))
        jobs.append(path)
    proc = subprocess.run(["bash", str(ROOT / "slurm" / "sweep.sbatch"), *map(str, jobs)], cwd=tmp_path,
                          timeout=300, env=dict(env, SLURM_ARRAY_TASK_ID="1"), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "L10" / "ensemble.h5").exists() and not (tmp_path / "L8").exists()


# ---- under MPI: `pytest --only-mpi` with mpiexec -n 2 / -n 4 -------------------------------------------------------

@pytest.mark.mpi(min_size=2)
def test_a_sweep_on_many_ranks_equals_the_serial_points():
    import dataclasses
    import tempfile

    from hpc_rg.mc.stage import run as run_simulate
    from hpc_rg.parallel import World, world
    w = world()
    folder = Path(w.bcast(tempfile.mkdtemp(prefix="hpc_rg_sweep_mpi_") if w.is_root else None))
    job = folder / "sweep.toml"
    if w.is_root:
        write(folder, LJ, base=BASE.replace("thermalize = 10", "thermalize = 10\nchains = 3"))
    w.barrier()
    assert main(["run", str(job), "-q"]) == 0
    bad = folder / "bad.toml"
    if w.is_root:
        bad.write_text(BASE + '\n[sweep]\n"simulate.L" = [8, 1]\n')
    w.barrier()
    assert main(["run", str(bad)]) == 2                  # every rank: the same error, no hang
    if w.is_root:
        for p in sweep.load(job).points:
            cfg = dataclasses.replace(p.cfg, job=dataclasses.replace(p.cfg.job, out=str(folder / "serial" / p.name)))
            assert run_simulate(cfg, World(None, 0, 1)) == 0
            assert np.array_equal(spins(p.cfg.out), spins(cfg.out)), p.name
        shutil.rmtree(folder)
    w.barrier()

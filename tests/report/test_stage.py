"""The report stage (hpc_rg.report.stage.run) reads files only: on a run folder with trained autoencoders and
a paper comparison (`[report] paper = "seed003"`) it imports no torch and opens no model file, and its
comparison table holds the numbers the autoencoder_quality reduction stored. `[report] paper` and `study`
are validated with one line each."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hpc_rg.config import ConfigError, loads

JOB = '''
[job]
name = "tiny_autoencoder"
seed = 5
out = "run"
stages = ["simulate", "train", "analyze"]

[simulate]
model = "ising2d"
L = 8
temperatures = [2.269185314213022]
algorithm = "wolff"
chains = 2
thermalize = 20
samples = 40
thin = 1
replica_exchange = false

[train.large]
kind = "autoencoder"
layers = [64, 16, 4]
l1 = 5e-4
batch_size = 20
epochs = 2
optimizer = "adam"
lr = 1e-2
test_fraction = 0.1

[analyze.observables]
n_blocks = 4

[analyze.autoencoder_quality]

[report]
paper = "seed003"
'''

# run in a fresh interpreter: torch must not be imported, and no models/*.pt opened (an audit hook sees
# every open), while the report is written
PROBE = '''
import json, sys
from pathlib import Path
opened = []
sys.addaudithook(lambda event, args: opened.append(str(args[0])) if event == "open" and args and
                 isinstance(args[0], (str, bytes, Path)) else None)
from hpc_rg.report.stage import run
run(Path(sys.argv[1]))
print(json.dumps({"torch": [m for m in sys.modules if m == "torch" or m.startswith("torch.")][:3],
                  "model_files": [p for p in opened if p.endswith(".pt")]}))
'''


@pytest.mark.slow
def test_report_imports_no_torch_and_opens_no_model_file(tmp_path):
    (tmp_path / "job.toml").write_text(JOB)
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, "-m", "hpc_rg", "-q", "run", "job.toml"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not (tmp_path / "run" / "report.md").exists()
    run = tmp_path / "run"
    assert (run / "models" / "large.pt").exists()
    proc = subprocess.run([sys.executable, "-c", PROBE, str(run)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen == {"torch": [], "model_files": []}, seen
    md = (run / "report.md").read_text()
    assert "## Beside the paper (seed003)" in md
    from hpc_rg.reduce.results import read_results
    from hpc_rg.summary import format_value
    aq = read_results(run / "results.h5")["autoencoder_quality"]
    assert format_value(float(aq["mse_large"]), float(aq["mse_large_err"])) in md


@pytest.mark.parametrize("report, key", [('paper = "seed009"', "report.paper"),
                                         ('study = "paper.txt"', "report.study"),
                                         ('paper = "seed003"\nstudy = "x.toml"', "report.study"),
                                         ('papers = "seed003"', "report.papers")])
def test_report_table_is_validated_in_one_line(report, key):
    text = JOB.replace('paper = "seed003"', report)
    with pytest.raises(ConfigError) as e:
        loads(text, "job.toml")
    assert key in str(e.value) and "\n" not in str(e.value)


def test_a_study_of_ones_own(tmp_path, monkeypatch):
    """`[report] study = "path"`: the report puts that study's table in (relative to the current folder)."""
    from hpc_rg.reduce.registry import Result
    from hpc_rg.reduce.results import write_results
    from hpc_rg.report.stage import run
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.toml").write_text('[study]\ntitle = "Mine 2026"\n[[compare]]\nquantity = "x"\n'
                                        'ours = "toy/x"\nvalue = 1.0\nerror = 0.1\nsource = "Eq. 1"\n')
    folder = tmp_path / "run"
    folder.mkdir()
    res = Result()
    res.put("x", 1.2, 0.1)
    write_results(folder / "results.h5", {"toy": res}, "", 1, "")
    cfg = loads(JOB.replace('paper = "seed003"', 'study = "mine.toml"'), "job.toml")
    (folder / "job.toml").write_text(cfg.text)
    md = run(folder).read_text()
    assert "## Beside the paper (Mine 2026)" in md and "1\\.4σ" in md

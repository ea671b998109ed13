"""The [simulate] table: models and algorithms come from the plugin declarations, read without importing."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from hpc_rg.config import loads
from hpc_rg.mc.specs import algorithms, models
from hpc_rg.schema import ConfigError

JOB = '[job]\nname = "s"\nseed = 1\nout = "o"\n[simulate]\nmodel = "{model}"\nL = 8\ntemperatures = [2.0]\n' \
      'algorithm = "{algorithm}"\ndevice = "cuda"\n'


def test_models_and_algorithms_are_the_declared_ones():
    assert models() == ("ising1d", "ising2d", "longrange2d")
    assert algorithms("ising1d") == ("exact", "heatbath", "metropolis", "swendsen_wang", "wolff")
    assert algorithms("ising2d") == ("heatbath", "metropolis", "multispin", "swendsen_wang", "wolff")
    assert algorithms("longrange2d") == ("fukui_todo", "metropolis")


def test_an_algorithm_of_another_model_is_refused():
    with pytest.raises(ConfigError, match=r'^s\.toml: simulate\.algorithm = "fukui_todo": expected one of heatbath, .* for model ising2d'):
        loads(JOB.format(model="ising2d", algorithm="fukui_todo"), "s.toml")


def test_validating_a_gpu_job_imports_no_numba():
    code = ("import sys\nfrom hpc_rg.config import loads\n"
            f"loads({JOB.format(model='ising2d', algorithm='heatbath')!r}, 's.toml')\n"
            "print('numba' in sys.modules)")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))     # this tree's hpc_rg first
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "False"

"""Which sampler class runs a job: the CPU plugin, or the device="cuda" variant of the same name."""
from __future__ import annotations

import dataclasses

import pytest

from hpc_rg import plugins
from hpc_rg.config import loads
from hpc_rg.mc.gpu_select import gpu_sampler, gpu_variant, sampler_class

JOB = '[job]\nname = "g"\nseed = 1\nout = "o"\n[simulate]\nmodel = "{model}"\nL = 8\ntemperatures = [2.0]\n' \
      'algorithm = "{algorithm}"\n'


def _sim(model, algorithm, **changes):
    return dataclasses.replace(loads(JOB.format(model=model, algorithm=algorithm), "g.toml").simulate, **changes)


def test_gpu_variants_are_the_cuda_declarations():
    assert gpu_variant(_sim("ising2d", "metropolis")).entry == "GpuMetropolis"
    assert gpu_variant(_sim("ising2d", "heatbath")).entry == "GpuHeatBath"
    multispin = dataclasses.replace(_sim("ising2d", "metropolis"), algorithm="multispin")   # (chains not checked)
    assert gpu_variant(multispin).entry == "GpuMultiSpin"
    assert gpu_variant(_sim("ising2d", "wolff")) is None
    assert gpu_variant(_sim("longrange2d", "metropolis")) is None       # same name, another model
    assert gpu_variant(_sim("ising1d", "metropolis")) is None


def test_cpu_jobs_get_the_cpu_class():
    from hpc_rg.mc.longrange_metropolis import LongRangeMetropolis
    from hpc_rg.mc.metropolis import CheckerboardMetropolis
    assert gpu_sampler(_sim("ising2d", "metropolis", device="cpu"), "g.toml") is None
    assert sampler_class(_sim("ising2d", "metropolis", device="cpu"), "g.toml") is CheckerboardMetropolis
    assert sampler_class(_sim("longrange2d", "metropolis"), "g.toml") is LongRangeMetropolis


def test_a_declared_cuda_variant_is_looked_up_not_listed():
    toy = plugins.register(plugins.Plugin("sampler", "wolff", "builtins:dict", device="cuda", models=("ising2d",)))
    try:
        assert gpu_variant(_sim("ising2d", "wolff")) is toy
    finally:
        plugins.unregister(toy)


def test_the_cuda_error_names_the_job_file():
    from hpc_rg.mc.gpu_common import gpu_present
    from hpc_rg.schema import ConfigError
    if gpu_present():
        pytest.skip("a CUDA device is visible: the request is valid")
    with pytest.raises(ConfigError, match=r"^mine\.toml: simulate\.device"):
        gpu_sampler(_sim("ising2d", "heatbath", device="cuda"), "mine.toml")

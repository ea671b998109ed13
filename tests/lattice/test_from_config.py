"""`lattice.from_config` builds the model a [simulate] table names through the model plugins."""
from __future__ import annotations

import dataclasses

from hpc_rg import plugins
from hpc_rg.config import loads
from hpc_rg.lattice import from_config
from hpc_rg.lattice.longrange import LongRange
from hpc_rg.lattice.nearest import NearestNeighbour

JOB = '[job]\nname = "m"\nseed = 1\nout = "o"\n[simulate]\nmodel = "{model}"\nL = 4\ntemperatures = [2.0]\n'


def _sim(model):
    return loads(JOB.format(model=model), "m.toml").simulate


def test_every_model_is_built_by_its_declaration():
    assert from_config(_sim("ising1d")) == NearestNeighbour(shape=(4,))
    assert from_config(_sim("ising2d")) == NearestNeighbour(shape=(4, 4))
    long_range = from_config(_sim("longrange2d"))
    assert isinstance(long_range, LongRange) and long_range.attributes() == {"alpha": 3.0, "images": "ewald"}
    assert NearestNeighbour(shape=(4, 4)).attributes() == {}


def test_a_registered_model_is_what_from_config_builds():
    toy = plugins.register(plugins.Plugin("model", "toy_chain", "builtins:repr"))
    try:
        sim = dataclasses.replace(_sim("ising1d"), model="toy_chain")
        assert from_config(sim) == repr(sim)
    finally:
        plugins.unregister(toy)

"""Model kinds are learner plugins: every dispatch on `kind` goes through the plugin table, and a spec checks
its table against the data it will train on."""
from __future__ import annotations

import dataclasses

import pytest

from hpc_rg import plugins
from hpc_rg.learn.job import TrainingJob
from hpc_rg.learn.learner import Learner, learner_class, learner_for
from hpc_rg.learn.specs import (AutoencoderSpec, CoarseCNNSpec, DBNSpec, RBMSpec, RSMISpec, ThermometerSpec,
                                TrainSpec, kind_of)
from hpc_rg.learn.validate import DataShape, check_data
from hpc_rg.schema import ConfigError

BUILT_IN = {"rbm": RBMSpec, "dbn": DBNSpec, "autoencoder": AutoencoderSpec, "coarse_cnn": CoarseCNNSpec,
            "thermometer": ThermometerSpec, "rsmi": RSMISpec}


def test_the_built_in_kinds_are_learner_plugins_declared_next_to_their_models():
    from hpc_rg.learn.specs import KINDS, SPECS
    assert SPECS == BUILT_IN and set(KINDS) == set(BUILT_IN)
    for kind, spec_class in BUILT_IN.items():
        plugin = plugins.get("learner", kind)
        assert plugin.module == f"hpc_rg.learn.{kind}"        # beside the model it trains
        assert issubclass(learner_class(kind), Learner) and issubclass(spec_class, TrainSpec)
        assert kind_of(spec_class()) == kind and type(learner_for(spec_class())) is learner_class(kind)
        assert spec_class.tune_metrics          # what the tune stage may search for
    with pytest.raises(TypeError):
        kind_of(object())


def test_a_registered_kind_joins_the_table_specs_and_model_builder(monkeypatch):
    from hpc_rg.learn.modelfile import build
    from hpc_rg.learn.rbm import RBMLearner

    @dataclasses.dataclass(frozen=True)
    class SmallRBMSpec(RBMSpec):
        n_hidden: int = 3
    monkeypatch.setattr(RBMLearner, "SmallRBMSpec", SmallRBMSpec, raising=False)
    plugin = plugins.register(plugins.Plugin("learner", "small_rbm", "hpc_rg.learn.rbm:RBMLearner",
                                             spec="hpc_rg.learn.rbm:RBMLearner.SmallRBMSpec"))
    try:
        from hpc_rg.learn.specs import SPECS
        assert SPECS["small_rbm"] is SmallRBMSpec and kind_of(SmallRBMSpec()) == "small_rbm"
        model = build("small_rbm", {"n_visible": 4, "n_hidden": 3, "units": "spin"})
        assert model.args() == {"n_visible": 4, "n_hidden": 3, "units": "spin"}
    finally:
        plugins.unregister(plugin)
    from hpc_rg.learn.specs import SPECS
    assert "small_rbm" not in SPECS


@pytest.mark.parametrize("spec, shape, temperatures, key", [
    (DBNSpec(layers=(1600, 10), batch_size=10), (8, 8), (2.0,), "train.m.layers"),
    (AutoencoderSpec(layers=(1600, 10), batch_size=10), (8, 8), (2.0,), "train.m.layers"),
    (CoarseCNNSpec(block=3, batch_size=10, n_train=100), (8, 8), (2.0,), "train.m.block"),
    (RSMISpec(block=2, buffer=1, shell=3, batch_size=4), (8, 8), (2.0,), "train.m.shell"),
    (ThermometerSpec(batch_size=4), (8, 8), (2.0,), "train.m.temperatures"),
    (RBMSpec(batch_size=1000), (8, 8), (2.0,), "train.m.batch_size"),
])
def test_each_kind_checks_its_data_in_one_line(spec, shape, temperatures, key):
    with pytest.raises(ConfigError) as e:
        check_data("job.toml", "m", spec, DataShape(temperatures, 100, shape, "ens.h5"))
    assert key in str(e.value) and "\n" not in str(e.value)
    check_data("job.toml", "m", spec, DataShape((1.0, 2.0), 1000, (40, 40), "big.h5"))   # fits larger data


def test_a_training_job_describes_its_data_and_size(tmp_path, ladder_ensemble):
    from hpc_rg.config import loads
    job_file = tmp_path / "job.toml"
    cfg = loads(f'[job]\nname = "t"\nseed = 1\nout = "run"\n[train.r]\nkind = "rbm"\nensemble = "{ladder_ensemble}"\n'
                'n_hidden = 4\nbatch_size = 40\nsamples = 50\n', job_file)
    job = TrainingJob(cfg, 0, "r", cfg.train["r"]).describe()
    assert job.kind == "rbm" and job.n_parameters == 16 * 16 * 4
    assert job.info["n_configurations"] == 3 * 50 and job.info["n_train"] + job.info["n_test"] == 150
    assert job.info["lattice_shape"] == [16, 16] and job.info["units"] == "spin"
    source, train_idx, test_idx = job.data()
    try:
        assert len(train_idx) == job.info["n_train"] and len(test_idx) == job.info["n_test"]
    finally:
        source.close()

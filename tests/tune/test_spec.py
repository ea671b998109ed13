"""The [tune.<model>] tables: searched keys checked against the train table's own limits, one-line errors."""
from __future__ import annotations

import pytest

from hpc_rg.config import loads
from hpc_rg.schema import ConfigError


def test_tune_settings_are_checked(tmp_path):
    base = '[job]\nname = "t"\nseed = 1\n[train.ch1]\nkind = "coarse_cnn"\n[tune.ch1]\ntrials = 4\n'
    ok = loads(base + 'space.lr = {log = [1e-4, 3e-2]}\nspace.batch_size = {choice = [25, 50]}\n')
    t = ok.tune["ch1"]
    assert t.goal == "maximize" and [e.key for e in t.space] == ["lr", "batch_size"]
    assert ok.stages == ("train", "tune")
    assert loads(base + 'metric = "val_loss"\nspace.lr = {float = [1e-4, 3e-2]}\n').tune["ch1"].goal == "minimize"
    bad = [('space.lr = {log = [0, 3e-2]}', "tune.ch1.space.lr.log[0]"),
           ('space.lr = {log = [3e-2, 1e-3]}', "tune.ch1.space.lr.log"),
           ('space.lr = {lgo = [1e-3, 3e-2]}', "tune.ch1.space.lr.lgo"),
           ('space.lrr = {log = [1e-3, 3e-2]}', "tune.ch1.space.lrr"),
           ('space.n_test = {int = [10, 20]}', "tune.ch1.space.n_test"),
           ('space.epochs = {float = [1, 3]}', "tune.ch1.space.epochs.float"),
           ('space.batch_size = {choice = [0, 50]}', "tune.ch1.space.batch_size.choice[0]"),
           ('space.lr = [1e-3, 3e-2]', "tune.ch1.space.lr"),
           ('metric = "val_acc"\nspace.lr = {log = [1e-3, 3e-2]}', "tune.ch1.metric"),
           ('pruner = "meidan"\nspace.lr = {log = [1e-3, 3e-2]}', "tune.ch1.pruner"),
           ('', "tune.ch1.space")]
    for text, key in bad:
        with pytest.raises(ConfigError) as e:
            loads(base + text + "\n")
        assert key in str(e.value) and "\n" not in str(e.value), (text, str(e.value))
    with pytest.raises(ConfigError, match="tune.ch2"):
        loads(base.replace("[tune.ch1]", "[tune.ch2]") + 'space.lr = {log = [1e-4, 3e-2]}\n')

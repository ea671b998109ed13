"""Model files are untrusted input (issue #16, item 5): a planted `.pt` must never run code, and a missing,
truncated or garbled model file is a one-line error naming it (exit 2), never a traceback."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import hpc_rg
from hpc_rg.schema import ConfigError
from hpc_rg.learn.modelfile import FORMAT, load_model, save_model
from hpc_rg.learn.rbm import RBM

REPO = Path(hpc_rg.__file__).resolve().parents[1]   # the tree under test (its hpc_rg first on the path)


class Payload:
    """Unpickling this calls exec(...), which writes the marker file: what an attacker would plant."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('payload ran')",)


def _rbm(n_visible=16, n_hidden=4) -> RBM:
    torch.manual_seed(0)
    return RBM(n_visible=n_visible, n_hidden=n_hidden, units="spin")


def _save(folder: Path, name="m") -> Path:
    path = folder / f"{name}.pt"
    save_model(path, kind="rbm", name=name, model=_rbm(), optimizer=None, config={"kind": "rbm"},
               history=[{"epoch": 1, "loss": np.float64(0.5)}], metrics={"test_x": 1.0},
               data={"lattice_shape": [4, 4]})
    return path


def _plant(folder: Path, marker: Path, name="evil") -> Path:
    """A model whose .json is genuine and whose .pt carries the payload among its weights' metadata."""
    good = _save(folder, name)
    meta = json.loads(good.with_suffix(".json").read_text())
    meta["format"] = "hpc_rg.model/1"
    good.with_suffix(".json").write_text(json.dumps(meta))
    blob = {"format": "hpc_rg.model/1", "kind": "rbm", "name": name, "args": meta["args"],
            "state_dict": _rbm().state_dict(), "optimizer": None, "history": [Payload(marker)]}
    torch.save(blob, good)
    return good


def test_round_trip_pt_holds_tensors_only(tmp_path):
    path = _save(tmp_path)
    plain = torch.load(path, weights_only=True)        # no allow-list needed: tensors and plain data only
    assert set(plain) == {"format", "state_dict", "optimizer"} and plain["format"] == FORMAT
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["kind"] == "rbm" and meta["history"][0]["loss"] == 0.5 and meta["args"]["n_hidden"] == 4
    model, meta = load_model(path)
    assert torch.equal(model.W, _rbm().W) and meta["data"]["lattice_shape"] == [4, 4]


def test_planted_payload_is_refused_and_does_not_run(tmp_path):
    marker = tmp_path / "marker"
    path = _plant(tmp_path, marker)
    with pytest.raises(ConfigError, match="without running code") as e:
        load_model(path)
    assert "evil.pt" in str(e.value) and "\n" not in str(e.value)
    assert not marker.exists()
    from hpc_rg.learn.modelfile import safe_load
    with pytest.raises(ConfigError):
        safe_load(path)
    assert not marker.exists()


def test_planted_payload_via_cli_exit_2(tmp_path):
    """`hpc-rg analyze` with a diagnostic that loads the planted model: exit 2, one line, payload not run."""
    marker = tmp_path / "marker"
    job = tmp_path / "job.toml"
    job.write_text('[job]\nname = "t"\nseed = 1\nout = "run"\n[simulate]\nmodel = "ising2d"\nL = 4\n'
                   'temperatures = [2.0]\nthermalize = 5\nsamples = 4\nthin = 1\n'
                   '[analyze.receptive_fields]\nmodel = "evil"\n')
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS="1")
    run = lambda *a: subprocess.run([sys.executable, "-m", "hpc_rg", *a], cwd=tmp_path, env=env,
                                    capture_output=True, text=True, timeout=120)
    assert run("simulate", str(job)).returncode == 0
    (tmp_path / "run" / "models").mkdir()
    _plant(tmp_path / "run" / "models", marker)
    p = run("analyze", str(job))
    assert p.returncode == 2, p.stderr
    errors = [ln for ln in p.stderr.splitlines() if ln.startswith("hpc-rg: error")]
    assert len(errors) == 1 and errors[0].startswith("hpc-rg: error: evil.pt:"), p.stderr
    assert "Traceback" not in p.stderr and "GLOBAL exec" in errors[0], p.stderr
    assert not marker.exists()


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "json missing", "json garbled",
                                    "json not a model", "args do not match weights", "pt missing"])
def test_damaged_model_file_is_one_line_error_naming_it(tmp_path, damage):
    path = _save(tmp_path)
    meta_path = path.with_suffix(".json")
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])
    elif damage == "garbage":
        path.write_bytes(os.urandom(4096))
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "json missing":
        meta_path.unlink()
    elif damage == "json garbled":
        meta_path.write_bytes(b'{"format": "hpc_rg.mo\xff')
    elif damage == "json not a model":
        meta_path.write_text(json.dumps({"format": FORMAT, "kind": "os.system", "args": {}}))
    elif damage == "args do not match weights":
        meta = json.loads(meta_path.read_text())
        meta["args"]["n_hidden"] = 10 ** 9            # built on the meta device first: no 16 GB allocation
        meta_path.write_text(json.dumps(meta))
    elif damage == "pt missing":
        path.unlink()
    with pytest.raises(ConfigError) as e:
        load_model(path)
    msg = str(e.value)
    assert "\n" not in msg and ("m.pt" in msg or "m.json" in msg), msg


def test_files_written_by_the_previous_format_still_load(tmp_path):
    """hpc_rg.model/1 (today's main): metadata pickled into the .pt too, numpy scalars and arrays inside."""
    model = _rbm()
    path = tmp_path / "old.pt"
    blob = {"format": "hpc_rg.model/1", "kind": "rbm", "name": "old", "args": model.args(),
            "state_dict": model.state_dict(), "optimizer": None, "config": {"kind": "rbm"},
            "history": [{"loss": np.float64(0.25)}], "metrics": {"m": np.float32(1.0)}, "data": {},
            "repeats": [{"repeat": 0, "kernel": np.ones((1, 3, 3)), "metrics": {}}]}
    torch.save(blob, path)
    meta = {k: v for k, v in blob.items() if k not in ("state_dict", "optimizer")}
    meta["history"], meta["metrics"] = [{"loss": 0.25}], {"m": 1.0}
    meta["repeats"] = [{"repeat": 0, "kernel": np.ones((1, 3, 3)).tolist(), "metrics": {}}]
    path.with_suffix(".json").write_text(json.dumps(meta))
    loaded, meta = load_model(path)
    assert torch.equal(loaded.W, model.W) and meta["kind"] == "rbm"


def test_safe_load_for_checkpoints(tmp_path):
    """The loader the train stage's checkpoints use: plain numpy arrays pass, object arrays do not."""
    from hpc_rg.learn.modelfile import safe_load
    path = tmp_path / "c.pt"
    torch.save({"extra": {"chains": np.ones((3, 4), np.int8)}, "epoch": 2, "history": [{"l": np.float64(1)}]},
               path)
    blob = safe_load(path)
    assert blob["epoch"] == 2 and blob["extra"]["chains"].dtype == np.int8
    torch.save({"x": np.array([Payload(tmp_path / "marker")], dtype=object)}, path)
    with pytest.raises(ConfigError, match="c.pt"):
        safe_load(path)
    assert not (tmp_path / "marker").exists()


def test_metadata_is_written_as_plain_json_values():
    import math

    import numpy as np

    from hpc_rg.jsonable import to_jsonable
    meta = {1: (np.float32(0.5), np.int64(3)), "w": torch.ones(2, dtype=torch.float64), "a": np.arange(2),
            "bad": [math.nan, np.float64(math.inf)], "s": "x"}
    assert to_jsonable(meta) == {"1": [0.5, 3], "w": [1.0, 1.0], "a": [0, 1], "bad": [None, None], "s": "x"}

"""The trainer's pieces that need no MPI: checkpoint files are written whole or not at all."""
from __future__ import annotations

import pytest
import torch

from hpc_rg.learn import trainer
from hpc_rg.learn.trainer import save_atomic


def test_save_atomic_replaces_the_file_and_leaves_nothing_behind(tmp_path):
    path = tmp_path / "ckpt.pt"
    save_atomic({"epoch": 1}, path)
    save_atomic({"epoch": 2}, path)
    assert torch.load(path, weights_only=True) == {"epoch": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]


def test_a_failed_save_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    save_atomic({"epoch": 1}, path)

    def torn(obj, f):
        with open(f, "wb") as out:
            out.write(b"half a checkpoint")
        raise OSError("disk full")
    monkeypatch.setattr(trainer.torch, "save", torn)
    with pytest.raises(OSError, match="disk full"):
        save_atomic({"epoch": 2}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]

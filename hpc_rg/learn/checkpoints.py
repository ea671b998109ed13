"""Per-epoch checkpoints (`<name>.ckpt.pt`) and finished repeats (`<name>.repeats/<r>.pt`) of the train stage:
tensors and plain Python values only, written atomically, read with weights_only=True."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from hpc_rg.io.atomic import atomic_path
from hpc_rg.schema import ConfigError


def plain(x):
    """A checkpoint/repeat blob reduced to what torch.load(weights_only=True) accepts: tensors and plain
    Python values (numpy arrays become tensors, numpy scalars Python numbers)."""
    if isinstance(x, dict):
        return {k: plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(plain(v) for v in x)
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x))
    if isinstance(x, np.generic):
        return x.item()
    return x


def load_blob(path: Path, keys: tuple[str, ...], device="cpu") -> dict:
    """A checkpoint or repeat file, read without unpickling code (weights_only=True): a planted, corrupt or
    foreign file is refused with a one-line error naming it (exit 2), never executed."""
    try:
        blob = torch.load(path, map_location=device, weights_only=True)
        missing = [k for k in keys if k not in blob]
    except Exception as e:   # UnpicklingError (an object that is not a tensor or plain value), truncation, ...
        text = str(e).strip()
        reason = ("it holds something other than tensors and plain values, or is not a torch file"
                  if text.startswith("Weights only load failed") or not text else text.splitlines()[0][:160])
        raise ConfigError(path, "", None, f"not a checkpoint that hpc-rg can read safely ({reason}); delete it "
                          "to train this model from the start") from None
    if missing:
        raise ConfigError(path, "", None, f"not a checkpoint of hpc-rg train (no {', '.join(missing)}); delete it "
                          "to train this model from the start")
    return blob


def load_repeat(path: Path) -> dict:
    res = load_blob(path, ("repeat", "metrics", "state_dict"))
    if "kernel" in res:
        res["kernel"] = res["kernel"].numpy()
    return res


def save(blob: dict, path: Path) -> None:
    """Write a checkpoint or repeat file atomically and durably (a restart reads it)."""
    with atomic_path(path, durable=True) as tmp:
        torch.save(plain(blob), tmp)

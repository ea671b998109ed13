"""`<out>/models/<name>.pt` (format `hpc_rg.model/1`) and its loader.

The file is a torch.save'd dict:
  format        "hpc_rg.model/1"
  kind, name    the model kind and the [train.<name>] table name
  args          constructor arguments of the model class (rebuilds it without the job file)
  state_dict    the weights
  optimizer     the optimiser state of the last trained layer / run
  config        the resolved [train.<name>] table
  history       one dict of metrics per epoch (stacks: with a "layer" entry)
  metrics       final metrics (test monitors, log-likelihoods, repeat statistics)
  data          ensemble path, temperatures, lattice shape, units, sample counts
  repeats       (repeats > 1) per repeat: accuracy/metrics, and for coarse_cnn the learned kernel
`<name>.json` holds everything but the tensors (config, data, metrics, history, repeats' metrics).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

FORMAT = "hpc_rg.model/1"


def build(kind: str, args: dict):
    if kind == "rbm":
        from hpc_rg.learn.rbm import RBM
        return RBM(**args)
    if kind == "dbn":
        from hpc_rg.learn.dbn import DBN
        return DBN(**args)
    if kind == "autoencoder":
        from hpc_rg.learn.autoencoder import Autoencoder
        return Autoencoder(**args)
    if kind == "coarse_cnn":
        from hpc_rg.learn.coarse_cnn import CoarseCNN
        # files written before the `head` option existed were all trained with the relu_on_coarse MLP
        return CoarseCNN(**{"head": "relu_on_coarse", **args})
    if kind == "thermometer":
        from hpc_rg.learn.thermometer import Thermometer
        # files written before the `inputs` option existed were all trained with the |m|, m² features
        return Thermometer(**{"inputs": "conv_m", **args})
    raise ValueError(f"unknown model kind {kind!r}")


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, torch.Tensor):
        return x.tolist()
    if isinstance(x, float) and not np.isfinite(x):
        return None
    return x


def save_model(path: Path, *, kind: str, name: str, model, optimizer: dict | None, config: dict,
               history: list, metrics: dict, data: dict, repeats: list | None = None) -> None:
    """Write <name>.pt and <name>.json atomically (temporary name, then rename)."""
    path = Path(path)
    blob = {"format": FORMAT, "kind": kind, "name": name, "args": model.args(),
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "optimizer": optimizer, "config": config, "history": history, "metrics": metrics, "data": data,
            "repeats": repeats}
    tmp = path.with_name(path.name + ".tmp")
    torch.save(blob, tmp)
    os.replace(tmp, path)
    meta = {k: v for k, v in blob.items() if k not in ("state_dict", "optimizer")}
    if repeats:
        meta["repeats"] = [{k: v for k, v in r.items() if k != "state_dict"} for r in repeats]
    jpath = path.with_suffix(".json")
    jtmp = jpath.with_name(jpath.name + ".tmp")
    jtmp.write_text(json.dumps(_jsonable(meta), indent=1))
    os.replace(jtmp, jpath)


def load_model(path: str | Path, device: str | torch.device = "cpu"):
    """(model in eval mode, meta) from a <name>.pt written by the train stage. meta holds kind, name,
    config, history, metrics, data (units, temperatures, lattice shape) and repeats."""
    blob = torch.load(Path(path), map_location=device, weights_only=False)
    if blob.get("format") != FORMAT:
        raise ValueError(f"{path}: format {blob.get('format')!r}, expected {FORMAT!r}")
    model = build(blob["kind"], blob["args"])
    model.load_state_dict(blob["state_dict"])
    model.to(device).eval()
    meta = {k: v for k, v in blob.items() if k != "state_dict"}
    return model, meta

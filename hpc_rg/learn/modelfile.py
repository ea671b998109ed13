"""`<out>/models/<name>.pt` + `<name>.json` (format `hpc_rg.model/2`) and their loader.

Every file read is untrusted: a `.pt` is a pickle, and unpickling runs code. So the `.pt` holds tensors only
and is read with `torch.load(weights_only=True)` (`safe_load`); everything else lives in the `.json` beside
it, which is plain data:
  <name>.pt    format "hpc_rg.model/2", state_dict (the weights), optimizer (the last optimiser state_dict)
  <name>.json  format, kind, name, args (constructor arguments: rebuild the model without the job file),
               config (the resolved [train.<name>] table), history (one dict of metrics per epoch; stacks
               carry a "layer" entry), metrics (final metrics: test monitors, log-likelihoods, repeat
               statistics), data (ensemble path, temperatures, lattice shape, units, sample counts), repeats
               (repeats > 1: per repeat its metrics, and for coarse_cnn the learned kernel)
Files of format `hpc_rg.model/1` (metadata pickled into the .pt as well, written before this change) still
load: their .json holds the same metadata, and their .pt passes `safe_load` (numpy arrays of plain dtypes
are allowed; no other Python object is).
A file that is missing, truncated, garbled or not loadable without running code raises a one-line
`ConfigError` naming it (exit 2).
"""
from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hpc_rg import plugins
from hpc_rg.io.atomic import atomic_path, atomic_write_text
from hpc_rg.jsonable import to_jsonable
from hpc_rg.learn.learner import learner_class
from hpc_rg.schema import ConfigError

FORMAT = "hpc_rg.model/2"
LEGACY_FORMATS = ("hpc_rg.model/1",)


def build(kind: str, args: dict):
    """The model of a kind (its learner plugin) from constructor arguments."""
    return learner_class(kind).build(args)


def save_model(path: Path, *, kind: str, name: str, model, optimizer: dict | None, config: dict,
               history: list, metrics: dict, data: dict, repeats: list | None = None) -> None:
    """Write <name>.json, then <name>.pt (tensors only), each atomically (temporary name, then rename): the
    .pt appears last, so a model whose .pt exists is complete."""
    path = Path(path)
    meta = {"format": FORMAT, "kind": kind, "name": name, "args": model.args(), "config": config,
            "history": history, "metrics": metrics, "data": data,
            "repeats": [{k: v for k, v in r.items() if k != "state_dict"} for r in repeats] if repeats else repeats}
    atomic_write_text(path.with_suffix(".json"), json.dumps(to_jsonable(meta), indent=1))
    blob = {"format": FORMAT, "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "optimizer": optimizer}
    with atomic_path(path) as tmp:
        torch.save(blob, tmp)


def _numpy_globals() -> list:
    """What unpickling numpy arrays and scalars of plain (non-object) dtypes needs: data constructors only.
    Files written before the tensors-only format (and training checkpoints) hold such arrays."""
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray
    dtypes = [getattr(np.dtypes, n) for n in ("Float64DType", "Float32DType", "Float16DType", "Int64DType",
                                              "Int32DType", "Int16DType", "Int8DType", "UInt64DType",
                                              "UInt32DType", "UInt16DType", "UInt8DType", "BoolDType")
              if hasattr(np, "dtypes") and hasattr(np.dtypes, n)]
    return [multiarray._reconstruct, multiarray.scalar, np.ndarray, np.dtype, *dtypes]


def safe_load(path: str | Path, map_location: Any = "cpu") -> Any:
    """`torch.load(path, weights_only=True)`: tensors, containers, numbers, strings and plain numpy arrays
    only; nothing in the file is ever called. ConfigError (naming the file) when the file is missing,
    truncated or corrupt, or holds anything else (a pickled object: possibly a planted payload)."""
    path = Path(path)
    try:
        with torch.serialization.safe_globals(_numpy_globals()):
            return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise ConfigError(path, "", None, f"an existing file ({path} not found)") from None
    except pickle.UnpicklingError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if "Unsupported" in ln or "WeightsUnpickler" in ln]
        why = (lines[0] if lines else str(e).splitlines()[0] if str(e) else type(e).__name__)
        why = why.replace("WeightsUnpickler error: ", "").split(" was not an allowed global")[0][:200]
        raise ConfigError(path, "", None, f"a torch file of tensors and plain data, loadable without running "
                          f"code ({path}: refused: {why})") from None
    except Exception as e:   # truncated zip, bad magic number, EOF, I/O error: all "cannot be read"
        why = (str(e).splitlines()[0] if str(e) else "")[:200]
        raise ConfigError(path, "", None, f"a complete, readable torch file ({path}: {type(e).__name__}"
                          f"{': ' + why if why else ''})") from None


def read_meta(path: str | Path) -> dict:
    """The metadata of model `path` (<name>.pt) from <name>.json, checked to describe a loadable model."""
    jpath = Path(path).with_suffix(".json")
    try:
        meta = json.loads(jpath.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise ConfigError(jpath, "", None, f"the metadata file of model {Path(path).name} ({jpath} not found)") \
            from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ConfigError(jpath, "", None, f"a model metadata file in JSON ({jpath}: {type(e).__name__}: "
                          f"{str(e).splitlines()[0][:200] if str(e) else ''})") from None
    problem = None
    if not isinstance(meta, dict):
        problem = "not a JSON object"
    elif meta.get("format") not in (FORMAT, *LEGACY_FORMATS):
        problem = f"format {meta.get('format')!r}, expected {FORMAT!r}"
    elif meta.get("kind") not in plugins.names("learner"):
        problem = f"kind {meta.get('kind')!r}, expected one of {', '.join(plugins.names('learner'))}"
    elif not isinstance(meta.get("args"), dict):
        problem = "no constructor arguments (args)"
    if problem:
        raise ConfigError(jpath, "", None, f"a model metadata file written by `hpc-rg train` ({jpath}: {problem})")
    return meta


def load_model(path: str | Path, device: str | torch.device = "cpu"):
    """(model in eval mode, meta) from a <name>.pt written by the train stage and the <name>.json beside it.
    meta holds kind, name, args, config, history, metrics, data (units, temperatures, lattice shape),
    repeats and optimizer. ConfigError (one line naming the file) when either file is missing or damaged."""
    path = Path(path)
    meta = read_meta(path)
    blob = safe_load(path, map_location=device)
    state = blob.get("state_dict") if isinstance(blob, dict) else None
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise ConfigError(path, "", None, f"a model file with a state_dict of tensors ({path})")
    if blob.get("format") != meta["format"]:
        raise ConfigError(path, "", None, f"a model file of the format its .json names ({path}: "
                          f"{blob.get('format')!r}, {path.with_suffix('.json').name}: {meta['format']!r})")
    try:
        # build on the meta device first: arguments that do not match the weights (or would allocate a huge
        # model) are refused before any memory is taken
        with torch.device("meta"):
            probe = build(meta["kind"], meta["args"])
        shapes = {k: tuple(v.shape) for k, v in probe.state_dict().items()}
        found = {k: tuple(v.shape) for k, v in state.items()}
        if shapes != found:
            raise ValueError(f"weights {found} do not match a {meta['kind']} with args {meta['args']}")
        model = build(meta["kind"], meta["args"])
        model.load_state_dict(state)
    except (TypeError, ValueError, RuntimeError, KeyError) as e:
        raise ConfigError(path, "", None, f"a model whose weights match its .json ({path}: "
                          f"{str(e).splitlines()[0][:200] if str(e) else type(e).__name__})") from None
    model.to(device).eval()
    meta = dict(meta, optimizer=blob.get("optimizer"))
    if isinstance(meta.get("repeats"), list):   # learned kernels as the arrays they were (float32, exact)
        meta["repeats"] = [dict(r, kernel=np.asarray(r["kernel"], dtype=np.float32))
                           if isinstance(r, dict) and r.get("kernel") is not None else r for r in meta["repeats"]]
    return model, meta

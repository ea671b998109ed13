"""Plain JSON values from what results and metadata hold: numpy scalars and arrays, torch tensors, tuples.

One conversion for every JSON file hpc_rg writes (model metadata, checkpoint records): numpy scalars become
Python numbers, arrays and tensors nested lists, tuples lists, dict keys strings, and a non-finite float
scalar `null` (JSON has no NaN or infinity). Imports neither torch nor anything of hpc_rg.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np


def _is_tensor(x: Any) -> bool:
    return type(x).__module__.partition(".")[0] == "torch" and hasattr(x, "tolist")


def to_jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): to_jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return to_jsonable(x.item())
    if isinstance(x, np.ndarray) or _is_tensor(x):
        return x.tolist()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np

BIN = Path(sys.executable).parent
DATASETS = ("spins", "energy", "magnetization", "timeseries/energy", "timeseries/magnetization")
EXCHANGE = ("exchange/slot_history", "exchange/pair_accepts", "exchange/pair_attempts", "exchange/round_trips")


def write_job(folder: Path, name: str = "driver", **simulate) -> Path:
    sim = dict(model='"ising2d"', L=12, temperatures="[2.0, 2.269185, 2.6]", algorithm='"metropolis"', chains=2,
               thermalize=100, samples=60, thin=5, replica_exchange="true", exchange_every=5)
    sim.update({k: (f'"{v}"' if isinstance(v, str) and not v.startswith(("[", '"', "{")) and v not in ("true", "false")
                    else v) for k, v in simulate.items()})
    text = f'[job]\nname = "{name}"\nseed = 11\nout = "{name}"\n\n[simulate]\n'
    text += "\n".join(f"{k} = {str(v).lower() if isinstance(v, bool) else v}" for k, v in sim.items()) + "\n"
    path = folder / f"{name}.toml"
    path.write_text(text)
    return path


def hpc_rg(*args, ranks: int = 1, env: dict | None = None, timeout: float = 120, check: bool = True):
    cmd = [str(BIN / "hpc-rg"), *map(str, args)]
    if ranks > 1:
        cmd = [str(BIN / "mpiexec"), "-n", str(ranks), *cmd]
    full_env = dict(os.environ, OMP_NUM_THREADS="1", **(env or {}))
    proc = subprocess.run(cmd, env=full_env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def assert_same_ensemble(a: Path, b: Path, exchange: bool = True) -> None:
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        for k in DATASETS + (EXCHANGE if exchange else ()):
            assert k in fa and k in fb, k
            x, y = fa[k][()], fb[k][()]
            assert x.shape == y.shape, (k, x.shape, y.shape)
            assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), f"{k} differs between {a} and {b}"



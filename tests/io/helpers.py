"""A small simulated run folder and the CLI in a subprocess (a crash or a hang cannot take pytest with it)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parents[2]

SIMULATE = """[simulate]
model = "ising2d"
L = 8
temperatures = [2.0, 2.5]
algorithm = "metropolis"
chains = 2
thermalize = 20
samples = 24
thin = 2
"""


def write_job(folder: Path, name: str = "iso", out: str | None = None, simulate: str = SIMULATE,
              extra: str = "") -> Path:
    text = f'[job]\nname = "{name}"\nseed = 5\nout = "{out or name}"\n\n{simulate}\n{extra}'
    path = Path(folder) / f"{name}.toml"
    path.write_text(text)
    return path


def cli(*args, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    return subprocess.run([sys.executable, "-m", "hpc_rg", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def one_line_exit_2(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    """The run was refused as the project promises: exit 2, one line on stderr, no traceback."""
    err = proc.stderr.strip()
    assert proc.returncode == 2, f"exit {proc.returncode}\n{proc.stdout}\n{err}"
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if not re.match(r"(\d{4}-\d\d-\d\d )?\d\d:\d\d:\d\d INFO ", line)]   # progress log
    assert len(lines) == 1 and lines[0].startswith("hpc-rg: error: "), err
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    return lines[0]


def h5_contents(path: Path) -> dict:
    """Every dataset's values and every attribute of a file, as plain arrays (what a reader sees)."""
    out = {}
    with h5py.File(path, "r") as f:
        out["/attrs"] = {k: _plain(v) for k, v in f.attrs.items()}

        def visit(name, obj):
            # dimension scales by name: their references (DIMENSION_LIST, REFERENCE_LIST) are file-specific
            out[name + "/attrs"] = {k: _plain(v) for k, v in obj.attrs.items()
                                    if k not in ("DIMENSION_LIST", "REFERENCE_LIST")}
            if isinstance(obj, h5py.Dataset):
                out[name + "/attrs"]["(dimension scales)"] = [[s.name for s in d.values()] for d in obj.dims]
                out[name] = (obj.dtype.str, obj[()])
        f.visititems(visit)
    return out


def _plain(v):
    return v.tolist() if isinstance(v, np.ndarray) else v


def assert_same_contents(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for k in a:
        if isinstance(a[k], tuple):
            assert a[k][0] == b[k][0], k
            assert np.array_equal(a[k][1], b[k][1], equal_nan=a[k][1].dtype.kind == "f"), k
        else:
            assert a[k] == b[k], k


def main_in_process(*args) -> subprocess.CompletedProcess:
    """`hpc-rg ARGS` through cli.main in this process (no interpreter start-up): for the commands that only
    read files (info, status, report, assemble)."""
    import io
    from contextlib import redirect_stderr, redirect_stdout
    from hpc_rg.cli import main
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main([str(a) for a in args])
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())

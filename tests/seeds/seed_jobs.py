"""Running a seed study's job in a test: copy jobs/<job> into a temporary folder with its outputs redirected
there (`copy_job`), run `hpc-rg run JOB --force` in a subprocess (`run_job`), and check what it wrote
(`finite_with_errors`, `png_nonempty`); `load_figures(n)` imports studies/seed00N/figures.py."""
from __future__ import annotations

import importlib.util
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def copy_job(job: str, tmp: Path, name: str | None = None) -> Path:
    """The job file `jobs/<job>` copied into tmp with `out` (and relative `ensemble`/`files` paths that
    point at sibling run folders) redirected into tmp: returns the new job path."""
    text = (ROOT / "jobs" / job).read_text()
    text = re.sub(r'(?m)^out\s*=\s*"\.\./runs/([^"]+)"', lambda m: f'out = "{(tmp / m.group(1)).as_posix()}"', text)
    text = text.replace('"../runs/', f'"{tmp.as_posix()}/')
    path = tmp / (name or job)
    path.write_text(text)
    return path


def run_job(job_path: Path, ranks: int = 1, timeout: float = 300.0) -> tuple[float, subprocess.CompletedProcess]:
    """`hpc-rg run JOB --force` in a subprocess; returns (seconds, proc)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    cmd = [sys.executable, "-m", "hpc_rg", "run", str(job_path), "--force"]
    if ranks > 1:
        cmd = [str(Path(sys.executable).parent / "mpiexec"), "-n", str(ranks)] + cmd
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    return time.perf_counter() - t0, proc


def finite_with_errors(values, errors) -> bool:
    """Every value finite and every error bar present (finite, >= 0)."""
    import numpy as np
    v, e = np.asarray(values, float), np.asarray(errors, float)
    return bool(np.all(np.isfinite(v)) and e.shape == v.shape and np.all(np.isfinite(e)) and np.all(e >= 0))


def png_nonempty(path: Path) -> bool:
    """A PNG that decodes and is not one flat colour."""
    import matplotlib.image as mpimg
    img = mpimg.imread(path)
    return img.size > 0 and float(img[..., :3].std()) > 0 and math.isfinite(float(img.mean()))


def load_figures(n: int):
    """studies/seed00<n>/figures.py as a module (four files of one name: imported by path, not by name)."""
    path = ROOT / "studies" / f"seed00{n}" / "figures.py"
    spec = importlib.util.spec_from_file_location(f"seed00{n}_figures", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

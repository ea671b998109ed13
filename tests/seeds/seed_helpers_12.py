"""Helpers of the seed-001/002 reproduction tests (and a runner the analysis scripts share).

`hpc-rg` with the RG <-> deep-learning diagnostics registered. The reduce stage now registers them itself
(`SPECS.update(DIAGNOSTIC_SPECS)`, `MODULES += DIAGNOSTIC_MODULES`), so `main(argv)` is the ordinary CLI;
the registration here is a no-op kept so the seed jobs also run on a checkout from before those hooks:

    .venv/bin/python tests/seeds/seed_helpers_12.py run jobs/seed002_flows_quick.toml --force
"""
from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def register_diagnostics() -> bool:
    """Extend the analyze registry with the diagnostics; True if anything was missing."""
    from hpc_rg.reduce import registry, specs
    from hpc_rg.reduce.diagnostics_specs import DIAGNOSTIC_MODULES, DIAGNOSTIC_SPECS
    missing = any(k not in specs.SPECS for k in DIAGNOSTIC_SPECS) or \
        any(m not in registry.MODULES for m in DIAGNOSTIC_MODULES)
    for k, v in DIAGNOSTIC_SPECS.items():
        specs.SPECS.setdefault(k, v)
    registry.MODULES[:] = list(dict.fromkeys(list(registry.MODULES) + list(DIAGNOSTIC_MODULES)))
    return missing


def main(argv: list[str] | None = None) -> int:
    register_diagnostics()
    from hpc_rg.cli import main as cli_main
    return cli_main(argv)


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
    """`hpc-rg run JOB --force` in a subprocess (with the diagnostics registered); returns (seconds, proc)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    cmd = [sys.executable, str(Path(__file__).resolve()), "run", str(job_path), "--force"]
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


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main(sys.argv[1:]))

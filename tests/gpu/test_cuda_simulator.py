"""The CUDA kernels themselves (not only their CPU compilation) under numba's CUDA simulator: same results
as the CPU backend bit for bit, and checkpoints that move between the two. Runs in a subprocess because
NUMBA_ENABLE_CUDASIM must be set before numba.cuda is first imported."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def _has_cuda_target():
    try:
        from numba import cuda  # noqa: F401
    except Exception:
        return False
    return True


@pytest.mark.skipif(not _has_cuda_target(), reason="numba has no CUDA target (install numba-cuda)")
def test_cuda_kernels_match_cpu_backend_in_simulator():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", PYTHONHASHSEED="0")
    script = Path(__file__).with_name("cudasim_compare.py")
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    for name, checks in results.items():
        assert checks.pop("device") == "cuda", name
        assert all(checks.values()), (name, checks)

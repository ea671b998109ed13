"""The architecture work (#20) must not change the Monte Carlo: the ensembles of the quickstart and the seed
quick jobs are bit-identical to those main simulated at 21aa226 (fingerprints recorded in the JSON beside
this file by `ensemble_fingerprints.py --write`)."""
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.mark.slow
def test_quick_job_ensembles_are_bit_identical_to_main_21aa226():
    run = subprocess.run([sys.executable, str(HERE / "ensemble_fingerprints.py"), "--check",
                          str(HERE / "ensembles_21aa226.json")], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr

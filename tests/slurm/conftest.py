"""Fixtures for the `slurm` tests (helpers in slurm_jobs.py). They run only when a Slurm is reachable:
`eval "$(tests/slurm/up.sh)"` exports HPC_RG_SLURM_CONF (and SLURM_CONF); without it, or when
`scontrol ping` fails, every test that asks for `slurm_env` is skipped."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from slurm_jobs import slurm_env_or_none  # noqa: E402


@pytest.fixture(scope="session")
def slurm_env() -> dict:
    env = slurm_env_or_none()
    if env is None:
        pytest.skip("no local Slurm (run `eval \"$(tests/slurm/up.sh)\"` first)")
    return env

"""Shared helpers for the GPU sampler tests: the exact references, loaded by path (tests use importlib mode)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_HERE = Path(__file__).parent


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"gpu_tests_{name}", _HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def exact():
    """tests/gpu/kaufman_ref.py: Kaufman's finite-torus energy and exact enumeration."""
    return _load("kaufman_ref")

"""Fixtures of the deep-learning diagnostics tests: registration of the diagnostic reductions until the
one-line hooks land in hpc_rg/reduce/specs.py and registry.py (a no-op afterwards)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

# the models here are tiny: extra threads only fight over the shared cores
torch.set_num_threads(1)


@pytest.fixture
def registered(monkeypatch):
    """SPECS and MODULES extended with the diagnostics (a no-op once the hooks exist)."""
    from hpc_rg.reduce import registry, specs
    from hpc_rg.reduce.diagnostics_specs import DIAGNOSTIC_MODULES, DIAGNOSTIC_SPECS
    for k, v in DIAGNOSTIC_SPECS.items():
        monkeypatch.setitem(specs.SPECS, k, v)
    monkeypatch.setattr(registry, "MODULES", list(dict.fromkeys(registry.MODULES + DIAGNOSTIC_MODULES)))
    return registry.load_all()

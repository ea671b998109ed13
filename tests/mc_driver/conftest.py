from __future__ import annotations

import pytest

from tests.mc_driver.helpers import hpc_rg, write_job


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted single-rank run of the standard driver job."""
    folder = tmp_path_factory.mktemp("reference")
    job = write_job(folder)
    hpc_rg("simulate", job)
    return folder / "driver" / "ensemble.h5"

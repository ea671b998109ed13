"""One version source, and the files a repository and a wheel are expected to carry."""
from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import hpc_rg
from hpc_rg import provenance

ROOT = Path(__file__).resolve().parents[2]


def test_setup_cfg_reads_the_one_version():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    assert cfg["metadata"]["version"].strip() == "attr: hpc_rg.__version__"
    assert cfg["metadata"]["license"].strip() == "MIT"
    assert "py.typed" in cfg["options.package_data"]["hpc_rg"]
    assert re.fullmatch(r"\d+\.\d+\.\d+([.-]?\w+)?", hpc_rg.__version__)


def test_license_is_mit():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "hpc_rg developers" in text


def test_citation_cff():
    yaml = pytest.importorskip("yaml")
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0"
    for key in ("message", "title", "authors", "type", "license"):     # what the 1.2.0 schema requires + ours
        assert cff.get(key), key
    assert all("name" in a or "family-names" in a for a in cff["authors"])
    assert str(cff["version"]) == hpc_rg.__version__, "CITATION.cff version differs from hpc_rg.__version__"
    assert cff["license"] == "MIT"


def test_changelog_has_the_current_version():
    text = (ROOT / "CHANGELOG.md").read_text()
    assert re.search(rf"^## {re.escape(hpc_rg.__version__)} - \d{{4}}-\d{{2}}-\d{{2}}$", text, re.M)


def test_py_typed_marker():
    assert (ROOT / "hpc_rg" / "py.typed").is_file()


def test_provenance_records_version_and_commit():
    info = provenance.provenance()
    assert info["hpc_rg_version"] == hpc_rg.__version__
    git = shutil.which("git")
    head = subprocess.run([git, "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True) if git else None
    if head is None or head.returncode != 0:
        assert "git_commit" not in info               # not a checkout: nothing guessed
        return
    assert info["git_commit"] == head.stdout.strip()
    assert isinstance(info["git_dirty"], bool)
    assert provenance.version_string().startswith(f"{hpc_rg.__version__} (git {info['git_commit'][:12]}")


def test_wheel_carries_version_license_and_py_typed(tmp_path):
    pytest.importorskip("setuptools")
    pytest.importorskip("wheel")
    src = tmp_path / "src"
    src.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "hpc_rg", src / "hpc_rg", ignore=shutil.ignore_patterns("__pycache__"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
                           "-q", "-w", str(tmp_path / "dist")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    assert wheel.name.startswith(f"hpc_rg-{hpc_rg.__version__}-")
    names = zipfile.ZipFile(wheel).namelist()
    assert "hpc_rg/py.typed" in names
    assert any(n.endswith("LICENSE") for n in names)

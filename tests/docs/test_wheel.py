"""The wheel, installed by pip in a clean venv that holds only the core dependencies, reads an ensemble
(`hpc-rg info`), and a stage that needs an extra says which (`hpc-rg train`, `hpc-rg demo`).

The venv is made without system site-packages and without pip; this interpreter's pip installs the wheel
into it (`pip --python`), resolving the wheel's install_requires with no index: what it finds must satisfy
them, or the install fails. Where the core dependencies come from:

- by default, the main venv's own copies of exactly the core distributions (numpy, numba, llvmlite, h5py,
  scipy, mpmath, tqdm, found from setup.cfg's install_requires and their requirements) are linked into one
  folder that a .pth file puts on the clean venv's path. torch, mpi4py, matplotlib, ... are not there.
  About 10 s: unpacking ~120 MB of wheels again would take a minute on a busy 2-core node.
- HPC_RG_WHEEL_TEST=download: pip downloads the core wheels once (the same versions, into
  ~/.cache/hpc_rg/core-wheels/, or $HPC_RG_WHEEL_CACHE) and installs them for real; later runs are offline.
"""
from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import subprocess
import sys
import venv
from importlib import metadata
from pathlib import Path

import pytest

import hpc_rg

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
OPTIONAL = ("torch", "mpi4py", "matplotlib", "optuna", "xarray", "pandas", "h5netcdf", "jinja2", "markdown_it",
            "sklearn")
JOB = """[job]
name = "wheel"
seed = 11
out = "run"

[simulate]
model = "ising2d"
L = 4
temperatures = [2.0, 2.5]
algorithm = "metropolis"
thermalize = 10
samples = 8
thin = 2

[train.rbm]
kind = "rbm"
n_hidden = 4
epochs = 1
batch_size = 4
"""


def _requirement_names(requirements) -> list[str]:
    """Distribution names of requirement strings that apply here (markers evaluated, extras skipped)."""
    from packaging.requirements import Requirement
    names = []
    for text in requirements or []:
        req = Requirement(text)
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            names.append(req.name)
    return names


def core_distributions() -> list[metadata.Distribution]:
    """setup.cfg's install_requires and everything they require, as installed here."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    todo = _requirement_names(line for line in cfg["options"]["install_requires"].splitlines() if line.strip())
    seen: dict[str, metadata.Distribution] = {}
    while todo:
        name = re.sub(r"[-_.]+", "-", todo.pop()).lower()
        if name in seen:
            continue
        dist = metadata.distribution(name)
        seen[name] = dist
        todo += _requirement_names(dist.requires)
    return list(seen.values())


def link_core(site: Path) -> list[str]:
    """Symlink every top-level file and folder of the core distributions (their packages, vendored .libs and
    .dist-info metadata) into `site`; returns the distribution names."""
    site.mkdir(parents=True)
    for dist in core_distributions():
        base = Path(dist.locate_file(""))
        for top in {Path(f).parts[0] for f in dist.files or []}:
            src = base / top
            if top not in ("..", "bin") and src.exists() and not (site / top).exists():
                (site / top).symlink_to(src)
    return sorted(d.metadata["Name"].lower() for d in core_distributions())


def download_core(cache: Path) -> Path:
    """The core wheels (this venv's versions) in `cache`, downloaded once."""
    pins = [f"{d.metadata['Name']}=={d.version}" for d in core_distributions()]
    if not all(any(cache.glob(f"{p.split('==')[0].replace('-', '_')}-{p.split('==')[1]}-*.whl"))
               for p in pins):
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "--no-deps",
                               "-d", str(cache), *pins], capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            pytest.skip(f"cannot download the core wheels: {proc.stderr.strip().splitlines()[-1:]}")
    return cache


def build_wheel(tmp: Path) -> Path:
    """The wheel of this checkout, built from a copy (no build/ or egg-info left in the checkout)."""
    src = tmp / "src"
    src.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "hpc_rg", src / "hpc_rg", ignore=shutil.ignore_patterns("__pycache__"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
                           "-q", "-w", str(tmp / "dist")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (wheel,) = (tmp / "dist").glob("*.whl")
    return wheel


@pytest.fixture(scope="module")
def clean_venv(tmp_path_factory):
    """(bin folder of a clean venv with the wheel and the core only, a clean environment for it)."""
    pytest.importorskip("setuptools")
    pytest.importorskip("packaging")
    tmp = tmp_path_factory.mktemp("wheel")
    wheel = build_wheel(tmp)
    env_dir = tmp / "venv"
    venv.EnvBuilder(system_site_packages=False, with_pip=False, symlinks=True).create(env_dir)
    python = env_dir / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-index",
               "--disable-pip-version-check"]
    if os.environ.get("HPC_RG_WHEEL_TEST") == "download":
        cache = Path(os.environ.get("HPC_RG_WHEEL_CACHE", Path.home() / ".cache" / "hpc_rg" / "core-wheels")) \
            / f"py{sys.version_info.major}{sys.version_info.minor}"
        cache.mkdir(parents=True, exist_ok=True)
        install += ["--find-links", str(download_core(cache))]
    else:
        link_core(tmp / "core")
        (site / "hpc_rg_core.pth").write_text(str(tmp / "core") + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "CONDA"))}
    env.update(OMP_NUM_THREADS="1", PYTHONNOUSERSITE="1", HOME=str(tmp))   # nothing from ~/.local either
    # no --no-deps: pip checks install_requires against what the venv holds (and there is no index to fill gaps)
    proc = subprocess.run(install + [str(wheel)], capture_output=True, text=True, timeout=600, env=env, cwd=tmp)
    assert proc.returncode == 0, proc.stderr
    return env_dir / "bin", env


def in_venv(clean_venv, *args, cwd) -> subprocess.CompletedProcess:
    bin_dir, env = clean_venv
    return subprocess.run([str(bin_dir / args[0]), *map(str, args[1:])], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory):
    """An ensemble written by this (full) installation."""
    from hpc_rg.cli import main
    folder = tmp_path_factory.mktemp("ens")
    (folder / "job.toml").write_text(JOB)
    assert main(["simulate", str(folder / "job.toml"), "-q"]) == 0
    return folder


def test_the_venv_holds_the_wheel_and_the_core_only(clean_venv, tmp_path):
    probe = ("import importlib.util, json, sys, hpc_rg; "
             f"print(json.dumps([hpc_rg.__file__, hpc_rg.__version__, sys.flags.no_user_site, "
             f"[m for m in {OPTIONAL!r} if importlib.util.find_spec(m)]]))")
    proc = in_venv(clean_venv, "python", "-c", probe, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    where, version, _, optional = json.loads(proc.stdout)
    assert Path(where).is_relative_to(clean_venv[0].parent), where        # the installed wheel, not the checkout
    assert version == hpc_rg.__version__
    assert optional == [], f"not core, yet importable in the clean venv: {optional}"


def test_info_reads_the_ensemble(clean_venv, ensemble):
    proc = in_venv(clean_venv, "hpc-rg", "info", "run/ensemble.h5", cwd=ensemble)
    assert proc.returncode == 0, proc.stderr
    assert "ising2d 4x4" in proc.stdout and "2 temperatures x 1 chains x 8 samples" in proc.stdout, proc.stdout
    js = in_venv(clean_venv, "hpc-rg", "info", "--json", "run/ensemble.h5", cwd=ensemble)
    assert json.loads(js.stdout)["n_samples"] == 8
    for args in (["check", "job.toml"], ["status", "run"], ["--version"]):
        proc = in_venv(clean_venv, "hpc-rg", *args, cwd=ensemble)
        assert proc.returncode == 0, (args, proc.stderr)


def test_train_names_the_extra(clean_venv, ensemble):
    proc = in_venv(clean_venv, "hpc-rg", "train", "job.toml", cwd=ensemble)
    assert proc.returncode == 2
    assert proc.stderr == "hpc-rg train: needs torch; install it with pip install 'hpc_rg[train]'\n", proc.stderr
    assert not (ensemble / "run" / "models").exists()


def test_demo_finds_its_packaged_job(clean_venv, tmp_path):
    # the packaged quickstart.toml is read (a missing file would be a traceback), then train's extra is named
    proc = in_venv(clean_venv, "hpc-rg", "demo", "--out", "demo", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr == "hpc-rg train: needs torch; install it with pip install 'hpc_rg[train]'\n", proc.stderr
    assert not (tmp_path / "demo").exists()

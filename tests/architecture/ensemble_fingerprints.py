"""Fingerprints of the ensembles the quickstart and seed quick jobs simulate (architecture issue #20).

A refactor must leave the Monte Carlo bit for bit as it was: this script runs the simulate stage of each
job into a scratch folder and prints a SHA-256 per job over every dataset of ensemble.h5 (values, shapes
and dtypes; attributes that carry times, versions or paths are left out, they legitimately change).
`--check FILE` compares with fingerprints recorded on an earlier commit and exits 1 on any difference.

    python tests/architecture/ensemble_fingerprints.py --write tests/architecture/ensembles.json
    python tests/architecture/ensemble_fingerprints.py --check tests/architecture/ensembles.json
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
JOBS = ("quickstart", "seed000_coarse_cnn_quick", "seed001_decimation_1d_quick", "seed001_mehta_schwab_quick",
        "seed002_flows_quick", "seed002_stacked_quick", "seed003_dbn_quick", "rsmi_ising2d_quick")


def fingerprint(path: Path) -> str:
    import h5py
    import numpy as np
    digest = hashlib.sha256()

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset) and obj.dtype.kind in "iufb":
            values = np.ascontiguousarray(obj[()])
            digest.update(f"{name}:{values.dtype.str}:{values.shape}".encode())
            digest.update(values.tobytes())

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return digest.hexdigest()


def simulate(job: str, scratch: Path) -> Path:
    text = (ROOT / "jobs" / f"{job}.toml").read_text()
    out = scratch / job
    text = re.sub(r'(?m)^out\s*=.*$', "", text)
    text = text.replace("[job]", f'[job]\nout = "{out}"', 1)
    jobfile = scratch / f"{job}.toml"
    jobfile.write_text(text)
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    subprocess.run([sys.executable, "-m", "hpc_rg", "-q", "simulate", str(jobfile)], check=True, env=env)
    return out / "ensemble.h5"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", type=Path)
    ap.add_argument("--check", type=Path)
    ap.add_argument("--jobs", nargs="*", default=JOBS)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        prints = {job: fingerprint(simulate(job, Path(tmp))) for job in args.jobs}
    for job, fp in prints.items():
        print(f"{job:32s} {fp}")
    if args.write:
        args.write.write_text(json.dumps(prints, indent=1) + "\n")
    if args.check:
        want = json.loads(args.check.read_text())
        bad = [j for j in prints if want.get(j) != prints[j]]
        for j in bad:
            print(f"DIFFERS: {j}: {prints[j]} (recorded {want.get(j)})")
        return 1 if bad else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())

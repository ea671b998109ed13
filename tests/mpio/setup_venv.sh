#!/usr/bin/env bash
# Build the second venv used by the collective (driver="mpio") ensemble writer's tests: h5py compiled
# against Debian's MPICH-parallel HDF5, mpi4py compiled against the same MPICH. Idempotent: every step is
# skipped when its result is already present. Prints the time of each step.
#
#   tests/mpio/setup_venv.sh            # -> .venv-mpio (override with VENV=...)
#
# Needs root on Debian/Ubuntu for apt-get (CI and the dev machines are). On a cluster, see
# docs/parallel_hdf5.md: point HDF5_DIR at the site's parallel HDF5 and CC/MPICC at its MPI compiler wrapper.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${VENV:-.venv-mpio}
PYTHON=${PYTHON:-python3}
HDF5_DIR_MPICH=${HDF5_DIR_MPICH:-/usr/lib/x86_64-linux-gnu/hdf5/mpich}
T0=$SECONDS

step() {  # name, command...
  local name=$1; shift
  local t=$SECONDS
  echo "--- $name"
  "$@"
  echo "--- $name: $((SECONDS - t)) s"
}

# 1. system packages: MPICH and HDF5 built with it
if ! command -v mpicc.mpich >/dev/null || ! command -v mpiexec.mpich >/dev/null || [ ! -d "$HDF5_DIR_MPICH/include" ]; then
  step apt bash -c 'export DEBIAN_FRONTEND=noninteractive; (apt-get install -y -q libhdf5-mpich-dev mpich || (apt-get update -q && apt-get install -y -q libhdf5-mpich-dev mpich)) >/dev/null'
else
  echo "--- apt: libhdf5-mpich-dev and mpich present"
fi

# 2. the venv and its build tools (h5py's build breaks with an old setuptools)
if [ ! -x "$VENV/bin/python" ]; then
  step venv "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
if ! "$PY" -c "import Cython, numpy, pkgconfig, wheel" 2>/dev/null; then
  step build-tools bash -c "'$PY' -m pip install -q cython numpy pkgconfig wheel && '$PY' -m pip install -q -U setuptools"
fi

# 3-4. mpi4py and h5py compiled against the system MPICH and its parallel HDF5. pip keeps no wheel it built
# under --no-binary, so every fresh clone would compile them again (~4.5 min): the wheels are kept in a cache
# folder named after the system packages and the Python they were built for, rebuilt when any of these
# changes or the folder is absent (HPC_RG_WHEEL_CACHE= , empty, turns the cache off).
key=$("$PY" -c 'import sys; print("py%d%d" % sys.version_info[:2])')-$(dpkg-query -W -f='${Version}-' mpich libhdf5-mpich-dev 2>/dev/null | tr -c 'A-Za-z0-9.+~-' _)
WHEELS=${HPC_RG_WHEEL_CACHE-$HOME/.cache/hpc_rg/mpio-wheels}
[ -n "$WHEELS" ] && WHEELS="$WHEELS/$key"
install_compiled() {  # package, "pip build options", environment for its build...
  local pkg=$1 opts=$2; shift 2
  if [ -n "$WHEELS" ] && ls "$WHEELS/$pkg"-*.whl >/dev/null 2>&1 \
      && "$PY" -m pip install -q --no-index --no-deps --find-links "$WHEELS" "$pkg"; then
    echo "($pkg from the wheel cache $WHEELS)"
  elif [ -n "$WHEELS" ]; then
    mkdir -p "$WHEELS" && env "$@" "$PY" -m pip wheel -q --no-deps --no-binary "$pkg" $opts -w "$WHEELS" "$pkg" \
      && "$PY" -m pip install -q --no-index --no-deps --find-links "$WHEELS" "$pkg"
  else
    env "$@" "$PY" -m pip install -q --no-binary "$pkg" $opts "$pkg"
  fi
}
# mpi4py against MPICH (not the MPICH wheel of the main venv: h5py and mpi4py must share one MPI)
if ! "$PY" -c "from mpi4py import MPI; import sys; sys.exit('MPICH' not in MPI.Get_library_version())" 2>/dev/null; then
  step mpi4py install_compiled mpi4py "" MPICC=mpicc.mpich
fi
# h5py against the MPICH-parallel HDF5
if ! "$PY" -c "import h5py, sys; sys.exit(not h5py.get_config().mpi)" 2>/dev/null; then
  step h5py install_compiled h5py --no-build-isolation CC=mpicc.mpich HDF5_MPI=ON HDF5_DIR="$HDF5_DIR_MPICH"
fi

# 5. the rest of hpc_rg's dependencies for the simulate path (no torch: simulate never imports it)
if ! "$PY" -c "import hpc_rg, numba, scipy, pytest, pytest_mpi" 2>/dev/null; then
  step deps bash -c "'$PY' -m pip install -q numba scipy pytest pytest-mpi tomli && '$PY' -m pip install -q --no-deps -e ."
fi

"$PY" - <<'PY'
import h5py, mpi4py
from mpi4py import MPI
print(f"h5py {h5py.__version__} (HDF5 {h5py.version.hdf5_version}, mpi={h5py.get_config().mpi}), "
      f"mpi4py {mpi4py.__version__} on {MPI.Get_library_version().splitlines()[0]}")
PY
echo "--- venv ready in $((SECONDS - T0)) s"

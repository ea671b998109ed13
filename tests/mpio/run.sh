#!/usr/bin/env bash
# The collective (driver="mpio") ensemble writer's tests, in the MPI-enabled venv (.venv-mpio), under
# MPICH's own launcher at 2 and 3 ranks (3 ranks over 2 units leaves a rank with nothing to write).
# Builds the venv first if needed (tests/mpio/setup_venv.sh). Any failing pass fails the run; a pass
# that collects no test (pytest exit code 5) fails too.
#
#   tests/mpio/run.sh [extra pytest args]
set -u
cd "$(dirname "$0")/../.."
VENV=${VENV:-.venv-mpio}
export VENV OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONHASHSEED=0
# numba's cache of this venv apart from the main venv's (another numba build), filled once serially below
# so that the ranks do not race on writing it
export NUMBA_CACHE_DIR="$PWD/$VENV/numba-cache"
T0=$SECONDS
failed=()

bash tests/mpio/setup_venv.sh || { echo "FAILED: building $VENV"; exit 1; }
PY="$VENV/bin/python"

run() {  # name, command...
  local name=$1; shift
  echo "=== $name: $*"
  local t0=$SECONDS
  "$@"
  local rc=$?
  echo "=== $name: exit $rc in $((SECONDS - t0)) s"
  [ $rc -eq 0 ] || failed+=("$name (exit $rc)")
}

run numba-warm "$PY" - <<'PY'
import tempfile
from pathlib import Path
from hpc_rg.config import loads
from hpc_rg.mc.stage import run as run_simulate
from hpc_rg.parallel import World
d = Path(tempfile.mkdtemp(prefix="hpc_rg_mpio_warm_"))
text = (f'[job]\nname = "w"\nseed = 1\nout = "{d / "out"}"\n[simulate]\nmodel = "ising2d"\nL = 8\n'
        'temperatures = [2.0, 2.3]\nchains = 2\nthermalize = 4\nsamples = 2\nthin = 2\n'
        'replica_exchange = true\nexchange_every = 2\n')
assert run_simulate(loads(text, d / "job.toml"), World(None, 0, 1)) == 0
import shutil; shutil.rmtree(d)
PY
for n in 2 3; do
  run "mpio-$n" timeout 300 mpiexec.mpich -n $n "$PY" -m pytest --only-mpi -q -x -p no:cacheprovider tests/mpio "$@"
done

echo "=== tests/mpio total: $((SECONDS - T0)) s"
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}"
  exit 1
fi
echo "mpio test passes succeeded"

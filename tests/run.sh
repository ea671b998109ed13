#!/usr/bin/env bash
# The whole suite: serial tests, then the MPI tests under mpiexec at 2 and 4 ranks (as mpi4py-fft does).
# Any failing pass fails the run; an MPI pass that collects no test (pytest exit code 5) fails too.
set -u
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONHASHSEED=0
failed=()

run() {  # name, command...
  local name=$1; shift
  echo "=== $name: $*"
  local t0=$SECONDS
  "$@"
  local rc=$?
  echo "=== $name: exit $rc in $((SECONDS - t0)) s"
  [ $rc -eq 0 ] || failed+=("$name (exit $rc)")
}

# Serial first: it also compiles the numba kernels into their cache, so the MPI ranks do not race on it.
run serial "$BIN/python" -m pytest -m "not mpi and not slurm" -q "$@"
for n in 2 4; do
  run "mpi-$n" "$BIN/mpiexec" -n $n "$BIN/python" -m pytest --only-mpi -q -x tests
done
# Scheduler and parallel-HDF5 passes: they apt-get Debian packages (root), so they run in CI (CI=true)
# or when asked for (HPC_RG_SLURM=1, HPC_RG_MPIO=1).
if [ -n "${CI:-}" ] || [ "${HPC_RG_SLURM:-0}" = 1 ]; then
  slurm_pass() {
    eval "$(bash tests/slurm/up.sh)" || return 1
    "$BIN/python" -m pytest -m slurm -q tests/slurm
    local rc=$?
    bash tests/slurm/down.sh
    return $rc
  }
  run slurm slurm_pass
fi
if [ -n "${CI:-}" ] || [ "${HPC_RG_MPIO:-0}" = 1 ]; then
  run mpio bash tests/mpio/run.sh
fi

if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}"
  exit 1
fi
echo "all test passes succeeded"

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
if [ -x tests/slurm/up.sh ] && [ "${HPC_RG_SKIP_SLURM:-0}" != 1 ]; then
  run slurm bash tests/slurm/run_slurm_tests.sh
fi

if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}"
  exit 1
fi
echo "all test passes succeeded"

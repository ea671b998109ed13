#!/usr/bin/env bash
# Stop exactly the daemons tests/slurm/up.sh started under DIR (by their pid files), then remove DIR.
#   tests/slurm/down.sh [DIR]        (default: $HPC_RG_SLURM_DIR)
#   KEEP=1 tests/slurm/down.sh DIR   keeps DIR (logs) for inspection
set -uo pipefail
DIR=${1:-${HPC_RG_SLURM_DIR:-}}
if [[ -z "$DIR" || ! -f "$DIR/slurm.conf" ]]; then
    echo "down.sh: no up.sh folder given (argument or HPC_RG_SLURM_DIR)" >&2
    exit 2
fi
stop() {    # stop <pid file>: TERM, wait up to 10 s, then KILL
    local pidfile=$1 pid
    [[ -s "$pidfile" ]] || return 0
    pid=$(<"$pidfile")
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
}
# Jobs first, while the controller can still clean them up.
SLURM_CONF="$DIR/slurm.conf" scancel --quiet --user="$(id -un)" 2>/dev/null || true
stop "$DIR/run/slurmd.pid"
stop "$DIR/run/slurmctld.pid"
stop "$DIR/run/munged.pid"
if [[ "${KEEP:-0}" != 1 ]]; then
    rm -rf "$DIR"
fi
echo "down.sh: stopped the Slurm under $DIR" >&2

#!/usr/bin/env bash
# Start a private one-node Slurm (munged + slurmctld + slurmd) for the `slurm` tests.
#
#   eval "$(tests/slurm/up.sh [DIR])"      # exports HPC_RG_SLURM_CONF, SLURM_CONF, HPC_RG_SLURM_DIR
#   pytest -m slurm tests/slurm
#   tests/slurm/down.sh "$HPC_RG_SLURM_DIR"
#
# Everything (slurm.conf, munge key and socket, state, spool, logs, pid files) lives under DIR, a fresh
# temporary folder by default; nothing under /etc is used or changed, so it runs beside a site Slurm.
# Installs Debian's slurmctld slurmd slurm-client munge with apt-get when they are absent (needs root).
# Stdout carries only the `export` lines; progress goes to stderr.
set -euo pipefail

log() { echo "up.sh: $*" >&2; }

need=()
for exe in slurmctld slurmd sbatch munged; do command -v "$exe" >/dev/null || need+=("$exe"); done
if ((${#need[@]})); then
    log "installing slurmctld slurmd slurm-client munge (missing: ${need[*]})"
    export DEBIAN_FRONTEND=noninteractive
    apt_install() { apt-get install -y -q --no-install-recommends slurmctld slurmd slurm-client munge >&2; }
    apt_install || { apt-get update -q >&2 && apt_install; }
fi

DIR=${1:-$(mktemp -d "${TMPDIR:-/tmp}/hpc_rg_slurm.XXXXXX")}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
mkdir -p "$DIR"/{munge,state,spool,log,run}
chmod 700 "$DIR/munge"    # munged refuses a key or socket in a group/world-writable folder

# A free TCP port pair for the controller and the node daemon (the defaults 6817/6818 may be taken).
read -r CTLD_PORT SLURMD_PORT < <(python3 - <<'PY'
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
PY
)

HOST=$(hostname -s)
CPUS=$(getconf _NPROCESSORS_ONLN)   # not nproc: it honours OMP_NUM_THREADS, which the test runner sets to 1
MEM_MB=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
USER_NAME=$(id -un)
MUNGE_SOCKET="$DIR/munge/munge.socket"

if [[ ! -s "$DIR/munge/munge.key" ]]; then
    dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
    chmod 400 "$DIR/munge/munge.key"
fi

cat >"$DIR/slurm.conf" <<CONF
# One-node test cluster written by tests/slurm/up.sh
ClusterName=hpcrgtest
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=$USER_NAME
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire also delays the restart of a requeued job (default 120 s)
AuthInfo=socket=$MUNGE_SOCKET,cred_expire=5
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool/slurmd.%n
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MpiDefault=pmi2
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
# quick turnaround of requeued and dependent jobs in tests
SchedulerParameters=sched_interval=1,bf_interval=1
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobRequeue=1
# reject at submission what the node can never run (instead of pending forever)
EnforcePartLimits=ALL
ReturnToService=2
MinJobAge=600
KillWait=10
InactiveLimit=0
MailProg=/bin/true
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
export SLURM_CONF="$DIR/slurm.conf"

start_ns=$(date +%s%N)
munged --force --key-file="$DIR/munge/munge.key" --socket="$MUNGE_SOCKET" \
    --pid-file="$DIR/run/munged.pid" --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/munged.seed"
slurmctld -f "$SLURM_CONF"          # daemonizes and writes its pid file
slurmd -f "$SLURM_CONF"

for _ in $(seq 100); do
    if scontrol ping >/dev/null 2>&1 && sinfo -h -o '%t' 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then
        log "Slurm up in $(( ($(date +%s%N) - start_ns) / 1000000 )) ms under $DIR ($CPUS CPUs, ports $CTLD_PORT/$SLURMD_PORT)"
        echo "export SLURM_CONF=$DIR/slurm.conf"
        echo "export HPC_RG_SLURM_CONF=$DIR/slurm.conf"
        echo "export HPC_RG_SLURM_DIR=$DIR"
        exit 0
    fi
    sleep 0.2
done
log "Slurm did not come up within 20 s; logs under $DIR/log:"
tail -n 20 "$DIR"/log/*.log >&2 || true
exit 1

#!/usr/bin/env bash
# Submit a job's stages as a chain of Slurm jobs: simulate -> train -> analyze, each starting only after
# the previous one ended successfully (--dependency=afterok). A stage that hits its time limit requeues
# itself under the same job id, so the chain waits through requeues; a stage that fails cancels the rest.
#
#   slurm/pipeline.sh [--gpu] [--stages simulate,analyze] [sbatch options...] JOB.toml
#
# Stages default to those the job names (`[job] stages`, else the tables present). sbatch options (e.g.
# --partition=..., --account=..., --time=...) go to every stage; per-stage resources are in the templates.
# Prints one line per submitted stage: "<stage> <jobid>"; the last id is the whole pipeline's end.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=${HPC_RG_VENV:-$(cd "$HERE/.." && pwd)/.venv}/bin/python

gpu=0 stages= opts=()
while (($# > 1)); do
    case $1 in
        --gpu) gpu=1 ;;
        --stages) stages=$2; shift ;;
        --stages=*) stages=${1#--stages=} ;;
        *) opts+=("$1") ;;
    esac
    shift
done
JOB=${1:?usage: slurm/pipeline.sh [--gpu] [--stages a,b] [sbatch options...] JOB.toml}
JOB=$(cd "$(dirname "$JOB")" && pwd)/$(basename "$JOB")   # jobs may start from another folder

# Validates the job file before anything is queued; gives the job's stages and run folder.
read -r job_stages OUT < <("$PY" -c 'import sys; from hpc_rg.config import load
c = load(sys.argv[1]); print(",".join(c.stages), c.out)' "$JOB")
stages=${stages:-$job_stages}

dep=()
IFS=, read -ra list <<<"$stages"
for stage in "${list[@]}"; do
    case $stage in
        simulate) template=simulate.sbatch ;;
        train) template=$([[ $gpu == 1 ]] && echo train_gpu.sbatch || echo train.sbatch) ;;
        analyze) template=analyze.sbatch ;;
        report) template= ;;
        *) echo "pipeline.sh: unknown stage '$stage'" >&2; exit 2 ;;
    esac
    if [[ -n $template ]]; then
        id=$(sbatch --parsable "${dep[@]}" --kill-on-invalid-dep=yes "${opts[@]}" "$HERE/$template" "$JOB")
    else                              # the report is one short serial process over the run folder
        venv=${HPC_RG_VENV:-$(cd "$HERE/.." && pwd)/.venv}
        id=$(sbatch --parsable "${dep[@]}" --kill-on-invalid-dep=yes --job-name=hpc-rg-report --ntasks=1 \
            --time=00:30:00 --output=%x-%j.out "${opts[@]}" \
            --wrap "exec '$venv/bin/hpc-rg' report '$OUT'")
    fi
    id=${id%%;*}                      # --parsable prints "id[;cluster]"
    echo "$stage $id"
    dep=(--dependency=afterok:"$id")
done

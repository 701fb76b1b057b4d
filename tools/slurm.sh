#!/usr/bin/env bash
# Launch training or testing on a Slurm cluster with srun (one task per GPU).
#
#   tools/slurm.sh train|test PARTITION JOB_NAME CONFIG GPUS [extra args]
#
# Environment: GPUS_PER_NODE (8, capped by GPUS), CPUS_PER_TASK (8), SRUN_ARGS (extra
# srun options), DEEPSPEED (zero2 | zero3 | none | path; default zero2), PYTHON.
#
# Signals: this script becomes srun (exec), which forwards the signals it receives (SIGTERM, SIGHUP, ...) to every
# task and waits for them; Ctrl-C prints the tasks' state, twice within a second interrupts them (srun's rules).
# The tasks are slurmstepd's children, not srun's: should srun die without forwarding (SIGKILL), end them with
# `scancel JOBID`.
set -euo pipefail

if [[ $# -lt 5 || ( "$1" != train && "$1" != test ) ]]; then
    echo "usage: $0 train|test PARTITION JOB_NAME CONFIG GPUS [args...]" >&2
    exit 2
fi
MODE=$1
PARTITION=$2
JOB_NAME=$3
CONFIG=$4
GPUS=$5
shift 5
if ! [[ "$GPUS" =~ ^[1-9][0-9]*$ ]]; then
    echo "$0: GPUS must be a whole number of tasks (one per GPU), at least 1; got '$GPUS'" >&2
    exit 2
fi
if [[ ! -f "$CONFIG" ]]; then
    echo "$0: config not found: $CONFIG" >&2
    exit 2
fi

ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "$ROOT/.venv/bin/python" ]]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
(( GPUS < GPUS_PER_NODE )) && GPUS_PER_NODE=$GPUS
CPUS_PER_TASK=${CPUS_PER_TASK:-8}
DEEPSPEED=${DEEPSPEED:-zero2}

extra=()
if [[ "$MODE" == train && "$DEEPSPEED" != none ]]; then
    extra+=(--deepspeed "$DEEPSPEED")
fi

export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
# shellcheck disable=SC2086  # SRUN_ARGS holds several options on purpose
exec srun -p "$PARTITION" --job-name="$JOB_NAME" \
    --gres=gpu:"$GPUS_PER_NODE" --ntasks="$GPUS" --ntasks-per-node="$GPUS_PER_NODE" \
    --cpus-per-task="$CPUS_PER_TASK" --kill-on-bad-exit=1 ${SRUN_ARGS:-} \
    "$PYTHON" -u "$ROOT/tools/$MODE.py" "$CONFIG" --launcher slurm "${extra[@]}" "$@"

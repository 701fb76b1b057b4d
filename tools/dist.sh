#!/usr/bin/env bash
# Launch training, testing or scene inference on one or several nodes with torchrun.
#
#   tools/dist.sh train CONFIG GPUS [extra args for tools/train.py]
#   tools/dist.sh test  CONFIG GPUS [--checkpoint CKPT] [extra args for tools/test.py]
#   tools/dist.sh infer CONFIG_OR_HF GPUS --scene SCENE ... [extra args for tools/infer_scene.py]
#
# GPUS is the number of processes on this node (CPU processes when the machine
# has no CUDA device: gloo, fp32, plain optimizer wrapper, chosen by the tools).
# Environment:
#   NNODES (1), NODE_RANK (0), MASTER_ADDR (127.0.0.1), PORT (29500)
#   DEEPSPEED  zero2 | zero3 | none | path/to/ds.json  (default: zero2 with CUDA, none without)
#   PYTHON     interpreter (default: the project's .venv when present, else python3)
#
# Signals: this script becomes torchrun (exec), which starts each worker in a session of its own. torchrun
# forwards SIGTERM, SIGINT, SIGHUP and SIGQUIT to every worker's process group and waits for the workers
# (TORCH_ELASTIC_SHUTDOWN_TIMEOUT seconds, 30 by default, then SIGKILL). A launcher that dies without
# forwarding (SIGKILL of its process group, the OOM killer) takes its workers with it: each worker is started
# through projects/earthmind/engine/worker_entry.py, which has the kernel send it SIGTERM when torchrun dies.
set -euo pipefail

if [[ $# -lt 3 || ( "$1" != train && "$1" != test && "$1" != infer ) ]]; then
    echo "usage: $0 train|test|infer CONFIG GPUS [args...]" >&2
    exit 2
fi
MODE=$1
CONFIG=$2
GPUS=$3
shift 3
if ! [[ "$GPUS" =~ ^[1-9][0-9]*$ ]]; then
    echo "$0: GPUS must be a whole number of processes on this node, at least 1; got '$GPUS'" >&2
    exit 2
fi
if [[ ! -e "$CONFIG" ]]; then
    echo "$0: config not found: $CONFIG" >&2
    exit 2
fi

ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "$ROOT/.venv/bin/python" ]]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
PORT=${PORT:-29500}

if [[ "$("$PYTHON" -c 'import torch; print(int(torch.cuda.is_available()))')" == 1 ]]; then
    DEEPSPEED=${DEEPSPEED:-zero2}
else
    export DS_ACCELERATOR=cpu
    DEEPSPEED=${DEEPSPEED:-none}
fi

SCRIPT=$MODE.py
if [[ "$MODE" == infer ]]; then SCRIPT=infer_scene.py; fi
extra=()
if [[ "$MODE" == train && "$DEEPSPEED" != none ]]; then
    extra+=(--deepspeed "$DEEPSPEED")
fi

export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
# exec keeps this PID for torchrun: the workers check that it is still their ancestor once tied to it.
export EARTHMIND_LAUNCHER_PID=$$
exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" --node_rank="$NODE_RANK" --nproc_per_node="$GPUS" \
    --master_addr="$MASTER_ADDR" --master_port="$PORT" \
    --signals-to-handle=SIGTERM,SIGINT,SIGHUP,SIGQUIT \
    --module projects.earthmind.engine.worker_entry \
    "$ROOT/tools/$SCRIPT" "$CONFIG" --launcher pytorch "${extra[@]}" "$@"

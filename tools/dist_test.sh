#!/usr/bin/env bash
# Distributed testing with torchrun.
#   tools/dist_test.sh CONFIG CHECKPOINT [GPUS] [test.py options]
# GPUS omitted: the GPUs torch (else nvidia-smi) sees, 1 process on a CPU-only machine.
set -e
if [ $# -lt 2 ]; then
    echo "usage: $0 CONFIG CHECKPOINT [GPUS] [tools/test.py options]" >&2
    exit 2
fi
source "$(dirname "$0")/dist_utils.sh"
PY=${PYTHON:-python}
CONFIG=$1
CHECKPOINT=$2
if [ $# -ge 3 ] && is_count "$3"; then
    GPUS=$3
    shift 3
else
    GPUS=$(detect_num_procs "$PY")
    shift 2
fi
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}

PYTHONPATH="$(dirname "$0")/..":$PYTHONPATH \
"$PY" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    "$(dirname "$0")/test.py" \
    "$CONFIG" \
    "$CHECKPOINT" \
    --launcher pytorch "$@"

#!/usr/bin/env bash
# Shared by tools/dist_train.sh and tools/dist_test.sh (sourced, not run).
#
# detect_num_procs PYTHON: prints the number of processes to launch when the caller gave none:
# the CUDA devices torch sees (torch.cuda.device_count(), which honours CUDA_VISIBLE_DEVICES);
# only when torch cannot be asked, the GPUs `nvidia-smi -L` lists; 0 GPUs -> 1 (a CPU-only machine: one process; give the count
# to run several gloo processes on CPU). Like the seed's experiments/scripts/train_ddp.sh, which
# takes `nvidia-smi -L | wc -l` when NUM_GPUS is omitted.
detect_num_procs() {
    local python=$1 n=""
    n=$("$python" -c 'import torch; print(torch.cuda.device_count())' 2>/dev/null | tail -n1) || n=""
    if ! [[ "$n" =~ ^[0-9]+$ ]]; then
        n=""
        if command -v nvidia-smi >/dev/null 2>&1; then
            n=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true)
        fi
    fi
    if ! [[ "$n" =~ ^[0-9]+$ ]] || [ "$n" -lt 1 ]; then
        echo "$(basename "$0"): no GPU found: launching 1 process on CPU (give the process" \
             "count to run more, e.g. $(basename "$0") ... 2)" >&2
        n=1
    fi
    echo "$n"
}

# is_count ARG: true when ARG is a positive integer (a process count, not an option or path)
is_count() {
    [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -ge 1 ]
}

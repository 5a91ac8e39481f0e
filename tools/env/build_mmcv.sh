#!/usr/bin/env bash
# Build (or reuse from the cache) an mmcv wheel with compiled ops for the torch in the active env,
# and install it unless the installed mmcv already is what is asked for.
#
# mmcv 2.1.0 ships no wheel for torch 2.14 and its setup.py hard-codes -std=c++17, while
# torch 2.14's headers need C++20; we patch that flag in a private copy of the sdist.
#
# CPU or CUDA ops: mmcv's setup.py compiles CUDA ops whenever torch.cuda.is_available(),
# whatever FORCE_CUDA says. So:
#   * without FORCE_CUDA=1 the build runs with the GPUs hidden (CUDA_VISIBLE_DEVICES=): CPU ops,
#     no nvcc needed, on any machine;
#   * FORCE_CUDA=1 builds the CUDA ops too (nvcc matching torch.version.cuda) for the
#     architectures in TORCH_CUDA_ARCH_LIST, or, when it is unset, those of the visible GPUs
#     (with none visible and no TORCH_CUDA_ARCH_LIST it stops with one line); after installing it
#     checks mmcv.ops.get_compiling_cuda_version().
# The wheel is cached under $MONODLE_CACHE (default ~/.cache/monodle_plugin/wheels), keyed by
# Python, torch and CPU / CUDA version + architectures (e.g. py311-torch2.14.1-cpu,
# py311-torch2.14.1-cuda13.0-arch8.0_9.0): a CPU wheel is never used for a FORCE_CUDA request.
# The key of the wheel installed last is kept in <env>/.monodle_plugin_mmcv_key; an installed mmcv
# with ops is kept for a CPU request, and for a FORCE_CUDA request only when it was installed
# from the same key and has CUDA ops.
#
# Usage: tools/env/build_mmcv.sh [--plan] [MMCV_VERSION]   (FORCE_CUDA=1 for the CUDA ops)
#   --plan: print the decisions (key, cache folder, GPUs hidden or not, keep / install / build)
#           and stop: nothing is built, installed or written.
set -euo pipefail
plan_only=0
if [ "${1:-}" = "--plan" ]; then plan_only=1; shift; fi
MMCV_VERSION=${1:-2.1.0}
PY=${PYTHON:-python}
CACHE_ROOT=${MONODLE_CACHE:-$HOME/.cache/monodle_plugin}
log() { echo "[build_mmcv] $*"; }
force_cuda=0
if [ "${FORCE_CUDA:-0}" = "1" ]; then force_cuda=1; fi

# key (line 1), architectures to build for (line 2, CUDA only), GPUs visible now (line 3);
# a FORCE_CUDA request that cannot be built exits 1 with one line.
plan=$(MONODLE_FORCE_CUDA=$force_cuda "$PY" - <<'PY'
import os
import re
import sys

import torch

v = sys.version_info
key = f'py{v.major}{v.minor}-torch{torch.__version__.split("+")[0]}'
visible = torch.cuda.is_available()
archs = ''
if os.environ['MONODLE_FORCE_CUDA'] != '1':
    key += '-cpu'
else:
    if not torch.version.cuda:
        sys.exit(f'[build_mmcv] ERROR: FORCE_CUDA=1 but torch {torch.__version__} is a CPU '
                 'build: install the CUDA build of torch/torchvision first, then '
                 'FORCE_CUDA=1 make env')
    archs = os.environ.get('TORCH_CUDA_ARCH_LIST', '').strip()
    if not archs:
        if not visible:
            sys.exit('[build_mmcv] ERROR: FORCE_CUDA=1 but no GPU is visible to take the CUDA '
                     'architectures from: set TORCH_CUDA_ARCH_LIST, e.g. '
                     'TORCH_CUDA_ARCH_LIST="8.0;9.0" FORCE_CUDA=1 make env')
        # as torch's extension builder picks them: the visible GPUs', PTX for the newest
        found = sorted({torch.cuda.get_device_capability(i)
                        for i in range(torch.cuda.device_count())})
        archs = ';'.join(f'{major}.{minor}' for major, minor in found) + '+PTX'
    tag = '_'.join(sorted(set(re.split(r'[;\s]+', archs)) - {''}))
    key += f'-cuda{torch.version.cuda}-arch{re.sub(r"[^A-Za-z0-9.+_]", "_", tag)}'
print(key)
print(archs)
print(int(visible))
PY
)
key=$(sed -n 1p <<< "$plan")
archs=$(sed -n 2p <<< "$plan")
gpus_visible=$(sed -n 3p <<< "$plan")
wheel_dir="$CACHE_ROOT/wheels/mmcv-$MMCV_VERSION-$key"
marker="$("$PY" -c 'import sys; print(sys.prefix)')/.monodle_plugin_mmcv_key"

# what is installed: nothing usable / mmcv with CPU ops / mmcv with CUDA ops
installed=$("$PY" - "$MMCV_VERSION" 2>/dev/null <<'PY' || echo none
import sys

import mmcv
import mmcv.ops
from mmcv.ops import get_compiling_cuda_version

assert mmcv.__version__ == sys.argv[1]
print('cpu' if get_compiling_cuda_version() == 'not available' else 'cuda')
PY
)
if [ "$installed" = "none" ]; then
  action=install
elif [ $force_cuda = 0 ]; then
  action=keep  # CPU or CUDA ops: both run everything a CPU request needs
elif [ "$installed" = "cuda" ] && [ -f "$marker" ] && [ "$(cat "$marker")" = "$key" ]; then
  action=keep
else
  action=install  # e.g. the CPU wheel of an earlier `make env`: FORCE_CUDA asks for CUDA ops
fi
if [ $action = install ] && ! ls "$wheel_dir"/mmcv-*.whl >/dev/null 2>&1; then action=build; fi
# the environment of mmcv's setup.py: the GPUs hidden unless FORCE_CUDA=1 (see the top)
build_env=(MMCV_WITH_OPS=1 "MAX_JOBS=${MAX_JOBS:-$(nproc)}")
if [ $force_cuda = 1 ]; then
  build_env+=(FORCE_CUDA=1 "TORCH_CUDA_ARCH_LIST=$archs")
else
  build_env+=(FORCE_CUDA=0 CUDA_VISIBLE_DEVICES=)
fi

if [ $plan_only = 1 ]; then
  echo "key: $key"
  echo "wheel cache: $wheel_dir"
  echo "build env: ${build_env[*]}"
  echo "installed: $installed"
  echo "action: $action"
  exit 0
fi
if [ $force_cuda = 0 ] && [ "$gpus_visible" = 1 ] && [ $action != keep ]; then
  log "CUDA is available but FORCE_CUDA is not 1: mmcv gets CPU ops only (enough for" \
      "everything but --sync_bn mmcv, see docs/en/installation.md, 'GPU machines'); FORCE_CUDA=1 make env for" \
      "the CUDA ops"
fi
if [ $action = keep ]; then
  log "mmcv $MMCV_VERSION with $installed ops already installed"
  exit 0
fi

if [ $action = build ]; then
  log "no cached wheel for $key: building mmcv $MMCV_VERSION with ops (${build_env[*]};" \
      "a long compile)"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  "$PY" -m pip download -q --no-deps --no-binary :all: --no-build-isolation \
      "mmcv==$MMCV_VERSION" -d "$work" 2>&1 | grep -v 'is ignored' || true
  tar xzf "$work/mmcv-$MMCV_VERSION.tar.gz" -C "$work"
  src="$work/mmcv-$MMCV_VERSION"
  # torch>=2.10 headers use C++20 features; mmcv 2.1.0 asks for C++17.
  sed -i "s/-std=c++17/-std=c++20/g; s#/std:c++17#/std:c++20#g" "$src/setup.py"
  mkdir -p "$wheel_dir.tmp" "$CACHE_ROOT"
  build_log="$CACHE_ROOT/build-mmcv-$MMCV_VERSION-$key.log"
  if ! (cd "$src" && env "${build_env[@]}" "$PY" -m pip wheel --no-deps --no-build-isolation \
        . -w "$wheel_dir.tmp") >"$build_log" 2>&1; then
    tail -n 40 "$build_log"
    echo "[build_mmcv] ERROR: the mmcv build failed; full log: $build_log" >&2
    exit 1
  fi
  rm -rf "$wheel_dir" && mv "$wheel_dir.tmp" "$wheel_dir"
  log "cached $(ls "$wheel_dir")"
else
  log "using cached wheel in $wheel_dir"
fi
"$PY" -m pip install -q --no-deps --force-reinstall "$wheel_dir"/mmcv-*.whl 2>&1 \
  | { grep -v 'is ignored' || true; }
echo "$key" > "$marker"
if [ $force_cuda = 1 ]; then
  cuda_ops=$("$PY" -c "from mmcv.ops import get_compiling_cuda_version as v; print(v())")
  if [ "$cuda_ops" = "not available" ]; then
    rm -f "$marker"
    echo "[build_mmcv] ERROR: FORCE_CUDA=1 but the mmcv installed from $wheel_dir has no CUDA" \
         "ops (get_compiling_cuda_version: not available): delete that folder and rerun" \
         "FORCE_CUDA=1 make env" >&2
    exit 1
  fi
  log "mmcv ops compiled with CUDA $cuda_ops"
fi

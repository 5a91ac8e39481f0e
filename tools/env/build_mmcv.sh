#!/usr/bin/env bash
# Build (or reuse from the cache) an mmcv wheel with compiled ops for the torch in the active env.
#
# mmcv 2.1.0 ships no wheel for torch 2.14 and its setup.py hard-codes -std=c++17, while
# torch 2.14's headers need C++20; we patch that flag in a private copy of the sdist.
# The wheel is cached under $MONODLE_CACHE (default ~/.cache/monodle_plugin/wheels), keyed by
# Python version, torch version and CPU/CUDA, so a second set-up takes seconds.
#
# Usage: tools/env/build_mmcv.sh [MMCV_VERSION]   (FORCE_CUDA=1 for the CUDA ops)
set -euo pipefail
MMCV_VERSION=${1:-2.1.0}
PY=${PYTHON:-python}
CACHE_ROOT=${MONODLE_CACHE:-$HOME/.cache/monodle_plugin}
key=$($PY - <<'PY'
import os, sys, torch
cuda = 'cuda' + (torch.version.cuda or 'none') if os.environ.get('FORCE_CUDA') == '1' else 'cpu'
print(f'py{sys.version_info.major}{sys.version_info.minor}-torch{torch.__version__.split("+")[0]}-{cuda}')
PY
)
wheel_dir="$CACHE_ROOT/wheels/mmcv-$MMCV_VERSION-$key"
if ls "$wheel_dir"/mmcv-*.whl >/dev/null 2>&1; then
  echo "[build_mmcv] using cached wheel in $wheel_dir"
else
  echo "[build_mmcv] no cached wheel for $key: building mmcv $MMCV_VERSION with ops (10-20 min on 2 cores)"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  $PY -m pip download -q --no-deps --no-binary :all: --no-build-isolation \
      "mmcv==$MMCV_VERSION" -d "$work" 2>&1 | grep -v 'is ignored' || true
  tar xzf "$work/mmcv-$MMCV_VERSION.tar.gz" -C "$work"
  src="$work/mmcv-$MMCV_VERSION"
  # torch>=2.10 headers use C++20 features; mmcv 2.1.0 asks for C++17.
  sed -i "s/-std=c++17/-std=c++20/g; s#/std:c++17#/std:c++20#g" "$src/setup.py"
  mkdir -p "$wheel_dir.tmp" "$CACHE_ROOT"
  build_log="$CACHE_ROOT/build-mmcv-$MMCV_VERSION-$key.log"
  if ! (cd "$src" && MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
        $PY -m pip wheel --no-deps --no-build-isolation . -w "$wheel_dir.tmp") >"$build_log" 2>&1; then
    tail -n 40 "$build_log"
    echo "[build_mmcv] ERROR: the mmcv build failed; full log: $build_log" >&2
    exit 1
  fi
  rm -rf "$wheel_dir" && mv "$wheel_dir.tmp" "$wheel_dir"
  echo "[build_mmcv] cached $(ls "$wheel_dir")"
fi
$PY -m pip install -q --no-deps --force-reinstall "$wheel_dir"/mmcv-*.whl 2>&1 | { grep -v 'is ignored' || true; }

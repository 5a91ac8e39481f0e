#!/usr/bin/env bash
# One-command environment for monodle_plugin (idempotent; `make env` calls it).
#
#  * uses the active virtual environment / conda env if there is one, else creates .venv/ at the
#    repository root;
#  * keeps an installed torch + torchvision (CUDA builds included) when torch >= 2.0 imports with
#    a working torchvision, else installs requirements/torch.txt;
#  * installs the pinned runtime + test dependencies (requirements/constraints.txt is the single
#    source of versions), mmdet/mmdet3d without their unneeded extras (open3d, tensorboard), and
#    mmcv 2.1.0 with compiled ops from the wheel cache (built once: a long compile);
#  * installs this package in editable mode and runs the one-line environment self-check.
#
# Optional extras: EXTRAS="backbones deploy" make env (see step 3b; `make test` installs the
# ones the tests use).
#
# GPU machines: install your CUDA torch first (or keep it), then `FORCE_CUDA=1 make env` builds
# mmcv's CUDA ops too (needs nvcc matching torch.version.cuda; TORCH_CUDA_ARCH_LIST, e.g.
# "8.0;9.0", on a build node without a visible GPU); without FORCE_CUDA=1 mmcv gets CPU ops, built
# with the GPUs hidden (tools/env/build_mmcv.sh). The wheel cache key and the stamp below include
# FORCE_CUDA and TORCH_CUDA_ARCH_LIST, so CPU and CUDA wheels live side by side.
#
# `tools/env/setup_env.sh --stamp-hash` prints the stamp's hash for the current checkout and
# variables and stops (nothing is created or installed).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
log() { echo "[setup_env] $*"; }

# the mmcv variant asked for: CPU ops, or CUDA ops for TORCH_CUDA_ARCH_LIST (build_mmcv.sh)
if [ "${FORCE_CUDA:-0}" = "1" ]; then
  mmcv_request="FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-}"
else
  mmcv_request="FORCE_CUDA=0"
fi
env_hash=$( { echo "$root"; echo "$mmcv_request"; cat requirements/*.txt \
  requirements/extras/*.txt setup.py pyproject.toml tools/env/setup_env.sh \
  tools/env/build_mmcv.sh 2>/dev/null; } | sha256sum | cut -c1-16)
if [ "${1:-}" = "--stamp-hash" ]; then echo "$env_hash"; exit 0; fi

if [ -n "${VIRTUAL_ENV:-}" ] || [ -n "${CONDA_PREFIX:-}" ]; then
  PY=$(command -v python)
  log "using the active environment: $PY"
else
  if [ ! -x .venv/bin/python ]; then
    log "creating .venv with $(command -v python3)"
    python3 -m venv .venv
  fi
  PY="$root/.venv/bin/python"
fi
export PYTHON="$PY"

# 0. fast path: a stamp written by the last complete run of this script in this environment
#    holds a hash of everything that decides its outcome (env_hash above: this checkout's path,
#    the mmcv variant (FORCE_CUDA, TORCH_CUDA_ARCH_LIST), the requirements, constraints and
#    extras files, setup.py / pyproject.toml, this script and build_mmcv.sh) and the extras it
#    installed. When the hash matches, the extras asked for now were installed then, and the
#    one-line self-check passes (under FORCE_CUDA=1: with mmcv's CUDA ops), nothing is
#    reinstalled (seconds instead of a minute of pip). FORCE_ENV=1 (or deleting the stamp)
#    forces the full run.
stamp="$("$PY" -c 'import sys; print(sys.prefix)')/.monodle_plugin_env_stamp"
want_extras=$(echo "${EXTRAS:-}" | tr ', ' '\n\n' | sed '/^$/d' | sort -u | tr '\n' ' ')
if [ -z "${FORCE_ENV:-}" ] && [ -f "$stamp" ] && [ "$(sed -n 1p "$stamp")" = "$env_hash" ]; then
  have_extras=" $(sed -n 2p "$stamp") "
  missing=""
  for extra in $want_extras; do
    case "$have_extras" in *" $extra "*) ;; *) missing="$missing $extra" ;; esac
  done
  # ENV_SELF_CHECK=0 (make demo): skip the self-check (5 s of imports); every tool runs the
  # same check first and names `make env` as the fix, which then runs it (no ENV_SELF_CHECK).
  if [ -z "$missing" ] && { [ "${ENV_SELF_CHECK:-1}" = 0 ] ||
      "$PY" -c "from monodle_plugin.utils.env_check import main; main()" >/dev/null; }; then
    log "environment up to date ($stamp; FORCE_ENV=1 make env reinstalls)"
    exit 0
  fi
fi
rm -f "$stamp"
# pip, minus this machine's noise about absent local indexes; pip's exit status is kept (pipefail).
pipq() { "$PY" -m pip "$@" 2>&1 | { grep -v -E "is ignored: it is neither|^\s*$" || true; }; }
"$PY" -m pip --version >/dev/null

# 1. torch / torchvision: keep a working install, else the tested pins.
constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
if "$PY" - <<'PY' 2>/dev/null
import torch, torchvision  # noqa: F401  (torchvision must import: ultralytics needs it)
major, minor = (int(x) for x in torch.__version__.split('.')[:2])
raise SystemExit(0 if (major, minor) >= (2, 0) else 1)
PY
then
  log "keeping installed torch $("$PY" -c 'import torch; print(torch.__version__)')"
  grep -v -E '^(torch|torchvision)==' requirements/constraints.txt > "$constraints"
else
  log "installing torch/torchvision from requirements/torch.txt"
  cp requirements/constraints.txt "$constraints"
  pipq install -q -r requirements/torch.txt
  "$PY" -c "import torch, torchvision" || { log "ERROR: torch/torchvision do not import"; exit 1; }
fi

# 2. pinned runtime + test dependencies, then mmdet/mmdet3d without their extras.
log "installing pinned dependencies"
pipq install -q -c "$constraints" -r requirements/runtime.txt -r requirements/tests.txt
pipq install -q --no-deps -c "$constraints" mmdet==3.3.0 mmdet3d==1.4.0

# 3. mmcv with compiled ops (cached wheel; setuptools<70 because mmcv 2.1.0's setup.py needs
#    pkg_resources-era setuptools, installed after torch, which itself asks for >=77).
#    build_mmcv.sh keeps an installed mmcv 2.1.0 with ops unless FORCE_CUDA=1 asks for CUDA ops
#    it lacks (or for other architectures), and builds with the GPUs hidden unless FORCE_CUDA=1.
# (pip reports torch's setuptools>=77 wish as a conflict; harmless: only torch's C++ extension
# builder uses setuptools, and mmcv's build needs the old one.)
pipq install -q "setuptools<70" wheel ninja
bash tools/env/build_mmcv.sh 2.1.0

# 3b. optional extras, only when asked: EXTRAS="backbones deploy" (space or comma separated).
#     Each NAME installs requirements/extras/NAME.txt pinned by the constraints, then
#     requirements/extras/NAME-nodeps.txt (if present) with --no-deps. `make test` asks for the
#     extras the test suite uses.
for extra in $(echo "${EXTRAS:-}" | tr ',' ' '); do
  req="requirements/extras/$extra.txt"
  nodeps="requirements/extras/$extra-nodeps.txt"
  if [ ! -f "$req" ] && [ ! -f "$nodeps" ]; then
    log "ERROR: unknown extra '$extra' (EXTRAS): no $req; known: $(ls requirements/extras \
      | sed -e 's/-nodeps//' -e 's/\.txt$//' | sort -u | tr '\n' ' ')"
    exit 1
  fi
  log "installing extra '$extra'"
  if [ -f "$req" ]; then pipq install -q -c "$constraints" -r "$req"; fi
  if [ -f "$nodeps" ]; then pipq install -q --no-deps -c "$constraints" -r "$nodeps"; fi
done

# Extras that depend on torch make pip honour torch's setuptools>=77 wish, which drops
# pkg_resources (mmengine resolves `pkg::` configs with it): back to the pin of step 3.
if [ -n "${EXTRAS:-}" ]; then pipq install -q "setuptools<70"; fi

# 4. this package (editable, no dependency resolution: everything is pinned above).
pipq install -q --no-deps --no-build-isolation -e .

# 5. self-check: one clear line if anything is wrong.
"$PY" -c "from monodle_plugin.utils.env_check import main; main()"
"$PY" -c "import mmdet3d.evaluation, mmcv.ops, ultralytics, monodle_plugin"
log "OK: mmdet3d.evaluation, mmcv.ops, ultralytics, monodle_plugin import"
# the extras of this run and of the previous complete one (if the hash is the same) stay listed
printf '%s\n%s\n' "$env_hash" "$want_extras" > "$stamp"


#!/usr/bin/env bash
# One-command environment for monodle_plugin (idempotent; `make env` calls it).
#
#  * uses the active virtual environment / conda env if there is one, else creates .venv/ at the
#    repository root;
#  * keeps an installed torch + torchvision (CUDA builds included) when torch >= 2.0 imports with
#    a working torchvision, else installs requirements/torch.txt;
#  * installs the pinned runtime + test dependencies (requirements/constraints.txt is the single
#    source of versions), mmdet/mmdet3d without their unneeded extras (open3d, tensorboard), and
#    mmcv 2.1.0 with compiled ops from the wheel cache (built once, ~15 min on 2 cores);
#  * installs this package in editable mode and runs the one-line environment self-check.
#
# Optional extras: EXTRAS="backbones deploy" make env (see step 3b; `make test` installs the
# ones the tests use).
#
# GPU machines: install your CUDA torch first (or keep it), then `FORCE_CUDA=1 make env` builds
# mmcv's CUDA ops too (needs nvcc matching torch.version.cuda); the cache key includes the CUDA
# version, so CPU and CUDA wheels live side by side.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
log() { echo "[setup_env] $*"; }

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
#    holds a hash of everything that decides its outcome (this checkout's path, the
#    requirements, constraints and extras files, setup.py / pyproject.toml, this script and
#    build_mmcv.sh) and the extras it installed. When the hash matches, the extras asked for now
#    were installed then, and the one-line self-check passes, nothing is reinstalled (seconds
#    instead of a minute of pip). FORCE_ENV=1 (or deleting the stamp) forces the full run.
stamp="$("$PY" -c 'import sys; print(sys.prefix)')/.monodle_plugin_env_stamp"
want_extras=$(echo "${EXTRAS:-}" | tr ', ' '\n\n' | sed '/^$/d' | sort -u | tr '\n' ' ')
env_hash=$( { echo "$root"; cat requirements/*.txt requirements/extras/*.txt setup.py \
  pyproject.toml tools/env/setup_env.sh tools/env/build_mmcv.sh 2>/dev/null; } \
  | sha256sum | cut -c1-16)
if [ -z "${FORCE_ENV:-}" ] && [ -f "$stamp" ] && [ "$(sed -n 1p "$stamp")" = "$env_hash" ]; then
  have_extras=" $(sed -n 2p "$stamp") "
  missing=""
  for extra in $want_extras; do
    case "$have_extras" in *" $extra "*) ;; *) missing="$missing $extra" ;; esac
  done
  if [ -z "$missing" ] && "$PY" -c "from monodle_plugin.utils.env_check import main; main()" \
      >/dev/null; then
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
# (pip reports torch's setuptools>=77 wish as a conflict; harmless: only torch's C++ extension
# builder uses setuptools, and mmcv's build needs the old one.)
pipq install -q "setuptools<70" wheel ninja
if ! "$PY" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '2.1.0'" 2>/dev/null; then
  bash tools/env/build_mmcv.sh 2.1.0
else
  log "mmcv $("$PY" -c 'import mmcv; print(mmcv.__version__)') with ops already installed"
fi

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


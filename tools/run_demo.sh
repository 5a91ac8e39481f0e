#!/usr/bin/env bash
# The README's main job on the 13 embedded kitti_mini frames (CPU, a few minutes):
#   1. short training of YOLOv8 + DA3-style depth distillation (kitti_mini's sparse LiDAR depth
#      stands in for Depth Anything 3 pseudo-labels): tools/train.py
#   2. evaluation of the last checkpoint, KITTI AP40 table + PNGs: tools/test.py --show-dir
#   3. a demo PNG (projected 3D boxes + bird's-eye view, ground truth in green): tools/demo.py,
#      in a second process while step 2 runs
#
#   bash tools/run_demo.sh                      # or: make demo
#   CONFIG=configs/demo/monodle_dla34_kitti_mini.py bash tools/run_demo.sh   # the DLA-34 recipe
#   bash tools/run_demo.sh --cfg-options train_cfg.max_epochs=5             # extra train.py args
#
# Outputs: $WORK_DIR (default work_dirs/demo/<config name>): train.log, test.log, demo.log (each tool's
# stdout; the terminal shows progress bars and the summary, VERBOSE=1 shows the logs too),
# <timestamp>/ with mmengine's training log and the last checkpoint, test/<timestamp>/ with the
# evaluation log, metrics.json and vis/*.png, and demo/*.png. The YOLOv8 config fits its 13
# frames (depth included) in a few CPU minutes; the AP40 summary printed at the end is measured
# on the frames it trained on: a fit check that dataset, targets, decoding, result files and
# metric agree, not accuracy (README, "Quick start").
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python}
CONFIG=${CONFIG:-configs/demo/monodle_yolo8_da3_kitti_mini.py}
NAME=$(basename "${CONFIG%.py}")
WORK_DIR=${WORK_DIR:-work_dirs/demo/$NAME}
DEMO_IMAGE=${DEMO_IMAGE:-demo/kitti_mini/KITTI/training/image_2/000008.png}
# 2 compute threads (the documented figures), 1 on a single-core machine: more threads than free
# cores make OpenMP wait on each other (two 2-thread trainings on 2 cores: 2.7 s per iteration
# instead of 0.13 s). On a machine busy with other jobs, OMP_NUM_THREADS=1 make demo.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(( $(nproc) < 2 ? 1 : 2 ))}

mkdir -p "$WORK_DIR"
# The terminal shows progress bars (stderr), errors and the summary; each tool's whole log (the
# config dump, a line per epoch, the full AP table) goes to a file. VERBOSE=1: logs on screen too.
run_logged() {  # run_logged LOG COMMAND...: the command's stdout into LOG (and on screen if VERBOSE)
    local log=$1
    shift
    if [ -n "${VERBOSE:-}" ]; then
        "$@" | tee "$log"
    elif ! "$@" > "$log"; then
        echo "run_demo: '$*' failed; the end of its log $log:" >&2
        tail -n 20 "$log" >&2
        return 1
    fi
}

echo "==> [1/3] training $CONFIG (log: $WORK_DIR/train.log)"
# evaluation is step 2: skip the validation the train loop would run after the last epoch
run_logged "$WORK_DIR/train.log" "$PYTHON" tools/train.py "$CONFIG" --work-dir "$WORK_DIR" \
    --progress --cfg-options train_cfg.val_begin=1000000 "$@"
CKPT=$(cat "$WORK_DIR/last_checkpoint")
if [ ! -f "$CKPT" ]; then
    echo "run_demo: training finished but the checkpoint $CKPT is missing" >&2
    exit 1
fi

# Steps 2 and 3 need only the checkpoint: the demo PNG is drawn in a second process meanwhile
# (most of either is the interpreter importing torch / mmdet3d, one core each).
echo "==> [2/3] evaluating $CKPT (KITTI AP40; log: $WORK_DIR/test.log)"
echo "==> [3/3] demo PNG of $DEMO_IMAGE (log: $WORK_DIR/demo.log)"
"$PYTHON" tools/demo.py "$DEMO_IMAGE" "$CONFIG" "$CKPT" --out-dir "$WORK_DIR/demo" --show-gt \
    > "$WORK_DIR/demo.log" 2>&1 &
demo_pid=$!
if ! run_logged "$WORK_DIR/test.log" "$PYTHON" tools/test.py "$CONFIG" "$CKPT" \
    --work-dir "$WORK_DIR/test" --show-dir vis; then
    wait "$demo_pid" || true
    exit 1
fi
if ! wait "$demo_pid"; then
    echo "run_demo: tools/demo.py failed; the end of its log $WORK_DIR/demo.log:" >&2
    tail -n 20 "$WORK_DIR/demo.log" >&2
    exit 1
fi
# its summary line ('<image>: N object(s) with score >= ... -> <png>'), past its progress bar
{ grep -a 'object(s) with score' "$WORK_DIR/demo.log" || true; } | tail -n 1 | sed 's/.*\r//'

METRICS=$(ls -t "$WORK_DIR"/test/*/metrics.json | head -n1)
echo
echo "run_demo: done in ${SECONDS} s."
"$PYTHON" - "$METRICS" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
rows = [('2D  IoU 0.7', '2D', 'strict'), ('BEV IoU 0.7', 'BEV', 'strict'),
        ('3D  IoU 0.7', '3D', 'strict'), ('BEV IoU 0.5', 'BEV', 'loose'),
        ('3D  IoU 0.5', '3D', 'loose')]
print('Car AP40 (%) on the frames it trained on (a fit check, not accuracy):')
print(f"  {'':12s}{'easy':>8s}{'moderate':>10s}{'hard':>8s}")
for name, kind, iou in rows:
    vals = [m.get(f'KITTI/Car_{kind}_AP40_{d}_{iou}', float('nan'))
            for d in ('easy', 'moderate', 'hard')]
    print(f'  {name:12s}' + ''.join(f'{v:{w}.1f}' for v, w in zip(vals, (8, 10, 8))))
print('  (so few labelled cars that KITTI AP40 tops out at 50.0 / 77.5 / 82.5 on kitti_mini)')
PY
echo "  logs       : $WORK_DIR/train.log, $WORK_DIR/test.log (whole AP table), $WORK_DIR/demo.log"
echo "  checkpoint : $CKPT"
echo "  metrics    : $METRICS"
echo "  test PNGs  : $(dirname "$METRICS")/vis/  (predictions, ground truth green)"
echo "  demo PNG   : $WORK_DIR/demo/$(basename "${DEMO_IMAGE%.*}").png  (predictions, ground truth green)"

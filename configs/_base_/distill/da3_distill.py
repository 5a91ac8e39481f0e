# Dense depth distillation from Depth Anything 3 metric depth: L = L_base + lambda * L_distill.
#
# This file holds the switches; a DA3 config lists it in `_base_` and, in its own body, turns
# them into three pieces with `monodle_plugin.utils.da3_distill_wiring` (see the "wiring"
# block of configs/monodle_yolo8_da3.py):
#   1. `LoadDA3Depth` right after `MonoDLEAffineAug` in the training pipeline (teacher map at
#      stride 4, warped like the image, x crop scale),
#   2. `loss_depth_distill=DepthDistillLoss(...)` in the head (logged as `loss_depth_distill`),
#   3. `DistillWeightHook` in `custom_hooks` (warm-up / switch-off, logs `distill_lambda`).
# With `use_da3_depth = False` or `distill['lambda_'] = 0` none of them is added: no depth file is
# read, nothing extra is computed, and training is exactly the baseline's.
#
# Depth files: `<data_root>/<depth_dir>/<id>.npz`, key `depth` (metres), written by
# `tools/generate_da3_depth.py` at the raw image size; folders written at DA3's processing
# resolution (long side 504, with `intrinsics` keys) are accepted and resized. Check a folder
# with `tools/check_depth_labels.py data/KITTI --depth-dir DA3_depth_results`.
#
# Overriding from the command line: `tools/train.py CONFIG --cfg-options distill.lambda=0`
# (or `distill.lambda_=0.25`, `distill.loss_type=silog`, `use_da3_depth=False`, ...) rebuilds the
# three pieces from the changed switches (monodle_plugin.utils.da3_distill_wiring
# .reapply_distill_switches); other entry points that merge options themselves must call it, or
# override the built fields, e.g. model.bbox_head.loss_depth_distill.loss_weight=0.25.
use_da3_depth = True
distill = dict(
    # `distill.lambda`: weight of L_distill (0: distillation off, nothing loaded). Spelt
    # `lambda_` because `lambda` is a Python keyword that mmengine cannot dump into a config
    # (`--cfg-options distill.lambda=...` is accepted by tools/train.py all the same).
    lambda_=0.5,
    loss_type='l1',  # 'l1' | 'silog'
    foreground_weight=5.0,  # weight of foreground pixels (background: 1)
    # 'heatmap': soft w = 1 + (fg - 1) * max_c heatmap_target (the reference system's choice);
    # 'box': fg inside ground-truth 2D boxes; 'none': uniform
    foreground='heatmap',
    silog_variance_factor=0.5,  # silog: sqrt(E[g^2] - f E[g]^2); Eigen et al. use 0.85
    silog_weighted=False,  # silog: use the foreground weights (reference: unweighted)
    depth_dir='DA3_depth_results',  # relative to data_root, or absolute
    max_depth=None,  # metres; e.g. 80.0 drops DA3's saturated far / sky pixels
    on_missing='error',  # 'error' | 'skip' (all-invalid map, one warning)
    warmup_iters=0,  # linear warm-up of lambda over N iterations (0: none)
    off_after_epoch=None,  # first epoch (0-based) without distillation (None: never)
)

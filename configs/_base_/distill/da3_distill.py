# Dense depth distillation from Depth Anything 3 metric depth: L = L_base + lambda * L_distill.
#
# The switches (`use_da3_depth`, `distill`) and the three pieces they stand for, written out:
#   1. `LoadDA3Depth` right after `MonoDLEAffineAug` in the training pipeline (teacher map at
#      stride 4, warped like the image, x crop scale): `da3_train_pipeline` below, which a +DA3
#      config puts into `train_dataloader.dataset.pipeline`;
#   2. `loss_depth_distill=DepthDistillLoss(...)` in the head (logged as `loss_depth_distill`):
#      `da3_loss_depth_distill`, put into `model.bbox_head.loss_depth_distill`;
#   3. `DistillWeightHook` in `custom_hooks` (warm-up / switch-off, logs `distill_lambda`).
# (1) and (2) are top-level names here because a config cannot set `model` / `train_dataloader`
# in two of its `_base_` files; configs/monodle_yolo8_da3.py shows the two lines that use them.
#
# The switches are the one place to change distillation: MonoDLERunner (the runner of every
# train / test tool, ours and mmdet3d's stock ones) writes them into the three pieces before
# building anything and logs each field it changes. With `use_da3_depth=False` or
# `distill.lambda=0` it removes the three pieces: no depth file is read, nothing extra is
# computed, training is exactly the baseline's. `--cfg-options distill.lambda=0` (the seed's
# spelling; `distill.lambda_=0` too), `distill.loss_type=silog`, `use_da3_depth=False`, ... work
# under any tool; an unknown `distill.*` key is an error naming the known ones.
#
# Depth files: `<data_root>/<depth_dir>/<id>.npz`, key `depth` (metres), written by
# `tools/dataset_converters/generate_da3_depth.py` at the raw image size; folders written at
# DA3's processing resolution (long side 504, with `intrinsics` keys) are accepted and resized.
# Check a folder with `tools/misc/check_depth_labels.py data/KITTI --depth-dir DA3_depth_results`.
use_da3_depth = True
distill = dict(
    # `distill.lambda`: weight of L_distill (0: distillation off, nothing loaded). Spelt
    # `lambda_` because `lambda` is a Python keyword that mmengine cannot dump into a config
    # (`--cfg-options distill.lambda=...` is accepted all the same and renamed).
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
    # the seed's uncertainty-guided distillation (ca005eb): Kendall's heteroscedastic loss
    # (UncertaintyDepthDistillLoss) + the head's dense log-variance branch
    # (model.bbox_head.use_distill_uncertainty, the seed's model.use_distill_uncertainty)
    use_uncertainty=False,
    # teacher x crop scale (MonoDLE's depth-target convention; the seed: False)
    scale_by_crop=True,
    # affine warp of the teacher: 'nearest' (validity-aware) or 'bilinear' (validity-normalised)
    interpolation='nearest',
)

# (1) the training pipeline of configs/_base_/datasets/kitti_mono3d_monodle.py + LoadDA3Depth
da3_train_pipeline = [
    dict(type='LoadKittiMonoImage', backend_args=None),
    dict(type='LoadMonoDLEAnnotations'),
    dict(type='MonoDLEAffineAug', output_size=(1280, 384), random_flip=0.5, random_crop=0.5,
         scale=0.4, shift=0.1),
    dict(type='LoadDA3Depth', depth_dir='DA3_depth_results', max_depth=None,
         on_missing='error', scale_by_crop=True, interpolation='nearest'),
    dict(type='EncodeMonoDLETargets'),
    dict(type='PackMonoDLEInputs'),
]
# (2) the head's distillation loss (variance_factor: distill.silog_variance_factor; _delete_:
# it replaces the base head's loss_depth_distill=None)
da3_loss_depth_distill = dict(
    _delete_=True, type='DepthDistillLoss', loss_weight=0.5, loss_type='l1', foreground='heatmap',
    foreground_weight=5.0, variance_factor=0.5, silog_weighted=False)
# (3) the lambda schedule
custom_hooks = [dict(type='DistillWeightHook', warmup_iters=0, off_after_epoch=None)]

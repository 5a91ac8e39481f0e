# Ablation: MonoDLE + YOLO26n backbone + dense depth distillation from DA3 pseudo-labels
# (configs/_base_/distill/da3_distill.py: lambda 0.5, L1, soft foreground weight 5).
# Otherwise identical to configs/ablation/monodle_yolo26_kitti.py.
_base_ = ['./monodle_yolo26_kitti.py', '../_base_/distill/da3_distill.py']

use_da3_depth = True
distill = dict(_base_.distill)  # change a switch here, e.g. distill['loss_type'] = 'silog'

# ---- wiring: the same block in every DA3 config (see configs/_base_/distill/da3_distill.py) ----
if use_da3_depth and distill['lambda_'] > 0:
    train_pipeline = []
    for _step in _base_.train_dataloader.dataset.pipeline:
        train_pipeline.append(_step)
        if _step['type'] == 'MonoDLEAffineAug':
            train_pipeline.append(
                dict(type='LoadDA3Depth', depth_dir=distill['depth_dir'],
                     max_depth=distill['max_depth'], on_missing=distill['on_missing']))
    del _step
    train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
    model = dict(bbox_head=dict(loss_depth_distill=dict(
        _delete_=True, type='DepthDistillLoss', loss_weight=distill['lambda_'],
        loss_type=distill['loss_type'], foreground=distill['foreground'],
        foreground_weight=distill['foreground_weight'],
        variance_factor=distill['silog_variance_factor'],
        silog_weighted=distill['silog_weighted'])))
    custom_hooks = list(_base_.get('custom_hooks', [])) + [
        dict(type='DistillWeightHook', warmup_iters=distill['warmup_iters'],
             off_after_epoch=distill['off_after_epoch'])]

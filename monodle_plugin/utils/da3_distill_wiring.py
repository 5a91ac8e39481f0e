"""Turn the DA3 distillation switches of a config into the three pieces that enable it.

Used by every ``+DA3`` config (``configs/_base_/distill/da3_distill.py`` holds the switches):

1. ``LoadDA3Depth`` right after ``MonoDLEAffineAug`` in the training pipeline,
2. ``loss_depth_distill=DepthDistillLoss(...)`` in the head (logged as ``loss_depth_distill``),
3. ``DistillWeightHook`` appended to ``custom_hooks``.
"""
from __future__ import annotations

import copy


def da3_distill_wiring(distill: dict, base_pipeline: list,
                       base_custom_hooks: list) -> tuple[dict, dict, list]:
    """Return ``(train_dataloader, model, custom_hooks)`` config overrides for distillation.

    Args:
        distill: the ``distill`` switches (``lambda_``, ``loss_type``, ``foreground``,
            ``foreground_weight``, ``silog_variance_factor``, ``silog_weighted``, ``depth_dir``,
            ``max_depth``, ``on_missing``, ``warmup_iters``, ``off_after_epoch``).
        base_pipeline: the baseline training pipeline (list of transform configs).
        base_custom_hooks: the baseline ``custom_hooks``.
    """
    pipeline = []
    for step in base_pipeline:
        pipeline.append(copy.deepcopy(step))
        if step['type'] == 'MonoDLEAffineAug':
            pipeline.append(dict(type='LoadDA3Depth', depth_dir=distill['depth_dir'],
                                 max_depth=distill['max_depth'],
                                 on_missing=distill['on_missing']))
    if not any(step['type'] == 'LoadDA3Depth' for step in pipeline):
        raise ValueError('DA3 distillation: the training pipeline has no MonoDLEAffineAug step '
                         'to put LoadDA3Depth after')
    train_dataloader = dict(dataset=dict(pipeline=pipeline))
    model = dict(bbox_head=dict(loss_depth_distill=dict(
        _delete_=True, type='DepthDistillLoss', loss_weight=distill['lambda_'],
        loss_type=distill['loss_type'], foreground=distill['foreground'],
        foreground_weight=distill['foreground_weight'],
        variance_factor=distill['silog_variance_factor'],
        silog_weighted=distill['silog_weighted'])))
    custom_hooks = [copy.deepcopy(h) for h in base_custom_hooks] + [
        dict(type='DistillWeightHook', warmup_iters=distill['warmup_iters'],
             off_after_epoch=distill['off_after_epoch'])]
    return train_dataloader, model, custom_hooks

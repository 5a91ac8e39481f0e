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


def touches_distill_switches(cfg_options: dict | None) -> bool:
    """Whether ``--cfg-options`` changed ``use_da3_depth`` or a ``distill.*`` switch."""
    if not cfg_options:
        return False
    return any(key == 'use_da3_depth' or key == 'distill' or key.startswith('distill.')
               for key in cfg_options)


def reapply_distill_switches(cfg) -> None:
    """Rebuild the three distillation pieces of ``cfg`` from its current switches (in place).

    mmengine evaluates a config's body once, when the file is parsed, so a later
    ``--cfg-options distill.lambda_=0`` would change the switch but not the pieces built from
    it. ``tools/train.py`` / ``tools/test.py`` call this after merging such options: the
    pipeline step, the head loss and the hook are removed and, if ``use_da3_depth`` and
    ``distill['lambda_'] > 0``, built again from the switches.
    """
    if 'distill' not in cfg or 'use_da3_depth' not in cfg:
        raise KeyError('--cfg-options sets distillation switches, but this config has no '
                       '`distill` / `use_da3_depth` (not a +DA3 config): change '
                       'model.bbox_head.loss_depth_distill instead')
    distill = dict(cfg.distill)
    if 'lambda' in distill:  # the reference system's spelling, accepted on the command line
        distill['lambda_'] = distill.pop('lambda')
        cfg.distill = distill
    pipeline = [step for step in cfg.train_dataloader.dataset.pipeline
                if step['type'] != 'LoadDA3Depth']
    hooks = [hook for hook in cfg.get('custom_hooks', []) if hook['type'] != 'DistillWeightHook']
    if cfg.use_da3_depth and distill['lambda_'] > 0:
        loader, model, hooks = da3_distill_wiring(distill, pipeline, hooks)
        cfg.train_dataloader.dataset.pipeline = loader['dataset']['pipeline']
        head_loss = dict(model['bbox_head']['loss_depth_distill'])
        head_loss.pop('_delete_')
        cfg.model.bbox_head.loss_depth_distill = head_loss
    else:
        cfg.train_dataloader.dataset.pipeline = pipeline
        cfg.model.bbox_head.loss_depth_distill = None
    cfg.custom_hooks = hooks

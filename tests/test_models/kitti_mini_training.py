"""Helper of the model tests: a few optimiser steps of a config's model on kitti_mini.

Shared by ``test_ultralytics_backbone.py`` (the n-scale ablation configs) and
``test_yolo_variants.py`` (every YOLO scale / neck variant).
"""
from pathlib import Path
from typing import Any, Callable, Optional

import torch

ROOT = Path(__file__).resolve().parents[2]
MINI = ROOT / 'demo' / 'kitti_mini' / 'KITTI'


def train_steps_on_kitti_mini(cfg: Any, output_size: tuple[int, int], da3: bool,
                              batch_size: int = 1, steps: int = 3,
                              check_model: Optional[Callable[[torch.nn.Module], None]] = None
                              ) -> list[dict]:
    """Train ``cfg.model`` from random weights for ``steps`` optimiser steps on kitti_mini.

    The training pipeline's ``MonoDLEAffineAug`` outputs ``output_size`` (W, H); a
    ``LoadDA3Depth`` step reads kitti_mini's LiDAR depth (``lidar_depth``) in place of DA3
    pseudo-labels. Step ``i`` takes frames ``i * batch_size ... (i + 1) * batch_size - 1``.

    Asserts: the pipeline has ``LoadDA3Depth`` exactly when ``da3``; every step's losses are
    finite and hold ``loss_depth_distill`` exactly when ``da3``; the backbone's first convolution
    changes (the backbone learns).

    Args:
        cfg: the loaded config (default scope already set).
        output_size: (W, H) network input; strides 4..32 must divide it.
        da3: whether the config distils DA3 depth.
        batch_size: frames per step.
        steps: optimiser steps.
        check_model: called with the built model before training (extra assertions).

    Returns:
        the losses of each step.
    """
    from mmdet3d.registry import DATASETS, MODELS
    from mmengine.dataset import default_collate
    from mmengine.optim import build_optim_wrapper

    pipeline = cfg.train_dataloader.dataset.pipeline
    for step in pipeline:
        if step['type'] == 'MonoDLEAffineAug':
            step['output_size'] = output_size
        if step['type'] == 'LoadDA3Depth':
            step['depth_dir'] = 'lidar_depth'
    assert any(step['type'] == 'LoadDA3Depth' for step in pipeline) == da3
    dataset = DATASETS.build(dict(cfg.train_dataloader.dataset, data_root=str(MINI),
                                  pipeline=pipeline))
    torch.manual_seed(0)
    model = MODELS.build(dict(cfg.model, backbone=dict(cfg.model.backbone, pretrained=False)))
    if check_model is not None:
        check_model(model)
    model.train()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    first = model.backbone.model[0].conv.weight.detach().clone()
    history = []
    for it in range(steps):
        batch = default_collate([dataset[it * batch_size + j] for j in range(batch_size)])
        losses = model.train_step(batch, optim_wrapper)
        assert ('loss_depth_distill' in losses) == da3
        assert all(torch.isfinite(v) for v in losses.values()), losses
        history.append(losses)
    assert not torch.equal(first, model.backbone.model[0].conv.weight)  # the backbone learns
    return history

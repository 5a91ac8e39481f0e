"""Every YOLO scale (n/s/m/l/x of YOLOv8, YOLO11, YOLO26), with DLAUp or the native neck, with
and without DA3: the configs' written-out channel lists are right, each config trains three steps
on kitti_mini from random weights, and each scale runs one forward at 384 x 1280."""
from pathlib import Path

import pytest
import torch

import monodle_plugin  # noqa: F401  (registers)

ROOT = Path(__file__).resolve().parents[2]
MINI = ROOT / 'demo' / 'kitti_mini' / 'KITTI'
FAMILIES = {'yolov8': 'yolo8', 'yolo11': 'yolo11', 'yolo26': 'yolo26'}
SCALES = 'nslmx'
SCALE_CONFIGS = sorted((ROOT / 'configs' / 'yolo_scales').glob('*.py'))
NATIVE_CONFIGS = sorted((ROOT / 'configs' / 'yolo_native_neck').glob('*.py'))
TINY = (160, 64)  # (W, H) network input of the training steps: strides 4..32 divide it


def test_every_scale_family_and_variant_has_a_config():
    names = {p.name for p in SCALE_CONFIGS + NATIVE_CONFIGS}
    for stem in FAMILIES:
        for scale in SCALES:
            for da3 in ('', '_da3'):
                if scale != 'n':  # n: configs/ablation/monodle_{yolo8,yolo11,yolo26}[_da3]_kitti.py
                    assert f'monodle_{stem}{scale}{da3}_kitti.py' in names
                assert f'monodle_{stem}{scale}_native_neck{da3}_kitti.py' in names
    assert len(names) == 2 * (3 * 4 + 3 * 5)


def _load(path):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    cfg = Config.fromfile(str(path))
    init_default_scope(cfg.default_scope)
    return cfg


@pytest.mark.slow
@pytest.mark.parametrize('path', SCALE_CONFIGS + NATIVE_CONFIGS, ids=lambda p: p.stem)
def test_variant_config_builds_and_trains_three_steps(path):
    """Build from the Ultralytics yaml (pretrained=False, offline): the detector's build-time
    check compares the written-out neck / head channels with what the backbone produces; then
    three optimiser steps on kitti_mini at 160 x 64 (+DA3: kitti_mini's LiDAR depth)."""
    from mmdet3d.registry import DATASETS, MODELS
    from mmengine.dataset import default_collate
    from mmengine.optim import build_optim_wrapper

    cfg = _load(path)
    da3 = '_da3' in path.stem
    native = 'native_neck' in path.stem
    pipeline = cfg.train_dataloader.dataset.pipeline
    for step in pipeline:
        if step['type'] == 'MonoDLEAffineAug':
            step['output_size'] = TINY
        if step['type'] == 'LoadDA3Depth':
            step['depth_dir'] = 'lidar_depth'
    assert any(step['type'] == 'LoadDA3Depth' for step in pipeline) == da3
    dataset = DATASETS.build(dict(cfg.train_dataloader.dataset, data_root=str(MINI),
                                  pipeline=pipeline))
    torch.manual_seed(0)
    model = MODELS.build(dict(cfg.model, backbone=dict(cfg.model.backbone, pretrained=False)))
    assert list(model.backbone.out_channels) == list(cfg.model.neck.in_channels)
    assert model.backbone.strides == ([8, 16, 32] if native else [4, 8, 16, 32])
    assert type(model.neck).__name__ == ('NativeNeck' if native else 'DLAUp')
    model.train()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    first = model.backbone.model[0].conv.weight.detach().clone()
    for it in range(3):
        batch = default_collate([dataset[2 * it], dataset[2 * it + 1]])
        losses = model.train_step(batch, optim_wrapper)
        assert ('loss_depth_distill' in losses) == da3
        assert all(torch.isfinite(v) for v in losses.values()), losses
    assert not torch.equal(first, model.backbone.model[0].conv.weight)


@pytest.mark.slow
@pytest.mark.parametrize('yaml_name', [f'{s}{c}.yaml' for s in FAMILIES for c in SCALES])
def test_each_scale_forward_at_384x1280(yaml_name):
    """One backbone forward per scale at the training size; the DLAUp maps (strides 4..32) and
    the native-neck maps (Detect's inputs) have the channels the configs write out."""
    from monodle_plugin.models.backbones.ultralytics_backbone import UltralyticsBackbone
    stem = yaml_name[:-6]
    dla_cfg = (ROOT / 'configs' / ('ablation' if stem.endswith('n') else 'yolo_scales') /
               (f'monodle_{FAMILIES[stem[:-1]]}_kitti.py' if stem.endswith('n')
                else f'monodle_{stem}_kitti.py'))
    native_cfg = ROOT / 'configs' / 'yolo_native_neck' / f'monodle_{stem}_native_neck_kitti.py'
    dla_channels = list(_load(dla_cfg).model.neck.in_channels)
    native_channels = list(_load(native_cfg).model.neck.in_channels)
    backbone = UltralyticsBackbone(yaml_name, pretrained=False).eval()
    native = UltralyticsBackbone(yaml_name, pretrained=False, detect_inputs=True,
                                 feature_strides=[8, 16, 32])
    assert native.feature_indices == backbone.feature_indices[1:]  # P3/P4/P5 = the last three
    with torch.no_grad():
        feats = backbone(torch.rand(1, 3, 384, 1280))
    shapes = [tuple(f.shape) for f in feats]
    assert shapes == [(1, c, 384 // s, 1280 // s) for c, s in zip(dla_channels, (4, 8, 16, 32))]
    assert native_channels == dla_channels[1:] == native.out_channels

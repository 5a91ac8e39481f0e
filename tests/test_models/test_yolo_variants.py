"""Every YOLO scale (n/s/m/l/x of YOLOv8, YOLO11, YOLO26), with DLAUp or the native neck, with
and without DA3: the configs' written-out channel lists are right (each scale's backbone built
from its Ultralytics yaml offline runs one forward at 384 x 1280), and configs train three steps
on kitti_mini from random weights: every config, the 36 m / l / x ones included (up to 83 M
parameters each, about 2-4 minutes together on one idle core; the whole suite measured 10 min 18 s
with -n 2 on an idle 2-core machine). MONODLE_TEST_ALL_SCALES=0 skips the m / l / x training
steps for a quick local run; their model section is then only checked against the verified
channel lists."""
import os
from pathlib import Path

import pytest
import torch
from kitti_mini_training import train_steps_on_kitti_mini

import monodle_plugin  # noqa: F401  (registers)

ROOT = Path(__file__).resolve().parents[2]
FAMILIES = {'yolov8': 'yolo8', 'yolo11': 'yolo11', 'yolo26': 'yolo26'}
SCALES = 'nslmx'
SCALE_CONFIGS = sorted((ROOT / 'configs' / 'yolo_scales').glob('*.py'))
NATIVE_CONFIGS = sorted((ROOT / 'configs' / 'yolo_native_neck').glob('*.py'))
TINY = (64, 32)  # (W, H) network input of the training steps: strides 4..32 divide it
ALL_SCALES = os.environ.get('MONODLE_TEST_ALL_SCALES', '1') != '0'
#: DLAUp (strides 4..32) channels per Ultralytics yaml; native neck: the last three. Computed once
#: with UltralyticsBackbone(pretrained=False).out_channels; test_each_scale_forward_at_384x1280
#: rebuilds each backbone and checks them.
CHANNELS = {
    'yolov8n': [32, 64, 128, 256], 'yolov8s': [64, 128, 256, 512],
    'yolov8m': [96, 192, 384, 576], 'yolov8l': [128, 256, 512, 512],
    'yolov8x': [160, 320, 640, 640],
    'yolo11n': [64, 64, 128, 256], 'yolo11s': [128, 128, 256, 512],
    'yolo11m': [256, 256, 512, 512], 'yolo11l': [256, 256, 512, 512],
    'yolo11x': [384, 384, 768, 768],
    'yolo26n': [64, 64, 128, 256], 'yolo26s': [128, 128, 256, 512],
    'yolo26m': [256, 256, 512, 512], 'yolo26l': [256, 256, 512, 512],
    'yolo26x': [384, 384, 768, 768],
}


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

    from monodle_plugin.utils.distill_switches import apply_distill_switches
    cfg = Config.fromfile(str(path))
    apply_distill_switches(cfg)  # the +DA3 pieces, as MonoDLERunner expands them
    init_default_scope(cfg.default_scope)
    return cfg


def _scale(path: Path) -> str:
    """'yolov8m' of configs/.../monodle_yolov8m_native_neck_da3_kitti.py."""
    return path.stem.split('_')[1]


def _heavy(path: Path) -> bool:
    return _scale(path)[-1] in 'mlx'


def _variant_params():
    for path in SCALE_CONFIGS + NATIVE_CONFIGS:
        marks = [pytest.mark.slow]
        if _heavy(path):
            marks.append(pytest.mark.skipif(
                not ALL_SCALES, reason='MONODLE_TEST_ALL_SCALES=0: m/l/x training steps skipped; '
                'test_heavy_variant_configs_match_verified_channels checks them'))
        yield pytest.param(path, id=path.stem, marks=marks)


@pytest.mark.parametrize('path', [p for p in SCALE_CONFIGS + NATIVE_CONFIGS if _heavy(p)],
                         ids=lambda p: p.stem)
def test_heavy_variant_configs_match_verified_channels(path):
    """Without a build: the model section names the scale's .pt and the channels that
    test_each_scale_forward_at_384x1280 verifies on the real backbone."""
    cfg = _load(path)
    scale = _scale(path)
    native = 'native_neck' in path.stem
    backbone, neck, head = cfg.model.backbone, cfg.model.neck, cfg.model.bbox_head
    assert backbone.type == 'UltralyticsBackbone'
    assert backbone.ultralytics_model == f'{scale}.pt'
    if native:
        assert backbone.detect_inputs and list(backbone.feature_strides) == [8, 16, 32]
        assert neck.type == 'NativeNeck' and list(neck.in_channels) == CHANNELS[scale][1:]
        assert head.in_channels == neck.out_channels == 64
    else:
        assert list(backbone.feature_strides) == [4, 8, 16, 32]
        assert neck.type == 'DLAUp' and list(neck.in_channels) == CHANNELS[scale]
        assert head.in_channels == CHANNELS[scale][0]
    pipeline = cfg.train_dataloader.dataset.pipeline
    assert any(step['type'] == 'LoadDA3Depth' for step in pipeline) == ('_da3' in path.stem)


@pytest.mark.parametrize('path', list(_variant_params()))
def test_variant_config_builds_and_trains_three_steps(path):
    """Build from the Ultralytics yaml (pretrained=False, offline): the detector's build-time
    check compares the written-out neck / head channels with what the backbone produces; then
    three optimiser steps (batch 1) on kitti_mini at 64 x 32 (+DA3: kitti_mini's LiDAR depth)."""
    cfg = _load(path)
    native = 'native_neck' in path.stem

    def check_model(model):
        assert list(model.backbone.out_channels) == list(cfg.model.neck.in_channels)
        assert model.backbone.strides == ([8, 16, 32] if native else [4, 8, 16, 32])
        assert type(model.neck).__name__ == ('NativeNeck' if native else 'DLAUp')

    train_steps_on_kitti_mini(cfg, TINY, da3='_da3' in path.stem, batch_size=1,
                              check_model=check_model)


@pytest.mark.slow
@pytest.mark.parametrize('yaml_name', [f'{s}{c}.yaml' for s in FAMILIES for c in SCALES])
def test_each_scale_forward_at_384x1280(yaml_name):
    """One backbone forward per scale at the training size; the DLAUp maps (strides 4..32) and
    the native-neck maps (Detect's inputs) have the channels the configs write out."""
    from monodle_plugin.models.backbones.ultralytics_backbone import UltralyticsBackbone
    stem = yaml_name[:-5]
    dla_channels = CHANNELS[stem]
    native_channels = CHANNELS[stem][1:]
    from ultralytics.nn.tasks import yaml_model_load
    backbone = UltralyticsBackbone(yaml_name, pretrained=False).eval()
    detect_from = yaml_model_load(yaml_name)['head'][-1][0]  # the Detect line's inputs
    assert detect_from == backbone.feature_indices[1:]  # P3/P4/P5 = the last three DLAUp maps
    with torch.no_grad():
        feats = backbone(torch.rand(1, 3, 384, 1280))
    shapes = [tuple(f.shape) for f in feats]
    assert shapes == [(1, c, 384 // s, 1280 // s) for c, s in zip(dla_channels, (4, 8, 16, 32))]
    assert native_channels == [f.shape[1] for f in feats[1:]]

"""Reproduce mode for the seed system's YOLO runs: ImageNet-normalised input and
``freeze_backbone='weights'`` (weights fixed, BatchNorm statistics moving). In train mode the
plugin model with the seed's weights computes the seed model's outputs and moves the same
BatchNorm statistics (tests/test_models/seed_centernet3d.py is the seed's architecture)."""
import copy
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from seed_centernet3d import SeedCenterNet3DYolo, randomise
from torch import nn

import monodle_plugin  # noqa: F401  (registers)
from monodle_plugin.models.backbones.ultralytics_backbone import UltralyticsBackbone

ROOT = Path(__file__).resolve().parents[2]
REPRO = {False: ROOT / 'configs/ablation/monodle_yolo8_seedrepro_kitti.py',
         True: ROOT / 'configs/ablation/monodle_yolo8_da3_seedrepro_kitti.py'}
OURS = {False: ROOT / 'configs/ablation/monodle_yolo8_kitti.py',
        True: ROOT / 'configs/ablation/monodle_yolo8_da3_kitti.py'}
IMAGENET_MEAN = [0.485 * 255, 0.456 * 255, 0.406 * 255]
IMAGENET_STD = [0.229 * 255, 0.224 * 255, 0.225 * 255]

torch.set_num_threads(1)


def _bn_stats(module):
    return [t.clone() for m in module.modules() if isinstance(m, nn.BatchNorm2d)
            for t in (m.running_mean, m.running_var)]


def test_freeze_weights_only_moves_bn_statistics():
    backbone = UltralyticsBackbone('yolo8', pretrained=False, freeze_backbone='weights').train()
    assert not any(p.requires_grad for p in backbone.parameters())
    assert all(m.training for m in backbone.modules() if isinstance(m, nn.BatchNorm2d))
    before = _bn_stats(backbone)
    feats = backbone(torch.rand(2, 3, 64, 96))
    assert not any(f.requires_grad for f in feats)  # nothing upstream of the neck trains
    assert not all(torch.equal(a, b) for a, b in zip(before, _bn_stats(backbone)))
    with pytest.raises(ValueError, match="'weights'"):
        UltralyticsBackbone('yolo8', pretrained=False, freeze_backbone='bn')


@pytest.mark.parametrize('da3', [False, True], ids=['baseline', 'da3'])
def test_reproduce_configs_differ_only_in_the_seed_regime(da3):
    from monodle_plugin.utils.distill_switches import apply_distill_switches
    repro, ours = Config.fromfile(str(REPRO[da3])), Config.fromfile(str(OURS[da3]))
    for cfg in (repro, ours):
        apply_distill_switches(cfg)  # as MonoDLERunner does
    pre = repro.model.data_preprocessor
    assert pre.mean == pytest.approx(IMAGENET_MEAN) and pre.std == pytest.approx(IMAGENET_STD)
    assert pre.bgr_to_rgb is True
    assert ours.model.data_preprocessor.std == [255.0, 255.0, 255.0]  # our default: RGB / 255
    assert repro.model.backbone.freeze_backbone == 'weights'
    assert ours.model.backbone.freeze_backbone is False
    a, b = copy.deepcopy(repro.to_dict()), copy.deepcopy(ours.to_dict())
    for d in (a, b):
        d['model'].pop('data_preprocessor')
        d['model']['backbone'].pop('freeze_backbone')
    if da3:  # and the seed's teacher: not x crop scale, bilinear warp
        assert repro.distill['scale_by_crop'] is False
        assert repro.distill['interpolation'] == 'bilinear'
        loader = [s for s in a['train_dataloader']['dataset']['pipeline']
                  if s['type'] == 'LoadDA3Depth'][0]
        assert (loader['scale_by_crop'], loader['interpolation']) == (False, 'bilinear')
        for d in (a, b):
            d.pop('distill')
            d.pop('distill_expanded_from')  # the switches again, recorded by the expansion
            d['train_dataloader']['dataset'].pop('pipeline')
    assert a == b


def test_train_mode_equals_the_seed_model():
    """Seed YOLOv8 model (random weights) -> converter -> reproduce config; one train-mode
    forward on the same ImageNet-normalised batch: equal raw outputs and equal BatchNorm
    running statistics afterwards; the backbone gets no gradient, the neck and head do."""
    from mmdet3d.registry import MODELS
    from mmengine.registry import init_default_scope
    from ultralytics.nn.tasks import DetectionModel

    from monodle_plugin.models.utils import official_checkpoint as conv

    torch.manual_seed(0)
    seed = SeedCenterNet3DYolo(DetectionModel('yolov8n.yaml', verbose=False), [2, 15, 18, 21],
                               [32, 64, 128, 256])
    randomise(seed, seed=3)
    for p in seed.backbone.parameters():  # what Ultralytics' .pt files store
        p.requires_grad_(False)
    cfg = Config.fromfile(str(REPRO[False]))
    init_default_scope('mmdet3d')
    cfg.model.backbone.pretrained = False
    ours = MODELS.build(cfg.model)
    ours.load_state_dict(conv.convert_state_dict(seed.state_dict(), ours.state_dict()),
                         strict=True)
    seed.train()
    ours.train()
    x = torch.randn(2, 3, 96, 320, generator=torch.Generator().manual_seed(4))
    theirs = seed(x.clone())
    mine = ours.bbox_head(ours.neck(ours.backbone(x.clone())))
    for name, ref in theirs.items():
        torch.testing.assert_close(mine[name], ref, rtol=1e-4, atol=1e-4 * ref.abs().max().item())
    for a, b in zip(_bn_stats(ours.backbone), _bn_stats(seed.backbone)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    sum(v.float().mean() for v in mine.values()).backward()
    assert all(p.grad is None for p in ours.backbone.parameters())
    assert all(p.grad is not None for p in ours.neck.parameters())

"""BatchNorm in multi-process runs: frozen backbones keep every BatchNorm type in eval mode,
mmcv's SyncBatchNorm (``--sync_bn mmcv``) included; without SyncBN the start-up log says the
statistics come from each process's batch."""
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from mmdet3d.registry import MODELS
from mmengine.config import Config
from mmengine.model import convert_sync_batchnorm
from mmengine.registry import init_default_scope
from torch import nn

import monodle_plugin  # noqa: F401  (registers)
from monodle_plugin.engine.batch_lr_scaling import BatchPlan
from monodle_plugin.engine.run_info import log_run_info
from monodle_plugin.models.backbones.ultralytics_backbone import UltralyticsBackbone

REPO = Path(__file__).resolve().parents[2]
MMCV_SYNC_BN = pytest.importorskip('mmcv.ops').SyncBatchNorm


def _syncbn_stats(module):
    return [(m, m.running_mean.clone(), m.running_var.clone()) for m in module.modules()
            if isinstance(m, MMCV_SYNC_BN)]


def _yolo_backbone(freeze):
    return UltralyticsBackbone('yolo8', pretrained=False, freeze_backbone=freeze)


def _dla34_detector(freeze):
    cfg = Config.fromfile(str(REPO / 'configs/monodle/monodle_dla34_kitti.py'))
    init_default_scope('mmdet3d')
    return MODELS.build(dict(cfg.model, freeze_backbone=freeze))


@pytest.mark.parametrize('where', ['UltralyticsBackbone', 'MonoDLE'])
@pytest.mark.parametrize('freeze', [True, False])
def test_frozen_backbone_keeps_mmcv_syncbn_in_eval(single_process_group, where, freeze):
    """freeze_backbone=True (the YOLO backbone's own option, or the detector's for any
    backbone): after mmengine's convert_sync_batchnorm(..., 'mmcv') and model.train() every
    backbone BatchNorm is in eval mode and a forward leaves its running statistics alone."""
    model = _dla34_detector(freeze) if where == 'MonoDLE' else _yolo_backbone(freeze)
    model = convert_sync_batchnorm(model, implementation='mmcv')  # what --sync_bn mmcv does
    backbone = model.backbone if where == 'MonoDLE' else model
    model.train()
    stats = _syncbn_stats(backbone)
    assert len(stats) > 10  # the conversion did happen
    if not freeze:  # the control: mmcv's SyncBatchNorm trains (its kernel is CUDA-only)
        assert all(m.training for m, _, _ in stats)
        return
    assert not any(m.training for m, _, _ in stats)
    assert not any(p.requires_grad for p in backbone.parameters())
    backbone(torch.rand(2, 3, 64, 96))
    assert all(torch.equal(m.running_mean, mean) and torch.equal(m.running_var, var)
               for m, mean, var in stats)


def test_detector_freeze_backbone_values_are_checked():
    with pytest.raises(ValueError, match="MonoDLE: freeze_backbone must be True, False or "
                                         "'weights', got 1"):
        _dla34_detector(1)


class _Logger:
    def __init__(self):
        self.lines = []

    def info(self, msg):
        self.lines.append(msg)


def _fake_runner(tmp_path, world_size, model, **cfg):
    return SimpleNamespace(world_size=world_size, model=model, cfg=Config(cfg), seed=0,
                           logger=_Logger(), log_dir=str(tmp_path))


@pytest.mark.parametrize('world_size,sync_bn,frozen,logged', [
    (8, None, False, True), (1, None, False, False), (8, 'torch', False, False),
    (8, None, True, False)])
def test_per_process_batchnorm_is_logged(tmp_path, world_size, sync_bn, frozen, logged):
    """One start-up line, when W > 1, no sync_bn and a BatchNorm trains: it names the option
    and the per-process batch; run_info.json records sync_bn."""
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
    if frozen:
        model[1].eval()
    plan = BatchPlan(world_size=world_size, per_gpu=16 // world_size, reference_total=16,
                     base_batch_size=16, config_lr=1.25e-3, scale_lr=True,
                     batch_from_user=False)
    runner = _fake_runner(tmp_path, world_size, model,
                          **(dict(sync_bn=sync_bn) if sync_bn else {}))
    log_run_info(runner, plan, 'nccl')
    note = [line for line in runner.logger.lines if line.startswith('BatchNorm statistics')]
    if logged:
        assert note == ["BatchNorm statistics come from each process's batch of 2 image(s), "
                        'not from the total batch of 16: --sync_bn torch (or mmcv; config key '
                        'sync_bn) computes them over all 8 processes.']
    else:
        assert note == []
    assert json.load(open(tmp_path / 'run_info.json'))['sync_bn'] == sync_bn

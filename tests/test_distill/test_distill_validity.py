"""Distillation that cannot silently die (issue 13): valid fraction logged, dead maps stop."""
import os.path as osp
import warnings

import numpy as np
import pytest
import torch
from mmengine.dataset import Compose
from mmengine.structures import PixelData

import monodle_plugin  # noqa: F401  (registers)
from monodle_plugin.datasets import MonoDLEKittiDataset
from monodle_plugin.models.losses.depth_distill_loss import (
    check_teacher_validity,
    teacher_valid_stats,
    valid_fraction,
)

MINI = osp.join(osp.dirname(__file__), '..', '..', 'demo', 'kitti_mini', 'KITTI')


def _samples(valid, on_missing='error'):
    from mmdet3d.structures import Det3DDataSample
    out = []
    for i, v in enumerate(valid):
        ds = Det3DDataSample(metainfo=dict(sample_idx=10 + i))
        ds.gt_depth = PixelData(metainfo=dict(on_missing=on_missing),
                                depth=torch.zeros_like(v, dtype=torch.float32), valid=v)
        out.append(ds)
    return out


def test_valid_fraction_and_dead_batch():
    valid = torch.zeros(2, 1, 4, 5, dtype=torch.bool)
    valid[0, 0, 0, :3] = True
    assert valid_fraction(teacher_valid_stats(valid)).item() == pytest.approx(3 / 40)
    dead = torch.zeros(2, 1, 4, 5, dtype=torch.bool)
    with pytest.raises(ValueError, match=r'no valid teacher depth pixel.*\[10, 11\]'):
        check_teacher_validity(valid_fraction(teacher_valid_stats(dead)), _samples(dead))
    with pytest.warns(UserWarning, match='no valid teacher depth pixel'):
        check_teacher_validity(0.0, _samples(dead, 'skip'))
    check_teacher_validity(0.5, _samples(dead))  # some valid pixel: fine


def test_head_logs_valid_fraction_and_hook_stops_on_dead_batch():
    import sys
    sys.path.insert(0, osp.join(osp.dirname(__file__), '..', 'test_models'))
    from test_centernet3d_head import FH, FW, _RecordingDistill, make_head, random_outs, two_samples

    from monodle_plugin.engine.hooks import DistillWeightHook
    head = make_head()
    head.loss_depth_distill = _RecordingDistill()
    samples = two_samples()
    for s in samples:
        valid = torch.zeros(1, FH, FW, dtype=torch.bool)
        valid[0, 0, 0] = True
        s.gt_depth = PixelData(depth=torch.ones(1, FH, FW), valid=valid)
    losses = head.loss_by_feat(random_outs(head), samples)
    assert losses['distill_valid_frac'].item() == pytest.approx(1 / (FH * FW))
    hook = DistillWeightHook()
    hook.after_train_iter(None, 0, dict(data_samples=samples), losses)  # fine
    for s in samples:
        s.gt_depth.valid = torch.zeros(1, FH, FW, dtype=torch.bool)
    losses = head.loss_by_feat(random_outs(head), samples)
    assert losses['distill_valid_frac'].item() == 0.0
    with pytest.raises(ValueError, match='no valid teacher depth pixel'):
        hook.after_train_iter(None, 0, dict(data_samples=samples), losses)


def test_load_da3_depth_warns_once_per_dead_file(tmp_path):
    ds = MonoDLEKittiDataset(data_root=MINI, split='train')
    info = ds.get_data_info(0)
    h, w = 375, 1242
    np.savez(tmp_path / f"{info['sample_id']}.npz", depth=np.full((h, w), np.nan, np.float32))
    steps = Compose([dict(type='LoadKittiMonoImage'), dict(type='LoadMonoDLEAnnotations'),
                     dict(type='MonoDLEAffineAug', output_size=(320, 96), test_mode=True),
                     dict(type='LoadDA3Depth', depth_dir=str(tmp_path)),
                     dict(type='PackMonoDLEInputs')])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        for _ in range(3):
            packed = steps(dict(info, box_type_3d=ds.box_type_3d, box_mode_3d=ds.box_mode_3d))
    dead = [w for w in caught if 'has no valid pixel' in str(w.message)]
    assert len(dead) == 1 and f"{info['sample_id']}.npz" in str(dead[0].message)
    assert packed['data_samples'].gt_depth.metainfo['on_missing'] == 'error'

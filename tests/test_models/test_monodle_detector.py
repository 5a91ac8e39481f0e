"""MonoDLE detector built from the DLA-34 config: loss and predict end to end on a tiny input."""
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from mmdet3d.registry import MODELS
from mmdet3d.structures import CameraInstance3DBoxes, Det3DDataSample
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

import monodle_plugin  # noqa: F401  (registers)

REPO = Path(__file__).resolve().parents[2]
H, W = 64, 128
P2 = [[700.0, 0, 60.0, 40.0], [0, 700.0, 30.0, 0.5], [0, 0, 1, 0.003], [0, 0, 0, 1]]


def build(**head_kwargs):
    cfg = Config.fromfile(str(REPO / 'configs/monodle/monodle_dla34_kitti.py'))
    init_default_scope('mmdet3d')
    cfg.model.bbox_head.update(head_kwargs)
    return MODELS.build(cfg.model)


def sample():
    ds = Det3DDataSample()
    g3, g2 = InstanceData(), InstanceData()
    g3.bboxes_3d = CameraInstance3DBoxes(torch.tensor([[0.5, 1.5, 10.0, 3.9, 1.5, 1.6, 0.2]]))
    g3.labels_3d = torch.tensor([1])
    g3.centers_2d = torch.tensor([[41.0, 30.6]])
    g3.depths = torch.tensor([10.0])
    g3.alphas = torch.tensor([1.0])
    g3.difficulty = torch.tensor([1])
    g2.bboxes = torch.tensor([[20.0, 12.0, 52.0, 36.0]])
    g2.labels = torch.tensor([1])
    ds.gt_instances_3d, ds.gt_instances = g3, g2
    ds.set_metainfo(dict(img_shape=(H, W), ori_shape=(H, W), cam2img=P2, crop_scale=1.0,
                         random_crop=False, box_type_3d=CameraInstance3DBoxes))
    return ds


def test_data_preprocessor_is_monodle_normalisation():
    model = build()
    img = torch.randint(0, 256, (3, H, W), dtype=torch.uint8)  # BGR as mmcv loads it
    data = model.data_preprocessor({'inputs': {'img': [img]}, 'data_samples': [sample()]},
                                   training=False)
    rgb = img.flip(0).float() / 255
    mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    torch.testing.assert_close(data['inputs']['imgs'][0], (rgb - mean) / std, rtol=1e-5,
                               atol=1e-5)


def test_loss_and_predict_end_to_end():
    model = build()
    img = torch.randint(0, 256, (3, H, W), dtype=torch.uint8)
    data = model.data_preprocessor({'inputs': {'img': [img, img]},
                                    'data_samples': [sample(), sample()]}, training=True)
    model.train()
    losses = model(**data, mode='loss')
    assert set(losses) == {'loss_heatmap', 'loss_offset_2d', 'loss_size_2d', 'loss_depth',
                           'loss_offset_3d', 'loss_size_3d', 'loss_heading'}
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert model.backbone.base_layer[0].weight.grad is not None
    feats = model.extract_feat(data['inputs'])
    assert feats[0].shape == (2, 64, H // 4, W // 4)

    model.eval()
    # a confident car at the target peak so that predict has something to decode
    with torch.no_grad():
        model.bbox_head.heatmap[2].bias.fill_(-10.0)
    data = model.data_preprocessor({'inputs': {'img': [img]}, 'data_samples': [sample()]},
                                   training=False)
    with torch.no_grad():
        out = model(**data, mode='predict')[0]
        raw = model(**data, mode='tensor')
    assert set(raw) == {'heatmap', 'offset_2d', 'size_2d', 'depth', 'offset_3d', 'size_3d',
                        'heading'}
    assert isinstance(out.pred_instances_3d.bboxes_3d, CameraInstance3DBoxes)
    assert len(out.pred_instances_3d) == 0 and len(out.pred_instances) == 0
    with torch.no_grad():
        model.bbox_head.heatmap[2].bias.fill_(math.log(9))  # p = 0.9 everywhere
        out = model(**data, mode='predict')[0]
    p3, p2 = out.pred_instances_3d, out.pred_instances
    assert len(p3) == 50 and set(p3.keys()) == {'bboxes_3d', 'scores_3d', 'labels_3d', 'alphas'}
    assert set(p2.keys()) == {'bboxes', 'scores', 'labels'} and p2.bboxes.shape == (50, 4)
    assert np.isfinite(p3.bboxes_3d.tensor.numpy()).all()


def test_channels_last_model_gives_same_outputs():
    torch.manual_seed(0)
    model = build().eval()
    x = {'imgs': torch.randn(1, 3, H, W)}
    with torch.no_grad():
        ref = model._forward(x)
        model.channels_last = True
        model.to(memory_format=torch.channels_last)
        out = model._forward(x)
    for k in ref:
        torch.testing.assert_close(out[k], ref[k], rtol=1e-4, atol=1e-5)


def test_channel_mismatch_fails_at_build_naming_both_sides():
    """A stale derived in_channels (e.g. after --cfg-options on the backbone) fails clearly."""
    cfg = Config.fromfile(str(REPO / 'configs/ablation/monodle_yolo8_kitti.py'))
    init_default_scope('mmdet3d')
    cfg.model.backbone.update(ultralytics_model='yolo11', pretrained=False)  # 64/64/128/256
    with pytest.raises(ValueError, match=r'backbone produces channels \[64, 64, 128, 256\]'):
        MODELS.build(cfg.model)
    cfg.model.neck.in_channels = [64, 64, 128, 256]
    with pytest.raises(ValueError, match='bbox_head.in_channels=32'):
        MODELS.build(cfg.model)


def test_missing_pretrained_backbone_file_is_a_clear_error(tmp_path):
    cfg = Config.fromfile(str(REPO / 'configs/monodle/monodle_dla34_kitti.py'))
    init_default_scope('mmdet3d')
    missing = str(tmp_path / 'dla34_imagenet_mmdet3d.pth')
    cfg.model.backbone.init_cfg = dict(type='Pretrained', checkpoint=missing)
    model = MODELS.build(cfg.model)
    with pytest.raises(FileNotFoundError, match='--imagenet-dla34'):
        model.init_weights()


def test_head_test_cfg_override_is_honoured_and_conflicts_fail():
    """mmdet's SingleStageDetector overwrites bbox_head.test_cfg with model.test_cfg (None in
    our configs): an override of the head's score threshold must still reach the head."""
    cfg = Config.fromfile(str(REPO / 'configs/monodle/monodle_dla34_kitti.py'))
    init_default_scope('mmdet3d')
    cfg.model.bbox_head.test_cfg.score_thr = 0.05
    model = MODELS.build(cfg.model)
    assert model.bbox_head.test_cfg['score_thr'] == 0.05
    cfg.model.test_cfg = dict(cfg.model.bbox_head.test_cfg, score_thr=0.3)
    with pytest.raises(ValueError, match='model.test_cfg and model.bbox_head.test_cfg'):
        MODELS.build(cfg.model)


def test_test_batches_of_four_predict_what_single_images_do():
    """The real configs validate / test 4 images per process: batches of 4 of the kitti_mini
    frames (test pipeline, last batch of 1) predict per image what batches of 1 do (float64, so
    that the batch size's different convolution blocking cannot reorder near-equal scores)."""
    from mmengine.runner import Runner
    torch.manual_seed(0)
    cfg = Config.fromfile(str(REPO / 'configs/monodle/monodle_dla34_kitti.py'))
    init_default_scope('mmdet3d')
    cfg.model.bbox_head.test_cfg.score_thr = 0.1
    model = MODELS.build(cfg.model).double().eval()
    loader_cfg = cfg.test_dataloader
    loader_cfg.dataset.data_root = str(REPO / 'demo/kitti_mini/KITTI') + '/'
    loader_cfg.dataset.pipeline[1].output_size = (W, H)
    loader_cfg.update(num_workers=0, persistent_workers=False, pin_memory=False)
    preds = {}
    for batch in (1, 4):
        preds[batch] = []
        for data in Runner.build_dataloader(dict(loader_cfg, batch_size=batch), seed=0):
            data = model.data_preprocessor(data, False)
            assert len(data['data_samples']) in ((batch, ) if batch == 1 else (4, 1))
            data['inputs']['imgs'] = data['inputs']['imgs'].double()
            with torch.no_grad():
                preds[batch] += model(**data, mode='predict')
    assert len(preds[1]) == len(preds[4]) == 13
    for one, four in zip(preds[1], preds[4]):
        assert one.metainfo['sample_idx'] == four.metainfo['sample_idx']
        assert len(one.pred_instances_3d) > 0
        for field in ('pred_instances_3d', 'pred_instances'):
            a, b = one.get(field), four.get(field)
            for key in a.keys():
                va, vb = a.get(key), b.get(key)
                va, vb = getattr(va, 'tensor', va), getattr(vb, 'tensor', vb)
                torch.testing.assert_close(vb, va, rtol=1e-6, atol=1e-6, msg=f'{field}.{key}')

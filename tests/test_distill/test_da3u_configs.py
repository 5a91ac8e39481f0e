"""The seed system's DLA-34 + DA3 config and the uncertainty-guided (+DA3+U) variants: they train
three steps on kitti_mini, their switches are consistent, distill.lambda=0 is the baseline, and
the head's dense uncertainty branch is the seed's (names, init, output, error when missing)."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from test_da3_configs import comparable  # the parts of a config that define training

import monodle_plugin  # noqa: F401  (registers)
from monodle_plugin.utils.distill_switches import apply_distill_switches

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
MINI = osp.join(ROOT, 'demo', 'kitti_mini', 'KITTI')
CONFIGS = {
    'dla34_da3': 'configs/monodle/monodle_dla34_da3_kitti.py',
    'dla34_da3u': 'configs/monodle/monodle_dla34_da3u_kitti.py',
    'yolo8_da3u': 'configs/ablation/monodle_yolo8_da3u_kitti.py',
}
BASELINES = {'dla34_da3': 'configs/monodle/monodle_dla34_kitti.py',
             'dla34_da3u': 'configs/monodle/monodle_dla34_kitti.py',
             'yolo8_da3u': 'configs/ablation/monodle_yolo8_kitti.py'}
SMALL = (320, 96)  # (W, H) network input for speed


def load(name, expand=True):
    """The config as MonoDLERunner builds from it (``expand``: switches expanded)."""
    cfg = Config.fromfile(osp.join(ROOT, CONFIGS[name]))
    if expand:
        apply_distill_switches(cfg)
    return cfg


@pytest.mark.parametrize('name', list(CONFIGS))
def test_switches_agree_and_lambda_zero_is_the_baseline(name):
    cfg = load(name)
    unc = name.endswith('da3u')
    head = cfg.model.bbox_head
    assert cfg.distill['use_uncertainty'] is unc
    assert head.get('use_distill_uncertainty', False) is unc
    assert head.loss_depth_distill.type == (
        'UncertaintyDepthDistillLoss' if unc else 'DepthDistillLoss')
    assert (head.loss_depth_distill.loss_weight, head.loss_depth_distill.foreground_weight) == (
        0.5, 5.0)  # the seed's distill.lambda and foreground_weight
    again = copy.deepcopy(cfg)
    apply_distill_switches(again)  # expanding again (a dumped config): no change
    assert again.to_dict() == cfg.to_dict()
    off = load(name, expand=False)
    off.merge_from_dict({'distill.lambda': 0.0})
    apply_distill_switches(off)
    assert comparable(off) == comparable(Config.fromfile(osp.join(ROOT, BASELINES[name])))


def test_use_uncertainty_switch_on_the_plain_da3_config():
    """`--cfg-options distill.use_uncertainty=True` on the DA3 config = the DA3+U config."""
    cfg = load('dla34_da3', expand=False)
    cfg.merge_from_dict({'distill.use_uncertainty': True})
    changes = apply_distill_switches(cfg)
    assert any('UncertaintyDepthDistillLoss' in c for c in changes)
    assert 'model.bbox_head.use_distill_uncertainty=True' in changes
    assert comparable(cfg) == comparable(load('dla34_da3u'))
    back = load('dla34_da3u', expand=False)
    back.merge_from_dict({'distill.use_uncertainty': False})
    apply_distill_switches(back)
    assert comparable(back) == comparable(load('dla34_da3'))


def test_loader_switches_reach_load_da3_depth():
    cfg = load('dla34_da3', expand=False)
    cfg.merge_from_dict({'distill.scale_by_crop': False, 'distill.interpolation': 'bilinear'})
    changes = apply_distill_switches(cfg)
    loader = [s for s in cfg.train_dataloader.dataset.pipeline if s['type'] == 'LoadDA3Depth']
    assert loader[0]['scale_by_crop'] is False and loader[0]['interpolation'] == 'bilinear'
    assert any(c.startswith('train pipeline: LoadDA3Depth(') and 'scale_by_crop=False, '
               "interpolation='bilinear'" in c for c in changes)


def build_head(**kwargs):
    from mmdet3d.registry import MODELS
    return MODELS.build(dict(type='CenterNet3DHead', in_channels=8, feat_channels=16, **kwargs))


def test_uncertainty_branch_is_the_seeds():
    torch.manual_seed(0)
    head = build_head(use_distill_uncertainty=True)
    names = {k: tuple(v.shape) for k, v in head.state_dict().items()
             if k.startswith('dense_depth_uncertainty.')}
    assert names == {'dense_depth_uncertainty.0.weight': (16, 8, 3, 3),
                     'dense_depth_uncertainty.0.bias': (16, ),
                     'dense_depth_uncertainty.2.weight': (1, 16, 1, 1),
                     'dense_depth_uncertainty.2.bias': (1, )}
    branch = head.dense_depth_uncertainty
    assert branch[0].weight.std().item() == pytest.approx(0.001, rel=0.2)  # fill_fc_weights
    assert branch[2].bias.abs().max() == 0 and isinstance(branch[1], torch.nn.ReLU)
    x = torch.randn(2, 8, 6, 10)
    outs = head(x)
    assert outs['dense_depth_uncertainty'].shape == (2, 1, 6, 10)
    torch.testing.assert_close(outs['dense_depth_uncertainty'], branch(x))
    assert 'dense_depth_uncertainty' not in build_head()(x)  # the default: no branch


def test_uncertainty_loss_without_branch_is_an_error():
    with pytest.raises(ValueError, match='use_distill_uncertainty=True'):
        build_head(loss_depth_distill=dict(type='UncertaintyDepthDistillLoss'))


@pytest.mark.slow
@pytest.mark.parametrize('name', list(CONFIGS))
def test_config_trains_three_steps_on_kitti_mini(name):
    """Three optimiser steps on kitti_mini (LiDAR depth standing in for DA3 labels); with the
    uncertainty branch, the distillation loss reaches and changes it."""
    from mmdet3d.registry import DATASETS, MODELS
    from mmengine.dataset import default_collate
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope

    cfg = load(name)
    init_default_scope(cfg.default_scope)
    pipeline = copy.deepcopy(cfg.train_dataloader.dataset.pipeline)
    for step in pipeline:
        if step['type'] == 'MonoDLEAffineAug':
            step['output_size'] = SMALL
        if step['type'] == 'LoadDA3Depth':
            step['depth_dir'] = 'lidar_depth'
    dataset = DATASETS.build(dict(cfg.train_dataloader.dataset, data_root=MINI,
                                  pipeline=pipeline))
    torch.manual_seed(0)
    model_cfg = copy.deepcopy(cfg.model)
    if model_cfg.backbone.type == 'UltralyticsBackbone':
        model_cfg.backbone.pretrained = False
    model = MODELS.build(model_cfg)
    model.train()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    unc = name.endswith('da3u')
    before = (model.bbox_head.dense_depth_uncertainty[2].weight.detach().clone() if unc else None)
    for it in range(3):
        batch = default_collate([dataset[2 * it], dataset[2 * it + 1]])
        losses = model.train_step(batch, optim_wrapper)
        assert 'loss_depth_distill' in losses and 'loss_heatmap' in losses
        assert all(torch.isfinite(v) for v in losses.values()), losses
    if unc:
        assert not torch.equal(before, model.bbox_head.dense_depth_uncertainty[2].weight)

"""DA3 configs: lambda 0 is the baseline (same config, same losses); lambda > 0 adds only
``loss_depth_distill``, computed on the teacher map the pipeline produced."""
import copy
import functools
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import default_collate

import monodle_plugin  # noqa: F401  (registers)
from monodle_plugin.engine.distill_switches import DISTILL_KEYS, apply_distill_switches

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
MINI = osp.join(ROOT, 'demo', 'kitti_mini', 'KITTI')
BASELINE = {v: osp.join(ROOT, 'configs', 'ablation', f'monodle_{v}_kitti.py')
            for v in ('yolo8', 'yolo11', 'yolo26')}
DA3 = {v: osp.join(ROOT, 'configs', 'ablation', f'monodle_{v}_da3_kitti.py')
       for v in ('yolo8', 'yolo11', 'yolo26')}
MAIN = osp.join(ROOT, 'configs', 'monodle_yolo8_da3.py')
SMALL = (320, 96)  # network input for speed; the head output is 80 x 24


def with_switches(path, **switches):
    """A DA3 config with switches changed the way ``--cfg-options`` does under any tool
    (``merge_from_dict``), then applied as ``MonoDLERunner.from_cfg`` applies them."""
    cfg = Config.fromfile(path)
    cfg.merge_from_dict({k if k == 'use_da3_depth' else f'distill.{k}': v
                         for k, v in switches.items()})
    apply_distill_switches(cfg)
    return cfg


@functools.cache
def load(path):
    """Parse a config once per test session; do not mutate."""
    return Config.fromfile(path)


def comparable(cfg):
    """The parts of a config that define training (the switches and the top-level names
    the DA3 pieces are written under excluded; no custom hooks = an empty list)."""
    d = copy.deepcopy(cfg.to_dict())
    for key in ('use_da3_depth', 'distill', 'train_pipeline', 'da3_train_pipeline',
                'da3_loss_depth_distill', 'launcher', 'work_dir'):
        d.pop(key, None)
    if not d.get('custom_hooks', True):
        d.pop('custom_hooks')
    return d


@pytest.mark.parametrize('version', ['yolo8', 'yolo11', 'yolo26'])
def test_da3_configs_add_exactly_the_three_pieces(version):
    base = load(BASELINE[version]).to_dict()
    da3 = load(DA3[version])
    steps = [t['type'] for t in da3.train_dataloader.dataset.pipeline]
    assert steps == [t['type'] for t in base['train_dataloader']['dataset']['pipeline']][:3] + [
        'LoadDA3Depth', 'EncodeMonoDLETargets', 'PackMonoDLEInputs']
    loader = da3.train_dataloader.dataset.pipeline[3]
    assert loader['depth_dir'] == 'DA3_depth_results' and loader['on_missing'] == 'error'
    loss = da3.model.bbox_head.loss_depth_distill
    assert (loss.type, loss.loss_weight, loss.loss_type, loss.foreground_weight) == (
        'DepthDistillLoss', 0.5, 'l1', 5.0)
    assert [h['type'] for h in da3.custom_hooks] == ['DistillWeightHook']
    assert da3.model.backbone == base['model']['backbone']
    assert da3.distill['lambda_'] == 0.5 and da3.use_da3_depth is True
    # the runner dumps the config: it must format (a `lambda` key, a Python keyword, would not)
    assert "type='DepthDistillLoss'" in da3.pretty_text
    # the written-out pieces already agree with the switches: the runner changes nothing
    assert apply_distill_switches(copy.deepcopy(da3)) == []


def test_the_switches_are_the_main_recipe_and_the_demo():
    main, demo = load(MAIN), load(osp.join(ROOT, 'configs', 'demo',
                                            'monodle_yolo8_da3_kitti_mini.py'))
    assert comparable(main) == comparable(load(DA3['yolo8']))
    assert tuple(main.distill) == DISTILL_KEYS
    assert apply_distill_switches(copy.deepcopy(main)) == []
    assert apply_distill_switches(copy.deepcopy(demo)) == []
    assert demo.distill == dict(main.distill, depth_dir='lidar_depth')


@pytest.mark.parametrize('path,switches', [(DA3['yolo8'], {'lambda_': 0.0}),
                                           (MAIN, {'use_da3_depth': False})])
def test_switched_off_is_the_baseline_config(path, switches):
    off = with_switches(path, **switches)
    assert comparable(off) == comparable(load(BASELINE['yolo8']))
    assert 'LoadDA3Depth' not in str(off.train_dataloader)


def test_main_config_paths():
    cfg = load(MAIN)
    assert cfg.train_dataloader.dataset.data_root == 'data/KITTI/'
    assert cfg.train_dataloader.dataset.pipeline[3].depth_dir == 'DA3_depth_results'
    assert cfg.total_batch_size == 16


def small_pipeline(cfg):
    steps = copy.deepcopy(cfg.train_dataloader.dataset.pipeline)
    for step in steps:
        if step['type'] == 'MonoDLEAffineAug':
            step.update(output_size=SMALL, random_flip=1.0, random_crop=1.0)
        if step['type'] == 'LoadDA3Depth':
            step['depth_dir'] = 'lidar_depth'
    return steps


def build_model(cfg):
    from mmdet3d.registry import MODELS
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.pretrained = False
    return MODELS.build(model_cfg)


@pytest.mark.slow
def test_same_batch_same_losses_and_teacher_reaches_the_loss():
    from mmdet3d.registry import DATASETS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet3d')
    torch.set_num_threads(1)
    base_cfg = load(BASELINE['yolo8'])
    da3_cfg = load(DA3['yolo8'])
    # one batch with the teacher map (the DA3 pipeline, LiDAR as teacher), crop and flip on
    ds = DATASETS.build(dict(type='MonoDLEKittiDataset', data_root=MINI, split='train',
                             pipeline=small_pipeline(da3_cfg)))
    np.random.seed(0)
    batch = default_collate([ds[0], ds[1]])
    assert all('gt_depth' in s for s in batch['data_samples'])
    assert all(s.metainfo['random_crop'] and s.metainfo['flip'] for s in batch['data_samples'])

    torch.manual_seed(0)
    base = build_model(base_cfg)
    models = {'base': base}
    for name, cfg in (('lambda0', with_switches(DA3['yolo8'], **{'lambda_': 0.0})),
                      ('weight0', da3_cfg), ('da3', da3_cfg)):
        model = build_model(cfg)
        model.load_state_dict(base.state_dict())
        models[name] = model
    models['weight0'].bbox_head.loss_depth_distill.loss_weight = 0.0

    seen = {}
    distill = models['da3'].bbox_head.loss_depth_distill
    original = distill.forward

    def spy(depth_logit, teacher, valid, **kwargs):
        seen.update(teacher=teacher, valid=valid)
        return original(depth_logit, teacher, valid, **kwargs)

    distill.forward = spy
    losses = {}
    for name, model in models.items():
        model.train()
        data = model.data_preprocessor(copy.deepcopy(batch), training=True)
        losses[name] = {k: v.item() for k, v in model(**data, mode='loss').items()}

    # weight 0 (DistillWeightHook switched it off): logged as 0, the rest is the baseline's
    assert losses['weight0'].pop('loss_depth_distill') == 0
    assert set(losses['lambda0']) == set(losses['base']) == set(losses['weight0'])
    for name in ('lambda0', 'weight0'):
        assert losses[name] == losses['base'], name
    extra = set(losses['da3']) - set(losses['base'])
    assert extra == {'loss_depth_distill', 'distill_valid_frac'}  # + the logged valid fraction
    assert np.isfinite(losses['da3']['loss_depth_distill'])
    assert 0 < losses['da3']['distill_valid_frac'] <= 1
    assert losses['da3']['loss_depth_distill'] > 0
    for key in losses['base']:
        assert losses['da3'][key] == losses['base'][key], key
    expected = torch.stack([s.gt_depth.depth for s in batch['data_samples']])
    assert seen['teacher'].shape == (2, 1, SMALL[1] // 4, SMALL[0] // 4)
    torch.testing.assert_close(seen['teacher'].cpu(), expected)
    assert seen['valid'].any()


def stock_runner_cfg(path, *options):
    """The config MonoDLERunner builds from, after mmdet3d's stock tools/train.py steps
    (``Config.fromfile``, ``merge_from_dict(--cfg-options)``) and the runner's own rules."""
    from mmengine.config import DictAction
    cfg = Config.fromfile(path)
    if options:
        action = DictAction(option_strings=['--cfg-options'], dest='cfg_options')
        ns = type('NS', (), {})()
        action(None, ns, list(options))
        cfg.merge_from_dict(ns.cfg_options)
    apply_distill_switches(cfg)
    return cfg


def test_cfg_options_on_the_switches_reach_the_pieces():
    """`--cfg-options distill.lambda=0` (the seed's spelling) gives exactly the baseline, and
    other switches change the head loss, instead of being silently ignored."""
    baseline = comparable(load(BASELINE['yolo8']))
    for option in ('distill.lambda=0', 'distill.lambda_=0', 'use_da3_depth=False'):
        assert comparable(stock_runner_cfg(MAIN, option)) == baseline, option
    silog = stock_runner_cfg(MAIN, 'distill.loss_type=silog', 'distill.lambda=0.25',
                             'distill.warmup_iters=100', 'distill.depth_dir=lidar_depth')
    loss = silog.model.bbox_head.loss_depth_distill
    assert loss.type == 'DepthDistillLoss' and loss.loss_type == 'silog'
    assert loss.loss_weight == 0.25 and silog.distill['lambda_'] == 0.25
    assert 'lambda' not in silog.distill  # renamed: the config dump must still work
    assert "lambda_=0.25" in silog.pretty_text
    steps = [t for t in silog.train_dataloader.dataset.pipeline if t['type'] == 'LoadDA3Depth']
    assert len(steps) == 1 and steps[0]['depth_dir'] == 'lidar_depth'
    hooks = [h for h in silog.custom_hooks if h['type'] == 'DistillWeightHook']
    assert len(hooks) == 1 and hooks[0]['warmup_iters'] == 100


def test_switch_errors_name_the_known_keys():
    with pytest.raises(KeyError, match=r"unknown distill switch\(es\) 'lamda'; 'lamda': did you "
                       r"mean 'lambda'\? \(known: lambda \(or lambda_\), loss_type"):
        stock_runner_cfg(MAIN, 'distill.lamda=0')
    with pytest.raises(KeyError, match="'total_batch_sise' is unknown: did you mean "
                       "'total_batch_size'"):
        stock_runner_cfg(MAIN, 'total_batch_sise=1')
    with pytest.raises(KeyError, match="'use_da3_dept' is unknown: did you mean"):
        stock_runner_cfg(MAIN, 'use_da3_dept=False')
    with pytest.raises(KeyError, match='not a \\+DA3 config'):
        stock_runner_cfg(BASELINE['yolo8'], 'distill.lambda=0.5')
    with pytest.raises(ValueError, match='distill.lambda must be >= 0'):
        stock_runner_cfg(MAIN, 'distill.lambda=-1')
    # issue 25: nan read as 0 (distillation silently off), inf trained to NaN weights, 'abc'
    # failed without the key's name
    for option in ('distill.lambda=nan', 'distill.lambda=inf', 'distill.lambda=abc',
                   'distill.foreground_weight=nan', 'distill.max_depth=inf'):
        key, value = option.split('=')
        with pytest.raises(ValueError, match=f'{key} must be >= 0 and finite.*got .*{value}'):
            stock_runner_cfg(MAIN, option)

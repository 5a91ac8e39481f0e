"""DA3 configs: lambda 0 is the baseline (same config, same losses); lambda > 0 adds only
``loss_depth_distill``, computed on the teacher map the pipeline produced. The configs write the
switches only (each value once); MonoDLERunner expands them (``apply_distill_switches``)."""
import copy
import functools
import glob
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import default_collate

import monodle_plugin  # noqa: F401  (registers)
from monodle_plugin.utils.distill_switches import (
    DISTILL_KEYS,
    OPTIONAL_DISTILL_KEYS,
    apply_distill_switches,
)

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
    """A config as MonoDLERunner builds from it (switches expanded into the DA3 pieces), parsed
    once per test session; do not mutate."""
    cfg = Config.fromfile(path)
    apply_distill_switches(cfg)
    return cfg


def expanded_again(cfg):
    """``cfg`` (already expanded) expanded once more, as a run of its dumped config does."""
    again = copy.deepcopy(cfg)
    apply_distill_switches(again)
    return again.to_dict()


def comparable(cfg):
    """The parts of a config that define training (the switches and the top-level names
    the DA3 pieces are written under excluded; no custom hooks = an empty list)."""
    d = copy.deepcopy(cfg.to_dict())
    for key in ('use_da3_depth', 'distill', 'distill_expanded_from', 'train_pipeline',
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
    # expanding again changes nothing (a dumped config runs as it is)
    assert expanded_again(da3) == da3.to_dict()


def test_the_switches_are_the_main_recipe_and_the_demo():
    main, demo = load(MAIN), load(osp.join(ROOT, 'configs', 'demo',
                                            'monodle_yolo8_da3_kitti_mini.py'))
    assert comparable(main) == comparable(load(DA3['yolo8']))
    assert tuple(main.distill) == DISTILL_KEYS + tuple(OPTIONAL_DISTILL_KEYS)
    assert expanded_again(main) == main.to_dict()
    assert expanded_again(demo) == demo.to_dict()
    assert demo.distill == dict(main.distill, depth_dir='lidar_depth', cache=True)


@pytest.mark.parametrize('path,switches', [(DA3['yolo8'], {'lambda_': 0.0}),
                                           (MAIN, {'use_da3_depth': False})])
def test_switched_off_is_the_baseline_config(path, switches):
    off = with_switches(path, **switches)
    assert comparable(off) == comparable(load(BASELINE['yolo8']))
    assert 'LoadDA3Depth' not in str(off.train_dataloader)


def test_configs_write_each_distillation_value_once():
    """No config file writes a DA3 piece by hand: only the switches (the demo's depth_dir,
    da3u's use_uncertainty, ...) say what distillation means."""
    pieces = ('LoadDA3Depth', 'loss_depth_distill', 'DistillWeightHook',
              'use_distill_uncertainty', 'DepthDistillLoss')
    for path in sorted(glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)):
        code = [line.split('#')[0] for line in open(path)]
        found = [p for p in pieces if any(p in line for line in code)]
        if path.endswith(osp.join('_base_', 'models', 'monodle_dla34.py')):
            assert found == ['loss_depth_distill']  # the head's default: None
            continue
        assert not found, (path, found)


#: every training config: (its meaning from the name) -> the expanded distillation
ALL_CONFIGS = sorted(p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'),
                                          recursive=True) if '_base_' not in p)


@pytest.mark.parametrize('path', ALL_CONFIGS, ids=lambda p: osp.relpath(p, ROOT))
def test_every_config_resolves_to_what_its_name_means(path):
    """+DA3 configs (``_da3`` in the name, and the main recipe and its demo) get the three
    pieces with the base switches (``_da3u``: Kendall's loss and the uncertainty branch;
    ``_seedrepro``: the seed's teacher); ``distill.lambda=0`` gives exactly the config without
    ``_da3`` in its name (``use_uncertainty`` and the reproduce regime kept apart); the others
    have no distillation at all."""
    name = osp.basename(path)
    cfg = load(path)
    head = cfg.model.bbox_head
    steps = [s['type'] for s in cfg.train_dataloader.dataset.pipeline]
    hooks = [h['type'] for h in cfg.get('custom_hooks', None) or []]
    if '_da3' not in name:
        assert 'distill' not in cfg and 'use_da3_depth' not in cfg
        assert head.loss_depth_distill is None and 'LoadDA3Depth' not in steps
        assert 'DistillWeightHook' not in hooks and not head.get('use_distill_uncertainty')
        return
    unc, repro = '_da3u' in name, 'seedrepro' in name
    assert steps.index('LoadDA3Depth') == steps.index('MonoDLEAffineAug') + 1
    [loader] = [s for s in cfg.train_dataloader.dataset.pipeline if s['type'] == 'LoadDA3Depth']
    assert loader['depth_dir'] == ('lidar_depth' if 'kitti_mini' in name else
                                   'DA3_depth_results')
    assert (loader['scale_by_crop'], loader['interpolation']) == (
        (False, 'bilinear') if repro else (True, 'nearest'))
    loss = head.loss_depth_distill
    assert loss.type == ('UncertaintyDepthDistillLoss' if unc else 'DepthDistillLoss')
    assert (loss.loss_weight, loss.foreground_weight) == (0.5, 5.0)
    assert head.get('use_distill_uncertainty', False) is unc
    assert hooks.count('DistillWeightHook') == 1
    off = with_switches(path, lambda_=0.0)
    top_level = osp.dirname(path) == osp.join(ROOT, 'configs')
    if 'kitti_mini' in name or unc or (top_level and name != 'monodle_yolo8_da3.py'):
        return  # no config without distillation to compare with
    baseline = osp.join(osp.dirname(path), name.replace('_da3', ''))
    if name == 'monodle_yolo8_da3.py':
        baseline = BASELINE['yolo8']
    assert comparable(off) == comparable(load(baseline)), baseline


def test_a_piece_written_by_hand_must_agree_with_the_switches():
    """A piece in a config that says something else than a switch is a one-line error naming
    the field, the switch and the fix (not silently one of them); one that agrees is kept."""
    def by_hand(**switches):
        cfg = Config.fromfile(MAIN)
        cfg.merge_from_dict(switches)
        cfg.train_dataloader.dataset.pipeline.insert(3, dict(type='LoadDA3Depth',
                                                             depth_dir='DA3_depth_results'))
        cfg.model.bbox_head.loss_depth_distill = dict(type='DepthDistillLoss', loss_weight=0.5)
        return cfg

    cfg = by_hand()
    changes = apply_distill_switches(cfg)
    assert comparable(cfg) == comparable(load(MAIN))
    assert changes == ["custom_hooks: DistillWeightHook(warmup_iters=0, off_after_epoch=None)"]
    for option, message in (
            ('distill.lambda=0.25', 'loss_depth_distill.loss_weight=0.5 conflicts with '
                                    'distill.lambda=0.25'),
            ('distill.depth_dir=x', "LoadDA3Depth.depth_dir='DA3_depth_results' conflicts "
                                    "with distill.depth_dir='x'"),
            ('distill.use_uncertainty=True', "type='DepthDistillLoss' conflicts with "
                                             'distill.use_uncertainty')):
        with pytest.raises(ValueError, match='the distill switches write the DA3 pieces') as err:
            key, value = option.split('=')
            value = {'True': True}.get(value, value)  # the value --cfg-options would give
            apply_distill_switches(by_hand(**{key: value}))
        assert message in str(err.value) and '\n' not in str(err.value)
        assert str(err.value).startswith(MAIN + ': ')
    bad = by_hand()
    bad.model.bbox_head.use_distill_uncertainty = True
    with pytest.raises(ValueError, match='use_distill_uncertainty=True conflicts with '
                                         'distill.use_uncertainty=False'):
        apply_distill_switches(bad)
    with pytest.raises(ValueError, match='LoadDA3Depth in the training pipeline, model.bbox_head.'
                                         'loss_depth_distill written in the config but '
                                         r'distillation is off \(use_da3_depth=False\)'):
        apply_distill_switches(by_hand(use_da3_depth=False))


@pytest.mark.parametrize('option', [{}, {'distill.lambda': 0}, {'distill.loss_type': 'silog'},
                                    {'distill.use_uncertainty': True}])
def test_the_dumped_config_shows_the_pieces_and_runs_with_other_switches(option):
    """The config a run dumps (its text, as in the work dir and the checkpoint's meta.cfg) holds
    the expanded pieces and the switches they came from; run again, with or without other
    switches, it gives what the original config gives with them."""
    dumped = Config.fromstring(load(MAIN).pretty_text, '.py')
    for piece in ("type='LoadDA3Depth'", "type='DepthDistillLoss'", "type='DistillWeightHook'",
                  'distill_expanded_from = dict('):
        assert piece in load(MAIN).pretty_text, piece
    dumped.merge_from_dict(option)
    apply_distill_switches(dumped)
    original = Config.fromfile(MAIN)
    original.merge_from_dict(option)
    apply_distill_switches(original)
    assert dumped.to_dict() == original.to_dict()


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
    # a string such as 'no' (or 'false' in a config file) would read as True
    for option in ('distill.cache=no', 'distill.scale_by_crop=0',
                   'distill.use_uncertainty=yes'):
        key = option.split('=')[0]
        with pytest.raises(ValueError, match=f'{key} must be True or False, got'):
            stock_runner_cfg(MAIN, option)

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

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
MINI = osp.join(ROOT, 'demo', 'kitti_mini', 'KITTI')
BASELINE = {v: osp.join(ROOT, 'configs', 'ablation', f'monodle_{v}_kitti.py')
            for v in ('yolo8', 'yolo11', 'yolo26')}
DA3 = {v: osp.join(ROOT, 'configs', 'ablation', f'monodle_{v}_da3_kitti.py')
       for v in ('yolo8', 'yolo11', 'yolo26')}
MAIN = osp.join(ROOT, 'configs', 'monodle_yolo8_da3.py')
SMALL = (320, 96)  # network input for speed; the head output is 80 x 24


def with_switches(path, tmp_path, **switches):
    """Copy of a DA3 config whose switches are changed before its wiring block runs."""
    text = open(path).read()
    folder = osp.dirname(path)
    text = text.replace("'./", f"'{folder}/").replace("'../", f"'{folder}/../")
    marker = '\n# ---- wiring'
    assert marker in text, 'every DA3 config carries the wiring block'
    lines = ''.join(f"\ndistill[{k!r}] = {v!r}" for k, v in switches.items()
                    if k != 'use_da3_depth')
    if 'use_da3_depth' in switches:
        lines += f"\nuse_da3_depth = {switches['use_da3_depth']!r}"
    out = tmp_path / f'cfg_{abs(hash(str(switches)))}.py'
    out.write_text(text.replace(marker, lines + '\n' + marker, 1))
    return Config.fromfile(str(out))


@functools.cache
def load(path):
    """Parse a config once per test session (YOLO configs dry-run the backbone); do not mutate."""
    return Config.fromfile(path)


def comparable(cfg):
    """The parts of a config that define training (the switches themselves excluded)."""
    d = copy.deepcopy(cfg.to_dict())
    for key in ('use_da3_depth', 'distill', 'train_pipeline'):
        d.pop(key, None)
    return d


@pytest.mark.parametrize('version', ['yolo8', 'yolo11', 'yolo26'])
def test_da3_configs_add_exactly_the_three_pieces(version):
    base = load(BASELINE[version]).to_dict()
    da3 = load(DA3[version])
    steps = [t['type'] for t in da3.train_dataloader.dataset.pipeline]
    assert steps == [t['type'] for t in base['train_dataloader']['dataset']['pipeline']][:3] + [
        'LoadDA3Depth', 'PackMonoDLEInputs']
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


@pytest.mark.parametrize('path,switches', [(DA3['yolo8'], {'lambda_': 0.0}),
                                           (MAIN, {'use_da3_depth': False})])
def test_switched_off_is_the_baseline_config(tmp_path, path, switches):
    off = with_switches(path, tmp_path, **switches)
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
def test_same_batch_same_losses_and_teacher_reaches_the_loss(tmp_path):
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
    for name, cfg in (('lambda0', with_switches(DA3['yolo8'], tmp_path, **{'lambda_': 0.0})),
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

    assert set(losses['lambda0']) == set(losses['base']) == set(losses['weight0'])
    for name in ('lambda0', 'weight0'):
        assert losses[name] == losses['base'], name
    extra = set(losses['da3']) - set(losses['base'])
    assert extra == {'loss_depth_distill'} and np.isfinite(losses['da3']['loss_depth_distill'])
    assert losses['da3']['loss_depth_distill'] > 0
    for key in losses['base']:
        assert losses['da3'][key] == losses['base'][key], key
    expected = torch.stack([s.gt_depth.depth for s in batch['data_samples']])
    assert seen['teacher'].shape == (2, 1, SMALL[1] // 4, SMALL[0] // 4)
    torch.testing.assert_close(seen['teacher'].cpu(), expected)
    assert seen['valid'].any()


def _train_cfg(argv):
    """tools/train.py's config as the command line builds it."""
    import importlib.util
    spec = importlib.util.spec_from_file_location('monodle_train_tool',
                                                  osp.join(ROOT, 'tools', 'train.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool.build_cfg(tool.parse_args(argv))[0]


def test_cfg_options_on_the_switches_reach_the_built_pieces():
    """`--cfg-options distill.lambda=0` (the seed's spelling) gives exactly the baseline, and
    other switches change the head loss, instead of being silently ignored."""
    def training_part(cfg):  # minus what tools/train.py itself adds
        d = comparable(cfg)
        for key in ('launcher', 'work_dir'):
            d.pop(key, None)
        if not d.get('custom_hooks', True):
            d.pop('custom_hooks')
        return d

    baseline = training_part(load(BASELINE['yolo8']))
    assert training_part(_train_cfg([MAIN, '--cfg-options', 'distill.lambda=0'])) == baseline
    assert training_part(_train_cfg([MAIN, '--cfg-options', 'use_da3_depth=False'])) == baseline
    silog = _train_cfg([MAIN, '--cfg-options', 'distill.loss_type=silog',
                        'distill.lambda_=0.25'])
    loss = silog.model.bbox_head.loss_depth_distill
    assert loss.type == 'DepthDistillLoss' and loss.loss_type == 'silog'
    assert loss.loss_weight == 0.25
    steps = [t['type'] for t in silog.train_dataloader.dataset.pipeline]
    assert steps.count('LoadDA3Depth') == 1
    assert [h['type'] for h in silog.custom_hooks].count('DistillWeightHook') == 1
    with pytest.raises(KeyError, match='not a \\+DA3 config'):
        _train_cfg([BASELINE['yolo8'], '--cfg-options', 'distill.lambda=0.5'])

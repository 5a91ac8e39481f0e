"""Registry backbones (mmdet ResNet-50, mmpretrain ConvNeXt, timm through mmpretrain.TIMMBackbone)
under DLAUp + CenterNet3D: stride-4..32 maps with the configs' channels, three training steps on
kitti_mini from random weights, frozen variants that do not move, local-weights-only errors.

mmpretrain and timm are the optional extra ``EXTRAS=backbones`` (``make test`` installs it); the
tests that need them skip, saying so, when it is absent."""
import importlib.util
from pathlib import Path

import pytest
import torch

import monodle_plugin  # noqa: F401  (registers)

ROOT = Path(__file__).resolve().parents[2]
MINI = ROOT / 'demo' / 'kitti_mini' / 'KITTI'
CONFIGS = sorted((ROOT / 'configs' / 'backbones').glob('*.py'))
TINY = (160, 64)  # (W, H): strides 4..32 divide it
HAVE_EXTRA = all(importlib.util.find_spec(m) is not None for m in ('mmpretrain', 'timm'))
needs_extra = pytest.mark.skipif(
    not HAVE_EXTRA, reason='mmpretrain / timm not installed: the optional extra '
    'EXTRAS=backbones (make test installs it; or EXTRAS=backbones make env)')


def _needs_extra(path: Path) -> bool:
    return 'convnext_tiny' in path.stem or 'timm' in path.stem


def _params(path: Path):
    marks = [pytest.mark.slow] if 'hrnet' in path.stem or 'resnet50' in path.stem else []
    if _needs_extra(path):
        marks.append(needs_extra)
    return pytest.param(path, id=path.stem, marks=marks)


def _load(path):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    cfg = Config.fromfile(str(path))
    init_default_scope(cfg.default_scope)
    if _needs_extra(path):
        import mmpretrain.models  # noqa: F401  (what the config's custom_imports does)
    return cfg


def _random_weights(model_cfg):
    backbone = dict(model_cfg.backbone, init_cfg=None)
    if 'pretrained' in backbone:
        backbone['pretrained'] = False
    return dict(model_cfg, backbone=backbone)


def test_expected_configs_exist():
    names = {p.stem for p in CONFIGS}
    assert names >= {
        'monodle_resnet50_kitti', 'monodle_resnet50_frozen_kitti', 'monodle_convnext_tiny_kitti',
        'monodle_convnext_tiny_frozen_kitti', 'monodle_timm_convnextv2_tiny_kitti',
        'monodle_timm_convnextv2_tiny_frozen_kitti', 'monodle_timm_fastvit_t8_kitti',
        'monodle_timm_efficientvit_b1_kitti', 'monodle_timm_hrnet_w32_kitti',
        'monodle_dla34_frozen_kitti'}


@pytest.mark.parametrize('path', [_params(p) for p in CONFIGS])
def test_registry_backbone_config_trains_three_steps(path):
    """Maps at strides 4/8/16/32 with the written-out channels, then three optimiser steps
    (with the config's schedulers applied at epoch 0); frozen variants keep every backbone
    weight, the others move it; the head always learns."""
    from mmdet3d.registry import DATASETS, MODELS, PARAM_SCHEDULERS
    from mmengine.dataset import default_collate
    from mmengine.optim import build_optim_wrapper

    cfg = _load(path)
    frozen = 'frozen' in path.stem
    torch.manual_seed(0)
    model = MODELS.build(_random_weights(cfg.model))
    model.init_weights()
    model.eval()
    with torch.no_grad():
        feats = model.backbone(torch.rand(1, 3, TINY[1], TINY[0]))
    assert [tuple(f.shape) for f in feats] == [
        (1, c, TINY[1] // s, TINY[0] // s)
        for c, s in zip(cfg.model.neck.in_channels, (4, 8, 16, 32))]
    assert cfg.model.bbox_head.in_channels == cfg.model.neck.in_channels[0]

    pipeline = cfg.train_dataloader.dataset.pipeline
    for step in pipeline:
        if step['type'] == 'MonoDLEAffineAug':
            step['output_size'] = TINY
    dataset = DATASETS.build(dict(cfg.train_dataloader.dataset, data_root=str(MINI),
                                  pipeline=pipeline))
    model.train()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    for sched in cfg.param_scheduler:  # epoch-0 learning rates, as the runner sets them
        PARAM_SCHEDULERS.build(dict(sched, optimizer=optim_wrapper))
    before = {k: v.detach().clone() for k, v in model.backbone.named_parameters()}
    head_before = model.bbox_head.heatmap[0].weight.detach().clone()
    for it in range(3):
        batch = default_collate([dataset[2 * it], dataset[2 * it + 1]])
        losses = model.train_step(batch, optim_wrapper)
        assert all(torch.isfinite(v) for v in losses.values()), losses
    moved = [k for k, v in model.backbone.named_parameters() if not torch.equal(v, before[k])]
    if frozen:
        # mmpretrain ConvNeXt keeps its output norms trainable (frozen_stages covers stages)
        assert all(k.startswith('norm') for k in moved), moved[:5]
        # frozen by requires_grad=False: no gradient computed, none all-reduced under DDP
        trainable = [k for k, p in model.backbone.named_parameters() if p.requires_grad]
        assert all(k.startswith('norm') for k in trainable), trainable[:5]
    else:
        assert moved
    assert not torch.equal(head_before, model.bbox_head.heatmap[0].weight)


@needs_extra
def test_timm_weights_are_local_only(tmp_path):
    from mmdet3d.registry import MODELS
    cfg = _load(ROOT / 'configs' / 'backbones' / 'monodle_timm_fastvit_t8_kitti.py')
    missing = tmp_path / 'fastvit_t8.safetensors'
    cfg.model.backbone.pretrained_cfg_overlay = dict(file=str(missing))
    with pytest.raises(FileNotFoundError, match=r'fastvit_t8\.safetensors.*pretrained=False'):
        MODELS.build(cfg.model)
    cfg.model.backbone.pop('pretrained_cfg_overlay')
    with pytest.raises(ValueError, match='would download'):
        MODELS.build(cfg.model)


@needs_extra
def test_timm_local_file_is_loaded(tmp_path):
    """A local safetensors file (timm's own key names) ends up in the built backbone."""
    import timm
    from mmdet3d.registry import MODELS
    from safetensors.torch import save_file
    torch.manual_seed(3)
    full = timm.create_model('efficientvit_b1', pretrained=False)
    path = tmp_path / 'efficientvit_b1.safetensors'
    save_file({k: v.contiguous() for k, v in full.state_dict().items()}, str(path))
    cfg = _load(ROOT / 'configs' / 'backbones' / 'monodle_timm_efficientvit_b1_kitti.py')
    cfg.model.backbone.pretrained_cfg_overlay = dict(file=str(path))
    model = MODELS.build(cfg.model)
    ours = list(model.backbone.timm_model.parameters())
    ref = list(full.parameters())[:len(ours)]  # same module order; the classifier comes last
    assert len(ours) > 10
    assert all(torch.equal(a, b) for a, b in zip(ours, ref))


def test_missing_init_cfg_file_names_it(tmp_path):
    from mmdet3d.registry import MODELS
    cfg = _load(ROOT / 'configs' / 'backbones' / 'monodle_resnet50_kitti.py')
    missing = str(tmp_path / 'resnet50-0676ba61.pth')
    cfg.model.backbone.init_cfg = dict(type='Pretrained', checkpoint=missing)
    model = MODELS.build(cfg.model)  # building for testing needs no ImageNet file
    with pytest.raises(FileNotFoundError, match=r'resnet50-0676ba61\.pth.*init_cfg=None'):
        model.init_weights()
    cfg.model.backbone.init_cfg = dict(type='Pretrained', checkpoint='torchvision://resnet50')
    with pytest.raises(ValueError, match='never downloaded'):
        MODELS.build(cfg.model).init_weights()


def test_warmup_keeps_lr0_groups_at_zero():
    """paramwise lr_mult=0 (a frozen part) stays at lr 0 through MonoDLE's cosine warm-up."""
    from mmdet3d.registry import PARAM_SCHEDULERS
    from mmengine.optim import OptimWrapper
    a, b = torch.nn.Parameter(torch.ones(1)), torch.nn.Parameter(torch.ones(1))
    opt = torch.optim.Adam([dict(params=[a], lr=1e-3), dict(params=[b], lr=0.0)], lr=1e-3)
    sched = PARAM_SCHEDULERS.build(dict(type='MonoDLECosineWarmupLR', warmup_epochs=5,
                                        optimizer=OptimWrapper(opt)))
    for _ in range(6):
        assert opt.param_groups[1]['lr'] == 0.0
        assert opt.param_groups[0]['lr'] > 0.0
        sched.step()

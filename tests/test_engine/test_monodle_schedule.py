"""MonoDLE's schedule: Adam + L2 on non-bias parameters, cosine warm-up, x0.1 at 95 / 125."""
import math
from pathlib import Path

import torch
from mmdet3d.registry import PARAM_SCHEDULERS
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

import monodle_plugin  # noqa: F401  (registers)

REPO = Path(__file__).resolve().parents[2]


def official_lrs(base_lr=1.25e-3, epochs=140):
    """Learning rate of each 0-indexed epoch with MonoDLE's trainer loop: LambdaLR over
    decay_list [90, 120] created first, then CosineWarmupLR(5, 1e-5); after each epoch the
    warm-up steps while epoch < 5, otherwise the LambdaLR."""
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([param], lr=base_lr)
    lam = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda e: 0.1 ** sum(e >= d for d in (90, 120)))
    warm = torch.optim.lr_scheduler.LambdaLR(  # closed form of CosineWarmupLR
        opt, lambda e: (1e-5 + (base_lr - 1e-5) * (1 - math.cos(math.pi * e / 5)) / 2) / base_lr)
    lrs = []
    for epoch in range(epochs):
        lrs.append(opt.param_groups[0]['lr'])
        opt.step()
        (warm if epoch < 5 else lam).step()
    return lrs


def test_lr_per_epoch_equals_official():
    cfg = Config.fromfile(str(REPO / 'configs/_base_/schedules/monodle_140e.py'))
    init_default_scope('mmdet3d')
    model = torch.nn.Linear(2, 2)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    scheds = [PARAM_SCHEDULERS.build(dict(s, optimizer=wrapper)) for s in cfg.param_scheduler]
    ours = []
    for _ in range(cfg.max_epochs):
        ours.append(wrapper.optimizer.param_groups[0]['lr'])
        wrapper.optimizer.step()
        for s in scheds:
            s.step()
    ref = official_lrs()
    for epoch, (a, b) in enumerate(zip(ours, ref)):
        assert math.isclose(a, b, rel_tol=1e-9), (epoch, a, b)
    assert ours[0] == 1e-5 and math.isclose(ours[5], 1.25e-3)
    assert math.isclose(ours[94], 1.25e-3) and math.isclose(ours[95], 1.25e-4)
    assert math.isclose(ours[124], 1.25e-4) and math.isclose(ours[125], 1.25e-5)


def test_weight_decay_only_on_non_bias_parameters():
    cfg = Config.fromfile(str(REPO / 'configs/_base_/schedules/monodle_140e.py'))
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    assert isinstance(wrapper.optimizer, torch.optim.Adam)
    decay = {id(p): g['weight_decay'] for g in wrapper.optimizer.param_groups
             for p in g['params']}
    # MonoDLE: 'bias' in name -> no decay (BatchNorm bias too); everything else 1e-5
    assert decay[id(model[0].bias)] == 0 and decay[id(model[1].bias)] == 0
    assert decay[id(model[0].weight)] == 1e-5 and decay[id(model[1].weight)] == 1e-5

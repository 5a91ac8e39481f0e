"""The batch / lr rule MonoDLERunner applies under every tool (design.md, "Batch and lr")."""
import pytest
from mmengine.config import Config

from monodle_plugin.engine.batch_lr_scaling import (
    apply_batch_plan,
    plan_batch,
    world_size_from_env,
)


def make_cfg(total=16, per_gpu='auto', lr=1.25e-3, enable=True, base=16):
    return Config(dict(total_batch_size=total, train_dataloader=dict(batch_size=per_gpu),
                       optim_wrapper=dict(optimizer=dict(type='Adam', lr=lr)),
                       auto_scale_lr=dict(enable=enable, base_batch_size=base)))


def mmengine_lr(cfg, world):
    """What mmengine's Runner.scale_lr makes of the config lr after apply_batch_plan."""
    lr = cfg.optim_wrapper.optimizer.lr
    if cfg.auto_scale_lr.enable:
        lr *= world * cfg.train_dataloader.batch_size / cfg.auto_scale_lr.base_batch_size
    return lr


@pytest.mark.parametrize('world, per_gpu', [(1, 16), (2, 8), (4, 4), (8, 2), (16, 1)])
def test_same_total_same_lr(world, per_gpu):
    cfg = make_cfg()
    plan = plan_batch(cfg, world)
    assert (plan.per_gpu, plan.total, plan.batch_from_user) == (per_gpu, 16, False)
    assert plan.lr == pytest.approx(1.25e-3)
    apply_batch_plan(cfg, plan)
    assert cfg.train_dataloader.batch_size == per_gpu
    assert mmengine_lr(cfg, world) == pytest.approx(plan.lr)


def test_integer_batch_is_per_process_and_scales_lr_linearly():
    cfg = make_cfg(per_gpu=16)  # e.g. --cfg-options train_dataloader.batch_size=16 on 4 GPUs
    plan = plan_batch(cfg, 4)
    assert plan.total == 64 and plan.scale_lr and plan.batch_from_user
    assert plan.lr == pytest.approx(1.25e-3 * 64 / 16)
    apply_batch_plan(cfg, plan)
    assert mmengine_lr(cfg, 4) == pytest.approx(plan.lr)
    assert 'x 64/16' in plan.describe() and 'Effective total batch 64' in plan.describe()
    assert 'set per process' in plan.describe()


def test_indivisible_total_is_scaled_and_disabled_scaling_warns():
    plan = plan_batch(make_cfg(), 3)
    assert (plan.per_gpu, plan.total) == (5, 15)
    assert plan.lr == pytest.approx(1.25e-3 * 15 / 16)
    kept = plan_batch(make_cfg(enable=False), 3)  # --cfg-options auto_scale_lr.enable=False
    assert kept.lr == pytest.approx(1.25e-3) and not kept.scale_lr
    assert 'WARNING' in kept.describe()


def test_smaller_total_of_demo_config():
    # configs/demo: total 4 while the lr is tuned for 16 -> x 0.25
    plan = plan_batch(make_cfg(total=4), 1)
    assert plan.total == 4 and plan.lr == pytest.approx(1.25e-3 / 4)
    assert '(total_batch_size 4 // 1 processes)' in plan.describe()


def test_errors(monkeypatch):
    with pytest.raises(ValueError, match='smaller than the number of processes'):
        plan_batch(make_cfg(total=4), 8)
    with pytest.raises(ValueError, match="'auto' needs a top-level total_batch_size"):
        plan_batch(Config(dict(train_dataloader=dict(batch_size='auto'))), 1)
    with pytest.raises(ValueError, match="must be 'auto'"):
        plan_batch(make_cfg(per_gpu='4'), 1)
    with pytest.raises(ValueError, match='total_batch_size must be an integer'):
        plan_batch(make_cfg(total=16.0), 1)
    monkeypatch.delenv('WORLD_SIZE', raising=False)
    with pytest.raises(RuntimeError, match='WORLD_SIZE'):
        world_size_from_env('pytorch')
    with pytest.raises(ValueError, match='unknown launcher'):
        world_size_from_env('torchrun')


def test_world_size_from_env(monkeypatch):
    monkeypatch.setenv('WORLD_SIZE', '4')
    monkeypatch.setenv('SLURM_NTASKS', '16')
    assert world_size_from_env('none') == 1
    assert world_size_from_env('pytorch') == 4
    assert world_size_from_env('slurm') == 16

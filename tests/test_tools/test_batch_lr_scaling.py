"""The batch / lr rule of tools/train.py (design.md, "Configs")."""
import pytest
from mmengine.config import Config

from monodle_plugin.engine.batch_lr_scaling import (
    apply_batch_plan,
    plan_batch,
    world_size_from_env,
)


def make_cfg(total=16, per_gpu=16, lr=1.25e-3, enable=False, base=16):
    return Config(dict(total_batch_size=total, train_dataloader=dict(batch_size=per_gpu),
                       optim_wrapper=dict(optimizer=dict(type='Adam', lr=lr)),
                       auto_scale_lr=dict(enable=enable, base_batch_size=base)))


@pytest.mark.parametrize('world, per_gpu', [(1, 16), (2, 8), (4, 4), (8, 2), (16, 1)])
def test_same_total_same_lr(world, per_gpu):
    cfg = make_cfg()
    plan = plan_batch(cfg, world, batch_from_user=False)
    assert (plan.per_gpu, plan.total) == (per_gpu, 16)
    assert not plan.scale_lr and plan.lr == pytest.approx(1.25e-3)
    apply_batch_plan(cfg, plan)
    assert cfg.train_dataloader.batch_size == per_gpu
    assert cfg.auto_scale_lr.enable is False


def test_user_batch_scales_lr_linearly():
    cfg = make_cfg()
    plan = plan_batch(cfg, 4, batch_from_user=True)  # 16 per GPU on 4 GPUs: total 64
    assert plan.total == 64 and plan.scale_lr
    assert plan.lr == pytest.approx(1.25e-3 * 64 / 16)
    apply_batch_plan(cfg, plan)
    # mmengine's Runner.scale_lr multiplies by world * batch_size / base_batch_size
    assert cfg.auto_scale_lr == dict(enable=True, base_batch_size=16)
    assert 'x 64/16' in plan.describe() and 'Effective total batch 64' in plan.describe()


def test_indivisible_total_is_scaled_and_no_scale_lr_warns():
    cfg = make_cfg()
    plan = plan_batch(cfg, 3, batch_from_user=False)
    assert (plan.per_gpu, plan.total) == (5, 15)
    assert plan.lr == pytest.approx(1.25e-3 * 15 / 16)
    kept = plan_batch(cfg, 3, batch_from_user=False, scale_lr=False)
    assert kept.lr == pytest.approx(1.25e-3)
    assert 'WARNING' in kept.describe()


def test_smaller_total_of_demo_config():
    # configs/demo: total 4 while the lr is tuned for 16 -> x 0.25
    plan = plan_batch(make_cfg(total=4, per_gpu=4), 1, batch_from_user=False)
    assert plan.total == 4 and plan.lr == pytest.approx(1.25e-3 / 4)


def test_errors(monkeypatch):
    with pytest.raises(ValueError, match='smaller than the number of processes'):
        plan_batch(make_cfg(total=4), 8, batch_from_user=False)
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

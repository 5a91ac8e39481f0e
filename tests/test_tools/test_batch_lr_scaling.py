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


def test_indivisible_total_is_refused_and_disabled_scaling_warns():
    """16 on 3 processes trained at 15 with the lr scaled, logged at INFO only (issue 25): an
    error naming the totals 3 processes divide, the counts that divide 16 and the per-process
    batch that accepts 15."""
    with pytest.raises(ValueError) as err:
        plan_batch(make_cfg(), 3)
    msg = str(err.value)
    assert 'total_batch_size 16 is not divisible by the 3 processes' in msg
    assert 'total_batch_size=15 or 18' in msg and '1 / 2 / 4 processes' in msg
    assert 'train_dataloader.batch_size=5' in msg
    plan = plan_batch(make_cfg(per_gpu=5), 3)  # the change accepted: per-process batch
    assert (plan.per_gpu, plan.total) == (5, 15)
    assert plan.lr == pytest.approx(1.25e-3 * 15 / 16)
    kept = plan_batch(make_cfg(enable=False, total=15), 3)  # auto_scale_lr.enable=False
    assert kept.lr == pytest.approx(1.25e-3) and not kept.scale_lr
    assert 'WARNING' in kept.describe()


def test_indivisible_total_under_torchrun_env_exit_2(tmp_path, capsys, monkeypatch):
    """tools/train.py TINY --launcher pytorch as tools/dist_train.sh TINY 3 starts it
    (WORLD_SIZE=3): exit 2 before any process group, naming the config and the fix."""
    from tool_helpers import TINY_CONFIG, load_tool

    from monodle_plugin.utils.cli import run_cli
    monkeypatch.delenv('MONODLE_DEBUG', raising=False)
    for var, value in dict(WORLD_SIZE='3', RANK='0', LOCAL_RANK='0').items():
        monkeypatch.setenv(var, value)
    capsys.readouterr()
    with pytest.raises(SystemExit) as ex:
        run_cli(load_tool('train').main, [TINY_CONFIG, '--launcher', 'pytorch', '--work-dir',
                                          str(tmp_path / 'wd'), '--cfg-options',
                                          'total_batch_size=4'])
    err = capsys.readouterr().err
    assert ex.value.code == 2, err
    assert TINY_CONFIG in err and 'total_batch_size=3 or 6' in err, err
    assert 'train_dataloader.batch_size=1' in err


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

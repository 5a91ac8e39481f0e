"""One config, one run, whatever tool starts it: mmdet3d's own tools/train.py (the one inside
the installed mmdet3d package, which `mim train mmdet3d` runs) and ours train the demo config
with the same batch, lr, pipeline, hooks and losses, and the distillation switches work the
same under the stock tool.

Each tool runs in one fresh process that trains twice (imports dominate the run time)."""
import glob
import json
import os
import os.path as osp
import runpy
import subprocess
import sys
import textwrap

import mmdet3d
import pytest
from tool_helpers import REPO, tool_env

from monodle_plugin.utils.cli import UserError

STOCK_TRAIN = osp.join(osp.dirname(mmdet3d.__file__), '.mim', 'tools', 'train.py')
OUR_TRAIN = str(REPO / 'tools' / 'train.py')
DEMO = 'configs/demo/monodle_yolo8_da3_kitti_mini.py'
MINI = 'demo/kitti_mini/KITTI/'
# tiny and short: 320 x 96 input, the first 4 frames, no val
TINY = ['train_dataloader.dataset.indices=4', 'train_dataloader.dataset.pipeline.2.output_size='
        '(320,96)', 'train_cfg.max_epochs=1', 'train_cfg.val_begin=1000']
# the demo config: one step at its total batch of 2, logged
DEMO_TINY = TINY + ['train_dataloader.dataset.indices=2', 'default_hooks.logger.interval=1']
# the YOLOv8 ablation configs on kitti_mini: two steps of 2 frames
ABLATION = TINY + [f'{loader}.dataset.data_root={MINI}' for loader in ('train_dataloader',
                                                                       'val_dataloader')] + [
    f'val_evaluator.data_root={MINI}', 'model.backbone.pretrained=False', 'total_batch_size=2',
    'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
    'val_dataloader.num_workers=0', 'val_dataloader.persistent_workers=False',
    'default_hooks.logger.interval=1']
# runs every (tool, argv) job in this one process, as `python tool argv...` would
DRIVER = textwrap.dedent("""
    import json, runpy, sys, time
    for tool, argv in json.loads(sys.argv[1]):
        sys.argv = [tool] + argv
        try:
            runpy.run_path(tool, run_name='__main__')
        except SystemExit as exc:  # our entry points end with sys.exit(0)
            if exc.code not in (0, None):
                raise
        time.sleep(1.1)  # the next run gets its own timestamp (log folder, logger name)
""")


def run_jobs(jobs) -> subprocess.CompletedProcess:
    env = tool_env()
    env['PYTHONPATH'] = os.pathsep.join([str(REPO), env.get('PYTHONPATH', '')])
    proc = subprocess.run([sys.executable, '-c', DRIVER, json.dumps(jobs)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        pytest.fail(f'{jobs} exited with {proc.returncode}:\n{proc.stdout[-3000:]}\n'
                    f'{proc.stderr[-3000:]}')
    return proc


def run_folder(work_dir) -> str:
    [run] = glob.glob(osp.join(str(work_dir), '2*'))
    return run


def scalars(work_dir) -> list:
    """Logged training scalars per iteration, minus timings."""
    with open(osp.join(run_folder(work_dir), 'vis_data', 'scalars.json')) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [{k: v for k, v in row.items() if k not in ('time', 'data_time', 'memory', 'eta')}
            for row in rows]


def log_lines(work_dir, needle: str) -> list:
    [log] = glob.glob(osp.join(run_folder(work_dir), '*.log'))
    return [line.split(' - ')[-1] for line in open(log).read().splitlines() if needle in line]


def dumped_config(work_dir) -> str:
    """The config the runner dumped (what was trained), minus the run-specific lines."""
    [path] = glob.glob(osp.join(str(work_dir), '*.py'))
    return '\n'.join(line for line in open(path).read().splitlines()
                     if not line.startswith(('work_dir', 'launcher')))


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    """mmdet3d's tool: the demo config, and the +DA3 ablation config with distill.lambda=0;
    ours: the demo config, and the YOLOv8 baseline config."""
    tmp = tmp_path_factory.mktemp('tools')
    wd = {name: tmp / name for name in ('stock', 'ours', 'off', 'base')}

    def job(tool, config, name, *options, second=False):
        # the second job of a process gets a visualizer of its own (mmengine keeps one
        # instance per name and process, which would write into the first run's folder)
        return [tool, [config, '--work-dir', str(wd[name]), '--cfg-options', *options,
                       f'visualizer.name=vis_{"b" if second else "a"}']]

    run_jobs([job(STOCK_TRAIN, DEMO, 'stock', *DEMO_TINY),
              job(STOCK_TRAIN, 'configs/ablation/monodle_yolo8_da3_kitti.py', 'off',
                  *ABLATION, 'distill.lambda=0', second=True)])
    run_jobs([job(OUR_TRAIN, DEMO, 'ours', *DEMO_TINY),
              job(OUR_TRAIN, 'configs/ablation/monodle_yolo8_kitti.py', 'base', *ABLATION,
                  second=True)])
    return wd


@pytest.mark.slow
def test_stock_tool_and_ours_train_the_same(runs):
    assert osp.isfile(STOCK_TRAIN), STOCK_TRAIN
    [line] = log_lines(runs['stock'], 'Effective total batch')
    assert line.startswith('Effective total batch 2 = 1 process(es) x 2 per process '
                           '(total_batch_size 2 // 1 processes); lr 0.0015 = config lr '
                           '0.0015 x 2/2')
    assert log_lines(runs['ours'], 'Effective total batch') == [line]
    rows = scalars(runs['stock'])
    assert len(rows) == 1 and rows[0]['iter'] == 1
    assert 0 < rows[0]['lr'] <= 1.5e-3  # first iteration of the demo's linear warm-up
    assert rows[0]['loss_depth_distill'] > 0 and rows[0]['distill_lambda'] == 0.5
    assert scalars(runs['ours']) == rows  # same batch, lr and every loss value
    assert dumped_config(runs['ours']) == dumped_config(runs['stock'])  # pipeline, hooks, ...
    # the config writes the switches only; the run's log and dumped config show the pieces
    dumped = dumped_config(runs['stock'])
    for piece in ("type='LoadDA3Depth'", "depth_dir='lidar_depth'", 'cache=True',
                  "type='DepthDistillLoss'",
                  "type='DistillWeightHook'"):
        assert piece in dumped, piece
    assert [line.split(': ', 2)[1] for line in log_lines(runs['stock'], 'distill switches')] == [
        'train pipeline', 'model.bbox_head.loss_depth_distill=DepthDistillLoss(loss_weight=0.5, '
        "loss_type='l1', foreground='heatmap', foreground_weight=5.0, variance_factor=0.5, "
        'silog_weighted=False)', 'custom_hooks']
    info = json.load(open(osp.join(run_folder(runs['stock']), 'run_info.json')))
    assert (info['per_process_batch'], info['effective_lr']) == (2, pytest.approx(1.5e-3))


@pytest.mark.slow
def test_stock_tool_lambda0_is_the_baseline(runs):
    """`--cfg-options distill.lambda=0` under mmdet3d's tool = the YOLOv8 baseline config: the
    same losses at both steps (the second step shows the first step's gradients)."""
    base = scalars(runs['base'])
    assert [r['iter'] for r in base] == [1, 2] and 'loss_depth_distill' not in base[0]
    assert scalars(runs['off']) == base
    assert log_lines(runs['off'], 'distill switches') == [
        'distill switches: off (distill.lambda=0): no LoadDA3Depth, loss_depth_distill or '
        'DistillWeightHook']
    assert 'LoadDA3Depth' not in dumped_config(runs['off'])


@pytest.mark.parametrize('option, message', [
    ('distill.lamda=0', "unknown distill switch(es) 'lamda'; 'lamda': did you mean 'lambda'? "
                        '(known: lambda (or lambda_), loss_type'),
    ('total_batch_sise=1', 'top-level key total_batch_sise=1 is not in the config and nothing '
                           'reads it, so it would be ignored; did you mean total_batch_size?')])
def test_stock_tool_rejects_misspelt_switches(tmp_path, monkeypatch, option, message):
    """mmdet3d's tools/train.py itself (run in this process): the error, before any build."""
    monkeypatch.chdir(REPO)
    monkeypatch.setattr(sys, 'argv', [STOCK_TRAIN, DEMO, '--work-dir', str(tmp_path),
                                      '--cfg-options', option])
    with pytest.raises((KeyError, UserError)) as error:
        runpy.run_path(STOCK_TRAIN, run_name='__main__')
    assert message in str(error.value)
    assert not os.listdir(tmp_path)  # nothing was built or written

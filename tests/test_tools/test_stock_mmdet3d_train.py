"""One config, one run, whatever tool starts it: mmdet3d's own tools/train.py (the one inside
the installed mmdet3d package, which `mim train mmdet3d` runs) and ours train the demo config
with the same batch, lr, pipeline, hooks and losses, and the distillation switches work the
same under the stock tool."""
import glob
import json
import os
import os.path as osp
import subprocess
import sys

import mmdet3d
import pytest
from tool_helpers import REPO, tool_env

STOCK_TRAIN = osp.join(osp.dirname(mmdet3d.__file__), '.mim', 'tools', 'train.py')
OUR_TRAIN = str(REPO / 'tools' / 'train.py')
DEMO = 'configs/demo/monodle_yolo8_da3_kitti_mini.py'
MINI = 'demo/kitti_mini/KITTI/'
# tiny and short: 320 x 96 input, the first 4 frames (= one step at total batch 4), no val
TINY = ['train_dataloader.dataset.indices=4', 'train_dataloader.dataset.pipeline.2.output_size='
        '(320,96)', 'train_cfg.max_epochs=1', 'train_cfg.val_begin=1000']


def env() -> dict:
    """Tool environment with this checkout importable (custom_imports=['monodle_plugin'])."""
    e = tool_env()
    e['PYTHONPATH'] = os.pathsep.join([str(REPO), e.get('PYTHONPATH', '')]).rstrip(os.pathsep)
    return e


def train(tool: str, config: str, work_dir, *options: str, ok: bool = True):
    """Run ``tool config`` from the repository root; return (process, run folder or None)."""
    proc = subprocess.run([sys.executable, tool, config, '--work-dir', str(work_dir),
                           '--cfg-options', *options], cwd=REPO, env=env(),
                          capture_output=True, text=True, timeout=600)
    if ok and proc.returncode != 0:
        pytest.fail(f'{tool} exited with {proc.returncode}:\n{proc.stdout[-3000:]}\n'
                    f'{proc.stderr[-3000:]}')
    runs = sorted(glob.glob(osp.join(str(work_dir), '2*')))
    return proc, (runs[-1] if runs else None)


def scalars(run_dir: str) -> list:
    """Logged training scalars per iteration, minus timings."""
    with open(osp.join(run_dir, 'vis_data', 'scalars.json')) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [{k: v for k, v in row.items() if k not in ('time', 'data_time', 'memory', 'eta')}
            for row in rows]


def dumped_config(run_dir: str, work_dir) -> str:
    """The config the runner dumped (what was trained), minus the run-specific lines."""
    [path] = glob.glob(osp.join(str(work_dir), '*.py')) or glob.glob(osp.join(run_dir, '*.py'))
    return '\n'.join(line for line in open(path).read().splitlines()
                     if not line.startswith(('work_dir', 'launcher')))


def start_line(proc) -> str:
    [line] = {line.split(' - ')[-1] for line in (proc.stdout + proc.stderr).splitlines()
              if 'Effective total batch' in line}
    return line


@pytest.mark.slow
def test_stock_tool_and_ours_train_the_same(tmp_path):
    assert osp.isfile(STOCK_TRAIN), STOCK_TRAIN
    stock, stock_run = train(STOCK_TRAIN, DEMO, tmp_path / 'stock', *TINY)
    ours, our_run = train(OUR_TRAIN, DEMO, tmp_path / 'ours', *TINY)
    expected = ('Effective total batch 4 = 1 process(es) x 4 per process (total_batch_size 4 '
                '// 1 processes); lr 0.0003125 = config lr 0.00125 x 4/16')
    assert start_line(stock).startswith(expected)
    assert start_line(ours) == start_line(stock)
    rows = scalars(stock_run)
    assert len(rows) == 1 and rows[0]['iter'] == 1
    assert rows[0]['lr'] == pytest.approx(3.125e-4, rel=1e-12)
    assert rows[0]['loss_depth_distill'] > 0 and rows[0]['distill_lambda'] == 0.5
    assert scalars(our_run) == rows  # same batch, lr and every loss value
    assert dumped_config(our_run, tmp_path / 'ours') == dumped_config(stock_run,
                                                                      tmp_path / 'stock')
    info = json.load(open(osp.join(stock_run, 'run_info.json')))
    assert (info['per_process_batch'], info['effective_lr']) == (4, pytest.approx(3.125e-4))


@pytest.mark.slow
def test_stock_tool_lambda0_is_the_baseline(tmp_path):
    """`--cfg-options distill.lambda=0` under mmdet3d's tool = the YOLOv8 baseline config: same
    losses at both steps of an epoch (the second step shows the first step's gradients)."""
    data = [f'{loader}.dataset.data_root={MINI}' for loader in ('train_dataloader',
                                                                'val_dataloader')]
    common = data + [f'val_evaluator.data_root={MINI}', 'model.backbone.pretrained=False',
                     'total_batch_size=2', 'train_dataloader.num_workers=0',
                     'train_dataloader.persistent_workers=False',
                     'val_dataloader.num_workers=0', 'val_dataloader.persistent_workers=False',
                     'default_hooks.logger.interval=1'] + TINY
    _, base_run = train(STOCK_TRAIN, 'configs/ablation/monodle_yolo8_kitti.py',
                        tmp_path / 'base', *common)
    off, off_run = train(STOCK_TRAIN, 'configs/ablation/monodle_yolo8_da3_kitti.py',
                         tmp_path / 'off', *common, 'distill.lambda=0')
    base_rows = scalars(base_run)
    assert [r['iter'] for r in base_rows] == [1, 2]
    assert scalars(off_run) == base_rows
    log = off.stdout + off.stderr
    assert 'distill switches: model.bbox_head.loss_depth_distill removed (distill.lambda=0)' in log


@pytest.mark.slow
def test_stock_tool_rejects_a_misspelt_switch(tmp_path):
    proc, _ = train(STOCK_TRAIN, DEMO, tmp_path / 'typo', 'distill.lamda=0', ok=False)
    assert proc.returncode != 0
    assert "unknown distill switch(es) 'lamda'; 'lamda': did you mean 'lambda'?" in proc.stderr
    assert 'known: lambda (or lambda_), loss_type' in proc.stderr

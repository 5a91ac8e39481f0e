"""tools/train.py -> tools/test.py (AP40 table, --show-dir PNGs) -> tools/demo.py on kitti_mini."""
import glob
import json
import os
import subprocess
import sys

import cv2
import pytest
from tool_helpers import REPO, TINY_CONFIG, run_tool, tool_env

from monodle_plugin.engine.cpu_distributed import prepare_distributed

IMAGE = 'demo/kitti_mini/KITTI/training/image_2/000000.png'


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    """One epoch of the tiny YOLOv8 config (3 steps of 2 images); returns (ckpt, log text)."""
    tmp = tmp_path_factory.mktemp('train')
    proc = run_tool(['tools/train.py', TINY_CONFIG, '--work-dir', tmp / 'wd', '--progress',
                     '--cfg-options', 'train_cfg.max_epochs=1', 'train_cfg.val_begin=1000'], tmp)
    last = (tmp / 'wd' / 'last_checkpoint').read_text()
    # --progress: ProgressBarHook over the 3 training iterations, on stderr only
    assert '3/3' in proc.stderr and 'ETA' not in proc.stdout
    return last, proc.stdout + proc.stderr, tmp


@pytest.mark.slow  # shares a ~30 s training run (module fixture)
def test_train_layout_and_startup_log(checkpoint):
    ckpt, log, tmp = checkpoint
    run_dir = os.path.dirname(ckpt)
    # work_dirs/<name>/<timestamp>/ holds the log, run_info.json and the checkpoints
    assert os.path.basename(ckpt) == 'epoch_1.pth' and os.path.dirname(run_dir) == str(tmp / 'wd')
    assert glob.glob(os.path.join(run_dir, '*.log'))
    assert ('Effective total batch 2 = 1 process(es) x 2 per process (total_batch_size 2 // 1 '
            'processes); lr 0.00015625 = config lr 0.00125 x 2/16') in log
    info = json.load(open(os.path.join(run_dir, 'run_info.json')))
    assert info['total_batch'] == 2 and info['effective_lr'] == pytest.approx(1.5625e-4)
    assert info['seed'] == 444 and info['mmdet3d'] == '1.4.0'


@pytest.mark.slow  # shares a ~30 s training run (module fixture)
def test_test_py_prints_ap40_table_and_paints(checkpoint):
    ckpt, _, tmp = checkpoint
    proc = run_tool(['tools/test.py', TINY_CONFIG, ckpt, '--work-dir', tmp / 'test',
                     '--show-dir', 'vis'], tmp)
    out = proc.stdout + proc.stderr
    for row in ('Car         strict   0.70/0.70/0.70  3D     AP40',
                'Pedestrian  strict   0.50/0.50/0.50  BEV    AP40',
                'Overall     strict   (class mean)    3D     AP40'):
        assert row in out, row
    # ProgressBarHook (tools/test.py adds it): the 2 test images, on stderr only
    assert '2/2' in proc.stderr and 'ETA' not in proc.stdout
    metrics = glob.glob(str(tmp / 'test' / '*' / 'metrics.json'))
    assert len(metrics) == 1
    assert 'KITTI/Car_3D_AP40_moderate_strict' in json.load(open(metrics[0]))
    # the run record MonoDLERunner wrote, batch plan included, is not overwritten by test.py
    info = json.load(open(os.path.join(os.path.dirname(metrics[0]), 'run_info.json')))
    assert info['total_batch'] == 2 and info['per_process_batch'] == 2
    assert out.count('Run info: ') == 1
    pngs = glob.glob(os.path.join(os.path.dirname(metrics[0]), 'vis', '*.png'))
    assert len(pngs) == 2  # the tiny config tests 2 frames
    raw_w = cv2.imread(IMAGE).shape[1]
    assert cv2.imread(pngs[0]).shape[1] > raw_w  # image + bird's-eye-view panel


@pytest.mark.slow  # shares a ~30 s training run (module fixture)
def test_demo_writes_png(checkpoint):
    ckpt, _, tmp = checkpoint
    proc = run_tool(['tools/demo.py', IMAGE, TINY_CONFIG, ckpt, '--out-dir', tmp / 'demo',
                     '--show-gt'], tmp)
    png = tmp / 'demo' / '000000.png'
    assert str(png) in proc.stdout
    img, raw = cv2.imread(str(png)), cv2.imread(IMAGE)
    assert img.shape[0] == raw.shape[0] and img.shape[1] > raw.shape[1]


def test_demo_errors_name_the_file(tmp_path):
    from monodle_plugin.apis import calib_path_for, list_images
    with pytest.raises(FileNotFoundError, match='calibration .*missing.txt not found'):
        calib_path_for(IMAGE, str(tmp_path / 'missing.txt'))
    assert calib_path_for(IMAGE).endswith('calib/000000.txt')
    with pytest.raises(FileNotFoundError, match='no image'):
        list_images(str(tmp_path))


def test_cpu_launch_picks_gloo_without_device_ids(monkeypatch):
    from mmengine.config import Config
    monkeypatch.setattr('torch.cuda.is_available', lambda: False)
    monkeypatch.setattr('torch.distributed.is_initialized', lambda: True)  # no process group
    cfg = Config(dict(env_cfg=dict(dist_cfg=dict(backend='nccl'))))
    assert prepare_distributed(cfg, 'pytorch') == 'gloo'
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert cfg.model_wrapper_cfg.device_ids is None
    assert prepare_distributed(Config(), 'none') == 'none'


def test_the_suite_hides_the_gpus_from_tests_and_the_processes_they_start():
    """On a GPU machine as on a CPU one the tests run the CPU route (gloo, no device ids):
    tests/conftest.py sets CUDA_VISIBLE_DEVICES= for the suite, tool subprocesses (tool_env),
    torchrun and mp.spawn children inherit it."""
    import torch
    assert os.environ['CUDA_VISIBLE_DEVICES'] == '' and not torch.cuda.is_available()
    assert tool_env()['CUDA_VISIBLE_DEVICES'] == ''
    proc = subprocess.run([sys.executable, '-c', 'import os, torch; print(repr(os.environ['
                           '"CUDA_VISIBLE_DEVICES"]), torch.cuda.device_count())'],
                          env=tool_env(), capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["''", '0'], proc.stdout + proc.stderr


@pytest.mark.slow
def test_torchrun_two_cpu_processes(tmp_path):
    """tools/dist_train.sh CONFIG 2 (torchrun, --launcher pytorch) on a CPU machine: gloo."""
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    env = dict(tool_env(), PORT=str(port), PYTHON=sys.executable)
    proc = subprocess.run(['bash', 'tools/dist_train.sh', TINY_CONFIG, '2', '--work-dir',
                           str(tmp_path / 'wd'), '--cfg-options', 'train_cfg.max_epochs=1',
                           'train_cfg.val_begin=1000'], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert 'Effective total batch 2 = 2 process(es) x 1 per process' in out
    assert 'GlobalLossLogHook registered' in out
    # one line on per-process BatchNorm statistics, naming the option; no DDP FutureWarning
    assert "BatchNorm statistics come from each process's batch of 1 image(s)" in out
    assert '--sync_bn torch' in out
    assert 'broadcast_buffers' not in proc.stderr
    run_dir = os.path.dirname((tmp_path / 'wd' / 'last_checkpoint').read_text())
    info = json.load(open(os.path.join(run_dir, 'run_info.json')))
    assert (info['world_size'], info['dist_backend'], info['per_process_batch']) == (2, 'gloo', 1)
    assert os.path.isfile(os.path.join(run_dir, 'epoch_1.pth'))

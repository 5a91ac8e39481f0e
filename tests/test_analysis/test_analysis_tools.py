"""Analysis tools end to end on kitti_mini: one tiny training run (2 epochs, validation after
each) feeds result files per epoch, format_results, eval_checkpoints and visualize."""
import glob
import json
import os
import os.path as osp
import sys

import cv2
import pytest

sys.path.insert(0, osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'test_tools'))
from tool_helpers import REPO, TINY_CONFIG, run_tool  # noqa: E402

sys.path.pop(0)

KITTI = REPO / 'demo' / 'kitti_mini' / 'KITTI'
TOOLS = ['per_sample_eval', 'get_data_distribution', 'loc_error_by_shifting', 'visualize',
         'eval_checkpoints', 'format_results']
BEV_W = 268  # mono3d_drawing.draw_bev width for a 375-pixel-high KITTI image


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """2 epochs of the tiny config, a checkpoint and a validation after each epoch."""
    tmp = tmp_path_factory.mktemp('analysis')
    run_tool(['tools/train.py', TINY_CONFIG, '--work-dir', tmp / 'wd', '--cfg-options',
              'train_cfg.max_epochs=2', 'train_cfg.val_interval=1',
              'default_hooks.checkpoint.interval=1'], tmp)
    run_dir = osp.dirname((tmp / 'wd' / 'last_checkpoint').read_text())
    return tmp, run_dir


@pytest.mark.parametrize('tool', TOOLS)
def test_help(tool, tmp_path):
    out = run_tool([f'tools/analysis_tools/{tool}.py', '--help'], tmp_path).stdout
    assert 'usage' in out


@pytest.mark.slow
def test_validation_writes_result_files_per_epoch(trained):
    _, run_dir = trained
    for epoch in (1, 2):
        files = sorted(os.listdir(osp.join(run_dir, 'results', f'epoch_{epoch}')))
        assert files == ['000000.txt', '000001.txt']  # the tiny config validates 2 frames


@pytest.mark.slow
def test_format_results_and_eval_checkpoints(trained):
    tmp, run_dir = trained
    proc = run_tool(['tools/analysis_tools/format_results.py', tmp / 'wd', '--epochs', 'all',
                     '--out-dir', tmp / 'summary'], tmp)
    rows = (tmp / 'summary' / 'summary.csv').read_text().splitlines()
    assert rows[0].startswith('config,run,epoch,source,KITTI/Car_3D_AP40_easy_strict')
    assert sorted(r.split(',')[2] for r in rows[1:]) == ['1', '2']
    assert '| Car 3D M |' in (tmp / 'summary' / 'summary.md').read_text()
    assert 'row(s) written' in proc.stdout

    out = tmp / 'evalall'
    proc = run_tool(['tools/analysis_tools/eval_checkpoints.py', TINY_CONFIG, tmp / 'wd',
                     '--out-dir', out], tmp)
    metrics = json.loads((out / 'metrics.json').read_text())
    assert sorted(metrics) == ['1', '2']
    assert 'KITTI/Car_3D_AP40_moderate_strict' in metrics['2']
    assert sorted(os.listdir(out / 'results')) == ['epoch_1', 'epoch_2']
    assert 'Car 3D M' in proc.stdout and (out / 'summary.md').is_file()
    # the numbers of epoch 2 equal the validation after epoch 2 (same weights, same data)
    val = [json.loads(line) for line in open(osp.join(run_dir, 'vis_data', 'scalars.json'))
           if 'KITTI/Car_3D_AP40_moderate_strict' in line]
    assert val[-1]['KITTI/Overall_2D_AP40_moderate'] == pytest.approx(
        metrics['2']['KITTI/Overall_2D_AP40_moderate'], abs=1e-6)


def _check_png(path, shape):
    img = cv2.imread(str(path))
    assert img is not None and osp.getsize(path) > 0, path
    assert img.shape[:2] == shape, (path, img.shape)


def test_visualize_result_files(tmp_path):
    label_dir = KITTI / 'training' / 'label_2'
    pred = tmp_path / 'pred'
    pred.mkdir()
    for sid in ('000000', '000001'):  # labels as predictions (16 columns, score 0.9)
        lines = [ln.split()[:15] + ['0.9'] for ln in open(label_dir / f'{sid}.txt')
                 if ln.strip() and not ln.startswith('DontCare')]
        (pred / f'{sid}.txt').write_text(''.join(' '.join(ln) + '\n' for ln in lines))
    for layout, rows in (('overlay', 1), ('split', 2)):
        out = tmp_path / layout
        run_tool(['tools/analysis_tools/visualize.py', '--data-dir', KITTI, '--pred-dir', pred,
                  '--ids', '000000', '000001', '--layout', layout, '--output-dir', out],
                 tmp_path)
        for sid in ('000000', '000001'):
            h, w = cv2.imread(str(KITTI / 'training' / 'image_2' / f'{sid}.png')).shape[:2]
            _check_png(out / f'{sid}.png', (rows * h, w + BEV_W))
    # sampled images: --num-images of the split
    run_tool(['tools/analysis_tools/visualize.py', '--data-dir', KITTI, '--pred-dir', pred,
              '--split', 'val', '--num-images', '2', '--no-random', '--output-dir',
              tmp_path / 'n'], tmp_path)
    assert sorted(os.listdir(tmp_path / 'n')) == ['000000.png', '000001.png']


def test_visualize_errors(tmp_path):
    from subprocess import run
    proc = run([sys.executable, 'tools/analysis_tools/visualize.py', '--data-dir', str(KITTI),
                '--pred-dir', str(tmp_path / 'nowhere')], cwd=REPO, capture_output=True,
               text=True)
    assert proc.returncode != 0 and 'result folder not found' in proc.stderr
    proc = run([sys.executable, 'tools/analysis_tools/visualize.py', '--data-dir', str(KITTI),
                '--config', TINY_CONFIG], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2 and '--checkpoint' in proc.stderr


@pytest.mark.slow
def test_visualize_model_maps(trained):
    tmp, run_dir = trained
    out = tmp / 'vismodel'
    run_tool(['tools/analysis_tools/visualize.py', '--config', TINY_CONFIG, '--checkpoint',
              osp.join(run_dir, 'epoch_2.pth'), '--data-dir', KITTI, '--ids', '000001',
              '--score-thr', '0', '--maps', '--teacher-dir', 'lidar_depth', '--layout', 'split',
              '--output-dir', out], tmp)
    h, w = cv2.imread(str(KITTI / 'training' / 'image_2' / '000001.png')).shape[:2]
    _check_png(out / '000001.png', (2 * h, w + BEV_W))
    in_h, in_w = 96, 320  # the tiny config's network input
    _check_png(out / '000001_heatmap.png', (3 * in_h, in_w))
    _check_png(out / '000001_depth.png', (in_h, in_w))
    _check_png(out / '000001_uncertainty.png', (in_h, in_w))
    _check_png(out / '000001_teacher.png', (2 * in_h, in_w))
    assert len(glob.glob(str(out / '*.png'))) == 5

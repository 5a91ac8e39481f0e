"""Analysis tools end to end on kitti_mini: one tiny training run (2 epochs, validation after
each) feeds result files per epoch, format_results, eval_checkpoints and visualize."""
import glob
import importlib.util
import json
import os
import os.path as osp
import sys

import cv2
import pytest

sys.path.insert(0, osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'test_tools'))
from tool_helpers import REPO, TINY_CONFIG, run_tool  # noqa: E402

from monodle_plugin.utils.cli import UserError  # noqa: E402
from monodle_plugin.visualization.analysis_drawing import bev_width  # noqa: E402

sys.path.pop(0)

KITTI = REPO / 'demo' / 'kitti_mini' / 'KITTI'
TOOLS = ['per_sample_eval', 'get_data_distribution', 'loc_error_by_shifting', 'visualize',
         'eval_checkpoints', 'format_results', 'oracle_analysis']


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """2 epochs of the tiny config, a checkpoint and a validation after each epoch."""
    tmp = tmp_path_factory.mktemp('analysis')
    run_tool(['tools/train.py', TINY_CONFIG, '--work-dir', tmp / 'wd', '--cfg-options',
              'train_cfg.max_epochs=2', 'train_cfg.val_interval=1',
              'default_hooks.checkpoint.interval=1'], tmp)
    run_dir = osp.dirname((tmp / 'wd' / 'last_checkpoint').read_text())
    return tmp, run_dir


def _tool(name):
    """The command of ``tools/analysis_tools/<name>.py`` (a shim into
    ``monodle_plugin.commands``); the process environment is left unchanged."""
    env = dict(os.environ)
    try:
        return importlib.import_module(f'monodle_plugin.commands.{name}')
    finally:
        os.environ.clear()
        os.environ.update(env)


@pytest.fixture
def trusted_checkpoints(monkeypatch):
    """Our checkpoints load with torch's weights_only=True (no environment override): this
    fixture makes sure nothing sets TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD."""
    monkeypatch.delenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', raising=False)


@pytest.mark.parametrize('tool', TOOLS)
def test_help(tool, capsys):
    with pytest.raises(SystemExit) as e:
        _tool(tool).parse_args(['--help'])
    assert e.value.code == 0 and 'usage' in capsys.readouterr().out


@pytest.mark.slow
def test_validation_writes_result_files_per_epoch(trained):
    _, run_dir = trained
    for epoch in (1, 2):
        files = sorted(os.listdir(osp.join(run_dir, 'results', f'epoch_{epoch}')))
        assert files == ['000000.txt', '000001.txt']  # the tiny config validates 2 frames


@pytest.mark.slow
def test_format_results_and_eval_checkpoints(trained, trusted_checkpoints):
    tmp, run_dir = trained
    _tool('format_results').main([str(tmp / 'wd'), '--epochs', 'all', '--out-dir',
                                  str(tmp / 'summary')])
    rows = (tmp / 'summary' / 'summary.csv').read_text().splitlines()
    assert rows[0].startswith('config,run,epoch,source,KITTI/Car_3D_AP40_easy_strict')
    assert sorted(r.split(',')[2] for r in rows[1:]) == ['1', '2']
    assert '| Car 3D M |' in (tmp / 'summary' / 'summary.md').read_text()

    out = tmp / 'evalall'
    _tool('eval_checkpoints').main([TINY_CONFIG, str(tmp / 'wd'), '--out-dir', str(out)])
    metrics = json.loads((out / 'metrics.json').read_text())
    assert sorted(metrics) == ['1', '2']
    assert 'KITTI/Car_3D_AP40_moderate_strict' in metrics['2']
    assert sorted(os.listdir(out / 'results')) == ['epoch_1', 'epoch_2']
    assert 'Car 3D M' in (out / 'summary.md').read_text()
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
    vis = _tool('visualize')
    for layout, rows in (('overlay', 1), ('split', 2)):
        out = tmp_path / layout
        vis.main(['--data-dir', str(KITTI), '--pred-dir', str(pred), '--ids', '000000',
                  '000001', '--layout', layout, '--output-dir', str(out)])
        for sid in ('000000', '000001'):
            h, w = cv2.imread(str(KITTI / 'training' / 'image_2' / f'{sid}.png')).shape[:2]
            _check_png(out / f'{sid}.png', (rows * h, w + bev_width(h)))
    # sampled images: the first --num-images of the split
    vis.main(['--data-dir', str(KITTI), '--pred-dir', str(pred), '--split', 'val',
              '--num-images', '2', '--no-random', '--output-dir', str(tmp_path / 'n')])
    assert sorted(os.listdir(tmp_path / 'n')) == ['000000.png', '000001.png']


def test_visualize_errors(tmp_path, capsys):
    vis = _tool('visualize')
    with pytest.raises(UserError, match='result folder not found'):
        vis.main(['--data-dir', str(KITTI), '--pred-dir', str(tmp_path / 'nowhere')])
    with pytest.raises(SystemExit) as e:
        vis.parse_args(['--data-dir', str(KITTI), '--config', TINY_CONFIG])
    assert e.value.code == 2 and '--checkpoint' in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match='result file not found'):
        vis.main(['--data-dir', str(KITTI), '--pred-dir', str(tmp_path), '--ids', '000000',
                  '--output-dir', str(tmp_path / 'o')])


@pytest.mark.slow
def test_visualize_model_maps(trained, trusted_checkpoints):
    tmp, run_dir = trained
    out = tmp / 'vismodel'
    _tool('visualize').main(['--config', TINY_CONFIG, '--checkpoint',
                             osp.join(run_dir, 'epoch_2.pth'), '--data-dir', str(KITTI), '--ids',
                             '000001', '--score-thr', '0', '--maps', '--teacher-dir',
                             'lidar_depth', '--layout', 'split', '--output-dir', str(out)])
    h, w = cv2.imread(str(KITTI / 'training' / 'image_2' / '000001.png')).shape[:2]
    _check_png(out / '000001.png', (2 * h, w + bev_width(h)))
    in_h, in_w = 96, 320  # the tiny config's network input
    _check_png(out / '000001_heatmap.png', (3 * in_h, in_w))
    _check_png(out / '000001_depth.png', (in_h, in_w))
    _check_png(out / '000001_uncertainty.png', (in_h, in_w))
    _check_png(out / '000001_teacher.png', (2 * in_h, in_w))
    assert len(glob.glob(str(out / '*.png'))) == 5


@pytest.mark.slow
def test_oracle_baseline_equals_test_py(trained, capsys, trusted_checkpoints):
    tmp, run_dir = trained
    ckpt = osp.join(run_dir, 'epoch_2.pth')
    low = ['--cfg-options', 'model.bbox_head.test_cfg.score_thr=0.05']  # random-ish weights
    run_tool(['tools/test.py', TINY_CONFIG, ckpt, '--work-dir', tmp / 'test_py', *low], tmp)
    ref = json.loads(open(glob.glob(str(tmp / 'test_py' / '*' / 'metrics.json'))[0]).read())
    out = tmp / 'oracle.json'
    _tool('oracle_analysis').main([TINY_CONFIG, ckpt, '--replace', 'depth', 'all', '--out-json',
                                   str(out), '--output', str(tmp / 'oracle.png'), *low])
    res = json.loads(out.read_text())
    assert list(res) == ['baseline', 'depth', 'all']
    for k, v in ref.items():
        assert res['baseline'][k] == pytest.approx(v, abs=1e-9), k
    for k in res['baseline']:
        if '_AP40_' in k:
            assert res['all'][k] >= res['baseline'][k] - 1e-9, k
    assert 'KITTI/Car_3D_AP40_moderate_strict_40+m' in res['all']
    assert 'matched to one of' in capsys.readouterr().out
    assert osp.getsize(tmp / 'oracle.png') > 1000


def test_loc_error_and_distribution_tools(tmp_path, capsys):
    _tool('loc_error_by_shifting').main(['--root-dir', str(KITTI), '--split', 'val', '--shifts',
                                         '0', '4', '--out-dir', str(tmp_path)])
    res = json.loads((tmp_path / 'shifting.json').read_text())
    assert list(res) == ['0', '4'] and res['0']['loc_error_mean'] < 1e-9
    assert res['0']['KITTI/Car_3D_AP40_moderate_strict'] > res['4'][
        'KITTI/Car_3D_AP40_moderate_strict']
    assert 'shift px' in capsys.readouterr().out and (tmp_path / 'shifting.png').is_file()
    _tool('get_data_distribution').main(['--root-dir', str(KITTI), '--split', 'val',
                                         '--out-dir', str(tmp_path / 'dist')])
    summary = json.loads((tmp_path / 'dist' / 'distribution.json').read_text())
    assert summary['Car']['count'] == 47
    assert (tmp_path / 'dist' / 'depth.png').is_file() and (tmp_path / 'dist' / 'bev.png').is_file()


def test_data_distribution_names_a_missing_split_file(tmp_path):
    """A --split path that does not exist is named as given (not turned into <path>.txt.txt)."""
    missing = tmp_path / 'splits' / 'mine.txt'
    with pytest.raises(FileNotFoundError, match=f'{missing}: split file not found'):
        _tool('get_data_distribution').main(['--root-dir', str(KITTI), '--split', str(missing),
                                             '--out-dir', str(tmp_path / 'dist'), '--no-plots'])


def test_parity_check_switches_tf32_off_and_says_so(monkeypatch, tmp_path, capsys):
    """check_official_parity.py compares float32 numbers exactly: TF32 off before anything is
    built, and one line says so when CUDA is available (on CPU nothing to say)."""
    import torch

    from monodle_plugin.utils.tf32 import switch_off_tf32
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    saved = matmul.allow_tf32, cudnn.allow_tf32
    try:
        matmul.allow_tf32 = cudnn.allow_tf32 = True
        assert switch_off_tf32() is None  # GPUs hidden: no line
        assert (matmul.allow_tf32, cudnn.allow_tf32) == (False, False)
        matmul.allow_tf32 = cudnn.allow_tf32 = True
        monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
        with pytest.raises(UserError, match='not a MonoDLE checkout'):
            _tool('check_official_parity').main(['--official-root', str(tmp_path)])
        assert (matmul.allow_tf32, cudnn.allow_tf32) == (False, False)
    finally:
        matmul.allow_tf32, cudnn.allow_tf32 = saved
    assert capsys.readouterr().out.splitlines() == [
        'TF32 off (torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = '
        'False): float32 matmuls and convolutions on CUDA compute in full float32']

"""KITTI test-server submission: the trainval configs, tools/test.py on a `testing/` folder
without labels, and tools/misc/make_kitti_submission.py (checks, zip layout, exit codes)."""
import shutil
import zipfile
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from tool_helpers import REPO, load_tool

from monodle_plugin.evaluation.submission import check_results, make_kitti_submission
from monodle_plugin.utils.cli import run_cli

KITTI_MINI = REPO / 'demo' / 'kitti_mini' / 'KITTI'
#: kitti_mini frame -> id in the synthetic testing folder (renumbered, as test ids differ)
TEST_FRAMES = {'000008': '000000', '000076': '000001', '000000': '000002'}
GOOD = 'Car -1 -1 -1.5708 100.0 120.0 200.0 180.0 1.5000 1.6000 3.9000 2.0 1.6 20.0 -1.4711 0.9\n'


@pytest.mark.parametrize('config', ['configs/monodle/monodle_dla34_kitti_trainval.py',
                                    'configs/monodle_yolo8_da3_trainval.py'])
def test_trainval_configs_train_on_trainval_and_write_test_files(config):
    cfg = Config.fromfile(str(REPO / config))
    recipe = Config.fromfile(str(REPO / config.replace('_trainval', '')))
    assert cfg.train_dataloader.dataset.split == 'trainval'
    assert cfg.val_dataloader is None and cfg.val_cfg is None and cfg.val_evaluator is None
    assert cfg.test_dataloader.dataset.split == 'test'
    assert cfg.test_evaluator.format_only is True
    # the same schedule, model and training pipeline as the recipe
    for key in ('train_cfg', 'param_scheduler', 'optim_wrapper', 'model', 'total_batch_size',
                'auto_scale_lr'):
        assert cfg[key] == recipe[key], key
    assert cfg.train_dataloader.dataset.pipeline == recipe.train_dataloader.dataset.pipeline


def _testing_folder(root: Path) -> Path:
    """A KITTI root with only testing/{image_2,calib} (no labels) and ImageSets/test.txt."""
    for sub in ('image_2', 'calib'):
        (root / 'testing' / sub).mkdir(parents=True)
    for src, dst in TEST_FRAMES.items():
        shutil.copy(KITTI_MINI / 'training' / 'image_2' / f'{src}.png',
                    root / 'testing' / 'image_2' / f'{dst}.png')
        shutil.copy(KITTI_MINI / 'training' / 'calib' / f'{src}.txt',
                    root / 'testing' / 'calib' / f'{dst}.txt')
    (root / 'ImageSets').mkdir()
    (root / 'ImageSets' / 'test.txt').write_text('\n'.join(TEST_FRAMES.values()) + '\n')
    return root


def _constant_checkpoint(cfg: Config, path: Path) -> None:
    """Weights whose head predicts a 1.5 x 1.6 x 3.9 m car at 20 m on every output cell of the
    Car channel (output-layer weights 0, biases set): every image gets the top-k boxes."""
    from mmdet3d.registry import MODELS
    from mmengine.registry import init_default_scope

    from monodle_plugin.structures.geometry import encode_depth
    init_default_scope('mmdet3d')
    model = MODELS.build(cfg.model)
    biases = dict(heatmap=[-10.0, 3.0, -10.0], size_2d=[20.0, 10.0],
                  depth=[encode_depth(20.0), 0.0], size_3d=[1.5, 1.6, 3.9])
    with torch.no_grad():
        for name in ('heatmap', 'offset_2d', 'size_2d', 'depth', 'offset_3d', 'size_3d',
                     'heading'):
            out = getattr(model.bbox_head, name)[2]
            out.weight.zero_()
            out.bias.zero_()
            if name in biases:
                out.bias.copy_(torch.tensor(biases[name]))
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)


@pytest.mark.slow  # builds the YOLOv8n recipe twice and runs tools/test.py: ~40 s on 2 cores
def test_test_py_writes_submission_files_for_a_testing_folder(tmp_path):
    """tools/test.py on the main recipe's trainval config, data_root a testing/ folder without
    labels: one result file per test id, then make_kitti_submission zips them."""
    root = _testing_folder(tmp_path / 'KITTI')
    config = str(REPO / 'configs' / 'monodle_yolo8_da3_trainval.py')
    opts = [f'test_dataloader.dataset.data_root={root}/', f'test_evaluator.data_root={root}/',
            'test_dataloader.dataset.pipeline.1.output_size=[320,96]',
            'model.backbone.pretrained=False', 'test_dataloader.num_workers=0',
            'test_dataloader.persistent_workers=False']
    cfg = Config.fromfile(config)
    cfg.model.backbone.pretrained = False
    ckpt = tmp_path / 'constant.pth'
    _constant_checkpoint(cfg, ckpt)

    test_tool = load_tool('test')
    metrics = test_tool.main([config, str(ckpt), '--work-dir', str(tmp_path / 'work'),
                              '--no-progress', '--cfg-options', *opts])
    assert metrics == {}  # format_only: files, no AP
    results = next((tmp_path / 'work').glob('*/results/test'))
    assert sorted(p.name for p in results.iterdir()) == [f'{i}.txt' for i in
                                                         sorted(TEST_FRAMES.values())]
    for f in results.iterdir():
        lines = f.read_text().splitlines()
        assert len(lines) == 50  # topk: every cell scores the same
        fields = lines[0].split()
        assert fields[0] == 'Car' and len(fields) == 16
        assert [float(v) for v in fields[8:11]] == [1.5, 1.6, 3.9]  # h, w, l
        assert float(fields[13]) == pytest.approx(20.0, rel=1e-3)  # z, metres

    tool = load_tool('misc/make_kitti_submission')
    out = tmp_path / 'submission.zip'
    assert tool.main([str(results), '--split-file', str(root / 'ImageSets' / 'test.txt'),
                      '--out', str(out), '--expected-images', '3']) == 0
    with zipfile.ZipFile(out) as zf:
        assert zf.namelist() == [f'{i}.txt' for i in TEST_FRAMES.values()]  # zip root
        assert zf.read('000001.txt').decode() == (results / '000001.txt').read_text()


def _results(tmp_path: Path, files: dict) -> Path:
    folder = tmp_path / 'results'
    folder.mkdir()
    for sid, text in files.items():
        (folder / f'{sid}.txt').write_text(text)
    return folder


def _split(tmp_path: Path, ids) -> Path:
    path = tmp_path / 'ids.txt'  # not test.txt, which must list 7518 ids
    path.write_text('\n'.join(ids) + '\n')
    return path


def test_submission_zip_layout_and_report(tmp_path, capsys):
    folder = _results(tmp_path, {'000000': GOOD * 2, '000001': '', '000002': GOOD,
                                 '000099': GOOD})
    split = _split(tmp_path, ['000002', '000000', '000001'])
    out = tmp_path / 'sub' / 'submission.zip'
    report = make_kitti_submission(str(folder), str(split), str(out))
    assert report.problems == [] and report.empty_ids == ['000001']
    assert report.extra_files == ['000099.txt'] and report.class_counts == {'Car': 3}
    with zipfile.ZipFile(out) as zf:
        assert zf.namelist() == ['000002.txt', '000000.txt', '000001.txt']
        assert zf.read('000000.txt').decode() == GOOD * 2
    tool = load_tool('misc/make_kitti_submission')
    out.unlink()
    assert tool.main([str(folder), '--split-file', str(split), '--out', str(out)]) == 0
    printed = capsys.readouterr().out
    assert '1 images without detections (empty files): 000001' in printed
    assert '1 result files not in the split, left out of the zip: 000099.txt' in printed


@pytest.mark.parametrize('line, message', [
    (GOOD.rsplit(' ', 1)[0] + '\n', '16 columns'),                  # no score
    (GOOD.replace(' 20.0 ', ' nan '), 'NaN or inf'),
    (GOOD.replace('Car', 'Carr'), "unknown class name 'Carr'"),
    (GOOD.replace('1.6000', '0.0000'), 'must be positive'),
    (GOOD.replace('1.6000', 'x'), 'non-numeric'),
])
def test_bad_lines_and_missing_files_write_no_zip(tmp_path, capsys, line, message):
    folder = _results(tmp_path, {'000000': GOOD, '000001': GOOD + line})
    split = _split(tmp_path, ['000000', '000001', '000002'])
    report = check_results(str(folder), ['000000', '000001', '000002'])
    assert len(report.problems) == 2
    assert message in report.problems[0] and 'results/000001.txt:2' in report.problems[0]
    assert 'results/000002.txt: missing' in report.problems[1]
    out = tmp_path / 'submission.zip'
    tool = load_tool('misc/make_kitti_submission')
    assert tool.main([str(folder), '--split-file', str(split), '--out', str(out)]) == 1
    assert not out.exists()
    printed = capsys.readouterr()
    assert 'problem: ' in printed.out and 'no zip written' in printed.err


def test_usage_errors_exit_2_with_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv('MONODLE_DEBUG', raising=False)
    tool = load_tool('misc/make_kitti_submission')
    folder = _results(tmp_path, {'000000': GOOD})
    split = tmp_path / 'ImageSets' / 'test.txt'
    split.parent.mkdir()
    split.write_text('000000\n')
    cases = [
        # KITTI's test split is 7518 images: a test.txt with 1 id is refused unless said so
        ([str(folder), '--split-file', str(split), '--out', str(tmp_path / 's.zip')],
         'lists 1 images, expected 7518'),
        ([str(folder), '--split-file', str(split), '--out', str(tmp_path / 's.tar')],
         'name it <name>.zip'),
        ([str(tmp_path / 'none'), '--split-file', str(split), '--out', str(tmp_path / 's.zip'),
          '--expected-images', '1'], 'result folder not found'),
        ([str(folder), '--split-file', str(tmp_path / 'no.txt'), '--out',
          str(tmp_path / 's.zip')], 'split file not found'),
    ]
    for argv, message in cases:
        with pytest.raises(SystemExit) as exit_info:
            run_cli(tool.main, argv)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith('error: ') and message in err and '\n' not in err, err
    assert not (tmp_path / 's.zip').exists()

"""DA3 pseudo-label generation (with a fake DA3 model) and the depth-label check
(``tools/dataset_converters/generate_da3_depth.py``, ``tools/misc/check_depth_labels.py``)."""
import importlib.util
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from monodle_plugin.datasets import da3_depth_generation as gen
from monodle_plugin.datasets import depth_label_check as chk
from monodle_plugin.utils.cli import UserError

ROOT = osp.join(osp.dirname(__file__), '..', '..')
MINI = osp.join(ROOT, 'demo', 'kitti_mini', 'KITTI')
IDS = ['000000', '000006', '000076']  # 375 x 1242 and 374 x 1238 frames


@pytest.fixture
def layout(tmp_path):
    root = tmp_path / 'KITTI'
    for sub in ('image_2', 'calib'):
        os.makedirs(root / 'training' / sub)
    os.makedirs(root / 'ImageSets')
    for i in IDS:
        shutil.copy(osp.join(MINI, 'training', 'image_2', f'{i}.png'),
                    root / 'training' / 'image_2' / f'{i}.png')
        shutil.copy(osp.join(MINI, 'training', 'calib', f'{i}.txt'),
                    root / 'training' / 'calib' / f'{i}.txt')
    (root / 'ImageSets' / 'train.txt').write_text('\n'.join(IDS) + '\n')
    return str(root)


class FakeDA3:
    """DA3's ``inference`` API: constant 10 (model units) at a 504-px-long-side resolution."""

    def __init__(self):
        self.calls = []

    def inference(self, images, process_res=504):
        self.calls.append(list(images))
        return SimpleNamespace(depth=np.full((len(images), 154, process_res), 10.0, np.float32))


def p2(sample_id):
    with open(osp.join(MINI, 'training', 'calib', f'{sample_id}.txt')) as f:
        line = next(x for x in f if x.startswith('P2:'))
    return np.array(line.split()[1:], dtype=np.float64).reshape(3, 4)


def test_generate_metric_units_raw_size_metadata_and_resume(layout, tmp_path):
    out = str(tmp_path / 'da3')
    model = FakeDA3()
    counts = gen.generate(layout, 'train', out, model, 'DA3METRIC-LARGE', 'metric', 504, 2)
    assert counts == dict(written=3, skipped=0)
    assert [len(c) for c in model.calls] == [2, 1]
    for sample_id in IDS:
        with np.load(osp.join(out, f'{sample_id}.npz')) as f:
            depth = f['depth']
            raw_h, raw_w = cv2.imread(osp.join(MINI, 'training', 'image_2',
                                               f'{sample_id}.png')).shape[:2]
            assert depth.shape == (raw_h, raw_w) and depth.dtype == np.float32
            P = p2(sample_id)
            # hand: fx, fy scaled to 504 x 154, averaged, / 300
            factor = (P[0, 0] * 504 / raw_w + P[1, 1] * 154 / raw_h) / 2 / 300
            assert 0.9 < factor < 1.05
            np.testing.assert_allclose(depth, 10.0 * factor, rtol=1e-5)
            assert float(f['focal_factor']) == pytest.approx(factor)
            assert str(f['model']) == 'DA3METRIC-LARGE' and str(f['model_kind']) == 'metric'
            assert int(f['process_res']) == 504
            assert tuple(f['processing_shape']) == (154, 504)
    # resumable: nothing left to do, the model is not called again
    again = FakeDA3()
    assert gen.generate(layout, 'train', out, again, 'x', 'metric') == dict(written=0, skipped=3)
    assert again.calls == []
    os.remove(osp.join(out, '000006.npz'))
    assert gen.generate(layout, 'train', out, again, 'x', 'metric')['written'] == 1
    assert again.calls == [[osp.join(layout, 'training', 'image_2', '000006.png')]]
    assert not [n for n in os.listdir(out) if n.endswith('.tmp')]


def test_generate_nested_outputs_metres_and_refuses_batches(layout, tmp_path):
    out = str(tmp_path / 'nested')
    gen.generate(layout, 'train', out, FakeDA3(), 'DA3NESTED-GIANT-LARGE', 'nested')
    with np.load(osp.join(out, '000000.npz')) as f:
        np.testing.assert_allclose(f['depth'], 10.0)
        assert float(f['focal_factor']) == 1.0
    with pytest.raises(ValueError, match='batch-size'):
        gen.generate(layout, 'train', out, FakeDA3(), 'n', 'nested', batch_size=4)


def test_model_kind_and_missing_package():
    assert gen.model_kind('depth-anything/DA3METRIC-LARGE') == 'metric'
    assert gen.model_kind('/w/da3nested-giant-large/') == 'nested'
    assert gen.model_kind('/w/custom', 'metric') == 'metric'
    with pytest.raises(ValueError, match='model-kind'):
        gen.model_kind('depth-anything/DA3-LARGE')
    if importlib.util.find_spec('depth_anything_3') is None:
        with pytest.raises(UserError, match='depth-anything-3'):
            gen.load_da3('/nowhere', 'cpu', False)


def test_generated_files_load_in_the_transform(layout, tmp_path):
    from monodle_plugin.datasets.transforms import LoadDA3Depth
    out = osp.join(layout, 'DA3_depth_results')
    gen.generate(layout, 'train', out, FakeDA3(), 'DA3METRIC-LARGE', 'metric')
    res = dict(sample_id='000000', img_path=osp.join(layout, 'training/image_2/000000.png'),
               ori_shape=(370, 1224), img_shape=(384, 1280), crop_scale=1.0,
               affine_mat=np.array([[1280 / 1224, 0, 0], [0, 1280 / 1224, 0], [0, 0, 1.0]]))
    out_res = LoadDA3Depth()(res)
    assert out_res['gt_depth_valid'].mean() > 0.9


def test_check_tool_on_demo_lidar():
    problems, rows = chk.check(MINI, 'lidar_depth', 'trainval', lidar_dir='lidar_depth')
    assert problems == 0 and len(rows) == 13
    assert all(r['median_ratio'] == pytest.approx(1.0) and r['abs_rel'] == 0 for r in rows.values())
    from monodle_plugin.commands.check_depth_labels import main
    assert main([MINI, '--depth-dir', 'lidar_depth', '--split', 'val']) == 0
    # the thin entry point: same check, exit status 0 / 1
    tool = osp.join(ROOT, 'tools', 'misc', 'check_depth_labels.py')
    for depth_dir, code in (('lidar_depth', 0), ('no_such_dir', 1)):
        proc = subprocess.run([sys.executable, tool, MINI, '--depth-dir', depth_dir, '--split',
                               'val'], capture_output=True, text=True, timeout=300)
        assert proc.returncode == code, proc.stdout + proc.stderr


def test_check_tool_finds_problems(tmp_path, capsys):
    folder = tmp_path / 'labels'
    folder.mkdir()
    with np.load(osp.join(MINI, 'lidar_depth', '000000.npz')) as f:
        lidar0 = f['depth']
    np.savez(folder / '000000.npz', depth=2.0 * lidar0)  # off by a factor 2
    dense = np.full((154, 504), 12.0, np.float32)
    dense[:20] = np.nan
    np.savez(folder / '000001.npz', depth=dense, intrinsics=np.eye(3))  # DA3 processing res
    np.savez(folder / '000002.npz', depth=np.ones((100, 100), np.float32))  # wrong aspect
    np.savez(folder / '000004.npz', disparity=np.ones((375, 1242), np.float32))  # wrong key
    problems, rows = chk.check(MINI, str(folder), 'trainval', lidar_dir='lidar_depth')
    assert rows['000000']['flagged'] and rows['000000']['median_ratio'] == pytest.approx(2.0)
    assert rows['000000']['abs_rel'] == pytest.approx(1.0)
    assert rows['000001']['status'] == 'ok' and rows['000001']['resized']
    assert rows['000001']['nan_fraction'] == pytest.approx(20 / 154)
    assert rows['000002']['status'] == 'bad-shape'
    assert rows['000004']['status'] == 'unreadable' and 'disparity' in rows['000004']['error']
    assert rows['000005']['status'] == 'missing'
    assert problems == 1 + 1 + 1 + 9  # flagged + bad shape + unreadable + 9 missing
    text = capsys.readouterr().out
    assert re.search(r'missing\s+9\n', text) and "flagged (ratio outside [0.8, 1.25]): 1" in text

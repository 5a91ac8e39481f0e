"""Data checks before the first iteration (issue 13): check_kitti_layout, validate=True,
check_depth_labels, label values, unknown class names in evaluation."""
import os.path as osp
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from monodle_plugin.datasets import KittiFormatError, MonoDLEKittiDataset
from monodle_plugin.datasets.kitti_io import read_label

REPO = Path(__file__).resolve().parents[2]

MINI = REPO / 'demo' / 'kitti_mini' / 'KITTI'


@pytest.fixture
def kitti(tmp_path):
    root = tmp_path / 'KITTI'
    shutil.copytree(MINI, root)
    return root


def img(root, sid):
    return root / 'training' / 'image_2' / f'{sid}.png'


def layout(root, capsys):
    """What tools/misc/check_kitti_layout.py ROOT --depth-dir lidar_depth runs (exit 1 if
    any problem)."""
    from monodle_plugin.datasets.validation import check_kitti_layout
    code = 1 if check_kitti_layout(str(root), 'lidar_depth') else 0
    return code, capsys.readouterr().out


def test_layout_decodes_images_and_checks_sizes(kitti, capsys):
    """tools/misc/check_kitti_layout.py ROOT --depth-dir lidar_depth: bad files named, exit 1."""
    img(kitti, '000000').write_bytes(b'')                                   # zero-byte PNG
    data = img(kitti, '000001').read_bytes()
    img(kitti, '000001').write_bytes(data[:len(data) // 3])                 # truncated PNG
    im = cv2.imread(str(img(kitti, '000002')))
    cv2.imwrite(str(img(kitti, '000002')), cv2.resize(im, None, fx=0.5, fy=0.5))  # resized
    np.savez(kitti / 'lidar_depth' / '000004.npz',
             depth=np.full((375, 1242), np.nan, np.float32))                # dead depth map
    code, out = layout(kitti, capsys)
    assert code == 1
    bad = [line for line in out.splitlines() if line.strip().startswith('BAD')]
    assert any(str(img(kitti, '000000')) in b and '0 bytes' in b for b in bad), out
    assert any(str(img(kitti, '000001')) in b and 'cannot be decoded' in b for b in bad), out
    assert any(str(img(kitti, '000002')) in b and 'principal point' in b for b in bad), out
    assert any('000004.npz' in b and 'all NaN' in b for b in bad), out
    assert 'complete' not in out.split('\n')[-2]


def test_layout_of_the_demo_is_clean(capsys):
    code, out = layout(MINI, capsys)
    assert code == 0 and out.count('complete') == 3, out


def test_negative_dimensions_in_training_labels(kitti, capsys):
    label = kitti / 'training' / 'label_2' / '000000.txt'
    line = ('Pedestrian 0.00 0 -0.20 712.40 143.00 810.73 307.92 1.89 -0.48 1.20 1.84 1.47 '
            '8.41 0.01\n')
    label.write_text(line)
    with pytest.raises(KittiFormatError, match='negative 3D dimensions') as err:
        read_label(str(label))
    assert f'{label} (object 0)' in str(err.value)
    code, out = layout(kitti, capsys)
    assert code == 1 and f'{label} (object 0)' in out
    with pytest.raises(KittiFormatError, match='negative 3D dimensions'):  # dataset build
        MonoDLEKittiDataset(data_root=str(kitti), split='train')


def test_dataset_validate_true_stops_before_training(kitti):
    """A PNG damaged inside (its IEND chunk intact) passes the default quick check (headers
    and trailers) and is caught by validate=True (full decode)."""
    data = bytearray(img(kitti, '000005').read_bytes())
    data[len(data) // 2:len(data) // 2 + 4096] = bytes(4096)
    img(kitti, '000005').write_bytes(bytes(data))
    MonoDLEKittiDataset(data_root=str(kitti), split='train')  # default quick: not decoded
    with pytest.raises(KittiFormatError, match='validate=True') as err:
        MonoDLEKittiDataset(data_root=str(kitti), split='train', validate=True)
    assert str(img(kitti, '000005')) in str(err.value)


def test_dataset_validate_checks_depth_files_of_the_pipeline(kitti):
    np.savez(kitti / 'lidar_depth' / '000006.npz', depth=-np.ones((375, 1242), np.float32))
    pipeline = [dict(type='LoadDA3Depth', depth_dir='lidar_depth')]
    with pytest.raises(KittiFormatError, match='no valid pixel') as err:
        MonoDLEKittiDataset(data_root=str(kitti), split='trainval', pipeline=pipeline,
                            validate=True)
    assert '000006.npz' in str(err.value)


def test_validate_cost_on_kitti_mini():
    """The numbers quoted in the README (per frame, extrapolated to KITTI's 7481 frames):
    construction with the default quick check, with validate=True, and without checks."""
    pipeline = [dict(type='LoadDA3Depth', depth_dir='lidar_depth')]
    for validate in (False, 'quick', True):
        t0 = time.perf_counter()
        ds = MonoDLEKittiDataset(data_root=str(MINI), split='trainval', validate=validate,
                                 pipeline=pipeline)
        per_frame = (time.perf_counter() - t0) / len(ds)
        print(f'validate={validate!r}: {1000 * per_frame:.1f} ms/frame, '
              f'~{7481 * per_frame:.0f} s for 7481')
        assert len(ds) == 13


def test_default_quick_check_stops_before_training(kitti):
    """A truncated PNG stopped training after 2 of 7 iterations, a bad depth file the first
    time its frame was drawn, an image resized without its calibration trained silently
    (issue 25): the default check (headers and trailers, no decode) names them all at
    construction, before the first iteration."""
    data = img(kitti, '000001').read_bytes()
    img(kitti, '000001').write_bytes(data[:len(data) * 2 // 3])            # truncated PNG
    im = cv2.imread(str(img(kitti, '000002')))
    cv2.imwrite(str(img(kitti, '000002')), cv2.resize(im, None, fx=0.5, fy=0.5))  # resized
    img(kitti, '000004').write_bytes(b'')                                   # empty
    depth = kitti / 'lidar_depth'
    cut = (depth / '000005.npz').read_bytes()
    (depth / '000005.npz').write_bytes(cut[:len(cut) // 2])                 # truncated npz
    np.savez(depth / '000006.npz', disparity=np.ones((370, 1224), np.float32))  # wrong key
    np.savez(depth / '000008.npz', depth=np.ones((100, 100), np.float32))   # wrong shape
    with pytest.raises(KittiFormatError, match="validate='quick', the default") as err:
        MonoDLEKittiDataset(data_root=str(kitti), split='trainval',
                            pipeline=[dict(type='LoadDA3Depth', depth_dir='lidar_depth')])
    msg = str(err.value)
    assert '7 bad file(s)' in msg, msg  # 000002: principal point and a box outside
    for sid, words in (('000001', 'no IEND chunk'), ('000002', 'principal point'),
                       ('000004', '0 bytes')):
        assert f'{img(kitti, sid)}: ' in msg and words in msg, (sid, msg)
    for sid, words in (('000005', 'truncated or not an .npz'), ('000006', "no key 'depth'"),
                       ('000008', 'aspect ratios differ')):
        assert f'{depth / sid}.npz' in msg and words in msg, (sid, msg)
    MonoDLEKittiDataset(data_root=str(kitti), split='trainval', validate=False,
                        pipeline=[dict(type='LoadDA3Depth', depth_dir='lidar_depth')])


def test_image_header_reads_png_and_jpeg_sizes(tmp_path):
    from monodle_plugin.datasets.validation import image_header
    assert image_header(str(img(MINI, '000000'))) == ((370, 1224), None)
    jpg = tmp_path / 'a.jpg'
    cv2.imwrite(str(jpg), np.zeros((37, 53, 3), np.uint8))
    assert image_header(str(jpg)) == ((37, 53), None)
    jpg.write_bytes(jpg.read_bytes()[:-40])
    assert 'no JPEG EOI marker' in image_header(str(jpg))[1]
    (tmp_path / 'b.png').write_bytes(b'GIF89a' + bytes(40))
    assert 'not a PNG or JPEG' in image_header(str(tmp_path / 'b.png'))[1]


# ---------------------------------------------------------------- check_depth_labels
def test_check_depth_labels_reports_dead_maps(kitti, capsys):
    """tools/misc/check_depth_labels.py ROOT --depth-dir d --split trainval: exit 1, named."""
    d = kitti / 'd'
    shutil.copytree(kitti / 'lidar_depth', d)
    np.savez(d / '000000.npz', depth=np.full((375, 1242), np.nan, np.float32))
    np.savez(d / '000001.npz', depth=-np.ones((375, 1242), np.float32))
    sparse = np.zeros((375, 1242), np.float32)
    sparse[200, :100] = 10.0  # 0.02 % valid
    np.savez(d / '000002.npz', depth=sparse)
    img(kitti, '000004').write_bytes(b'not a png')
    from monodle_plugin.commands.check_depth_labels import main  # tools/misc/check_depth_labels.py
    code = main([str(kitti), '--depth-dir', 'd', '--split', 'trainval'])
    out = capsys.readouterr().out
    assert code == 1
    assert '000000: all-nan' in out and '000001: no-valid' in out, out
    assert '000002: mostly-invalid' in out and '000004: bad-image' in out, out
    assert str(img(kitti, '000004')) in out
    code = main([str(kitti), '--depth-dir', 'd', '--split', 'trainval',
                 '--max-invalid-fraction', '1.0'])
    assert '000002: mostly-invalid' not in capsys.readouterr().out


# ---------------------------------------------------------------- evaluation
def _write(folder, sid, lines):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f'{sid}.txt').write_text(''.join(lines))


def test_kitti_eval_unknown_class_is_an_error(tmp_path):
    """tools/kitti_eval.py on a result file with 'Carr': an error naming the file."""
    from monodle_plugin.evaluation.functional.kitti_file_eval import evaluate_kitti_files
    gt_line = 'Car 0.00 0 -1.5 100.0 150.0 200.0 250.0 1.5 1.6 3.9 1.0 1.5 20.0 -1.5\n'
    _write(tmp_path / 'gt', '000000', [gt_line])
    _write(tmp_path / 'pred', '000000', ['Carr' + gt_line[3:-1] + ' 0.9\n'])
    (tmp_path / 'split.txt').write_text('000000\n')
    with pytest.raises(ValueError, match="unknown class name 'Carr'") as err:
        evaluate_kitti_files(str(tmp_path / 'gt'), str(tmp_path / 'pred'),
                             str(tmp_path / 'split.txt'))
    assert osp.join(str(tmp_path / 'pred'), '000000.txt') in str(err.value)


# ---------------------------------------------------------------- issue 25
def test_duplicated_split_ids_are_an_error_everywhere(kitti, capsys):
    """A split listing a frame twice: the layout check said "complete", training drew it
    twice and tools/kitti_eval.py counted it twice (Car AP 77.5 -> 100). Now an error naming
    the file and the line, in every reader (kitti_io.read_split_file is the one home)."""
    split = kitti / 'ImageSets' / 'train.txt'
    ids = split.read_text().split()
    split.write_text('\n'.join(ids[:3] + [ids[1]] + ids[3:]) + '\n')  # line 4 repeats line 2
    where = f'{split}: line 4 repeats id {ids[1]} (first on line 2)'
    code, out = layout(kitti, capsys)
    assert code == 1 and where in out, out
    with pytest.raises(KittiFormatError) as err:  # training / tools/test.py dataset
        MonoDLEKittiDataset(data_root=str(kitti), split='train')
    assert where in str(err.value)
    import sys

    from monodle_plugin.utils.cli import run_cli
    sys.path.insert(0, str(REPO / 'tests' / 'test_tools'))
    from tool_helpers import load_tool
    with pytest.raises(SystemExit) as ex:  # tools/kitti_eval.py --gt L --pred L --split S
        run_cli(load_tool('kitti_eval').main, ['--gt', str(kitti / 'training' / 'label_2'),
                                               '--pred', str(kitti / 'training' / 'label_2'),
                                               '--split', str(split)])
    assert ex.value.code == 2 and where in capsys.readouterr().err
    # a UTF-8 byte-order mark (Windows editors) is not an id: accepted
    split.write_bytes(b'\xef\xbb\xbf' + '\n'.join(ids).encode() + b'\n')
    from monodle_plugin.datasets.kitti_io import read_split_file
    assert read_split_file(str(split)) == ids

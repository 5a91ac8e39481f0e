"""Intrinsics in any form (monodle_kitti/intrinsics.py): every accepted form gives
the same camera matrix as the KITTI calib file it was written from; malformed or missing
intrinsics are one error naming the file and the accepted forms; the virtual-camera depth
rescaling keeps each box on its viewing ray."""
import json
from pathlib import Path

import numpy as np
import pytest

from monodle_kitti.intrinsics import (
    FORMS,
    Intrinsics,
    IntrinsicsError,
    virtual_camera_scale,
)
from monodle_plugin.datasets.kitti_io import read_calib
from monodle_plugin.structures.geometry import project_to_image

MINI = Path(__file__).resolve().parents[2] / 'demo' / 'kitti_mini' / 'KITTI' / 'training'
IMAGE = str(MINI / 'image_2' / '000008.png')
CALIB = str(MINI / 'calib' / '000008.txt')


@pytest.fixture(scope='module')
def kitti_k():
    return read_calib(CALIB)['cam2img'][:3, :3]


def _k_files(tmp_path: Path, k: np.ndarray) -> dict:
    import cv2
    fx, fy, cx, cy = k[0, 0], k[1, 1], k[0, 2], k[1, 2]
    files = {}
    files['k.txt'] = ' '.join(f'{v!r}' for v in k.reshape(-1).tolist())
    files['k.json'] = json.dumps({'K': k.tolist()})
    files['fxfy.json'] = json.dumps({'fx': fx, 'fy': fy, 'cx': cx, 'cy': cy})
    files['ros.yaml'] = ('image_width: 1242\ncamera_matrix:\n  rows: 3\n  cols: 3\n  data: ['
                         + ', '.join(repr(v) for v in k.reshape(-1).tolist()) + ']\n')
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    fs = cv2.FileStorage(str(tmp_path / 'opencv.yaml'), cv2.FILE_STORAGE_WRITE)
    fs.write('camera_matrix', k)
    fs.write('dist_coeff', np.zeros((1, 5)))
    fs.release()
    return sorted(files) + ['opencv.yaml']


def test_every_form_gives_the_kitti_camera(tmp_path, kitti_k):
    """KITTI file, KITTI folder, K text, JSON K, JSON fx/fy/cx/cy, ROS YAML, OpenCV YAML,
    4 and 9 numbers: the same K (the KITTI P2 keeps its baseline column, the others 0)."""
    p2, where = Intrinsics(None)(IMAGE)
    assert where == CALIB and np.array_equal(p2, read_calib(CALIB)['cam2img'])
    assert np.array_equal(Intrinsics(str(MINI / 'calib'))(IMAGE)[0], p2)
    assert np.array_equal(Intrinsics([CALIB])(IMAGE)[0], p2)  # the command line's form
    for name in _k_files(tmp_path, kitti_k):
        cam2img, where = Intrinsics(str(tmp_path / name))(IMAGE)
        np.testing.assert_allclose(cam2img[:3, :3], kitti_k, rtol=1e-6, err_msg=name)
        assert where == str(tmp_path / name)
        assert np.array_equal(cam2img[:3, 3], [0, 0, 0]) and np.array_equal(cam2img[3],
                                                                            [0, 0, 0, 1])
    fx, fy, cx, cy = kitti_k[0, 0], kitti_k[1, 1], kitti_k[0, 2], kitti_k[1, 2]
    cli = Intrinsics([str(v) for v in (fx, fy, cx, cy)])(IMAGE)[0]
    np.testing.assert_allclose(cli[:3, :3], kitti_k, rtol=1e-12)
    np.testing.assert_allclose(Intrinsics(kitti_k)(IMAGE)[0][:3, :3], kitti_k)
    # a folder of per-image JSON files
    folder = tmp_path / 'per_image'
    folder.mkdir()
    (folder / '000008.json').write_text(json.dumps({'K': kitti_k.tolist()}))
    np.testing.assert_allclose(Intrinsics(str(folder))(IMAGE)[0][:3, :3], kitti_k)


@pytest.mark.parametrize('name, text, problem', [
    ('zeros.json', json.dumps({'K': [[0, 0, 0], [0, 0, 0], [0, 0, 1]]}), 'must be > 0'),
    ('keys.json', json.dumps({'focal': 700, 'center': [600, 180]}),
     'neither "K" nor all of fx, fy, cx, cy'),
    ('bad.json', '{"K": [[700, 0, 600]', 'not valid JSON'),
    ('short.txt', '700 0 600 0 700', '5 numbers'),
    ('row.txt', '700 0 600 0 700 180 0 1 1', 'last row of K'),
    ('calib.yaml', 'K: [1, 2, 3]\n', 'no camera_matrix'),
    ('calib.txt', 'P0: 1 2 3\nR0_rect: 1 0 0 0 1 0 0 0 1\n', 'neither a KITTI calib file'),
])
def test_malformed_intrinsics_name_the_file_and_the_forms(tmp_path, name, text, problem):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(IntrinsicsError) as err:
        Intrinsics(str(path))(IMAGE)
    msg = str(err.value)
    assert '\n' not in msg and msg.startswith(str(path)) and problem in msg, msg
    assert 'accepted intrinsics: ' + '; '.join(FORMS) in msg


def test_missing_intrinsics_are_one_error(tmp_path):
    with pytest.raises(IntrinsicsError, match=f'{tmp_path / "no.json"}: intrinsics file or '
                       'folder not found; accepted intrinsics'):
        Intrinsics(str(tmp_path / 'no.json'))
    with pytest.raises(IntrinsicsError, match='no 000008.*in the intrinsics folder'):
        Intrinsics(str(tmp_path))(IMAGE)
    with pytest.raises(IntrinsicsError, match='calib/x.txt not found'):
        Intrinsics(None)(str(tmp_path / 'image_2' / 'x.png'))
    with pytest.raises(IntrinsicsError, match=r'focal lengths \(fu, fv\) = \(0, 0\)'):
        Intrinsics(['0', '0', '600', '180'])


def test_virtual_camera_brings_back_the_training_framing():
    """A KITTI frame padded to 140 % (focal 0.7x at the network input): the virtual camera
    crops it back to KITTI's width, the original pixels at the original projection; the
    central 70 % crop (focal 1/0.7x) is padded back. KITTI's own cameras are left as they are."""
    import cv2

    from monodle_kitti.intrinsics import virtual_camera
    img = cv2.imread(IMAGE)
    p2 = read_calib(CALIB)['cam2img']
    h, w = img.shape[:2]
    assert virtual_camera_scale(p2, (w, h)) == 1.0
    same, p_same, shift, ratio = virtual_camera(img, p2)
    assert same is img and shift == (0, 0) and ratio == 1.0 and np.array_equal(p_same, p2)
    big = np.zeros((h, 2 * w, 3), np.uint8)  # 2x the width, the frame in the middle
    big[:, w // 2:w // 2 + w] = img
    p_big = p2.copy()
    p_big[0, 2] += w // 2
    out, p_out, (dx, dy), ratio = virtual_camera(big, p_big)
    assert ratio == pytest.approx(0.5) and out.shape == img.shape and dy == 0
    assert np.array_equal(out, img) and dx == -(w // 2)
    np.testing.assert_allclose(p_out, p2, atol=1e-9)
    small = np.ascontiguousarray(img[:, w // 4:w // 4 + w // 2])
    p_small = p2.copy()
    p_small[0, 2] -= w // 4
    out, p_out, (dx, _), ratio = virtual_camera(small, p_small)
    assert ratio == pytest.approx(2.0, rel=1e-3) and abs(out.shape[1] - w) <= 1
    assert np.array_equal(out[:, dx:dx + w // 2], small) and not out[:, :dx].any()
    uv = project_to_image(np.array([[1.0, 1.5, 20.0]]), p_out)
    np.testing.assert_allclose(uv - [dx, 0], project_to_image(np.array([[1.0, 1.5, 20.0]]),
                                                              p_small), atol=1e-9)

"""generate_da3_depth against the real ``depth-anything-3`` package (PyPI 0.1.1), not a fake.

A preset with random weights is built offline (``DepthAnything3(model_name='da3-small')``, the
smallest, 34 M parameters), depth is generated for two kitti_mini frames through the package's
own ``inference`` (preprocessing, forward, output processing) at a small processing resolution,
and the files must pass the depth-label check and load through ``LoadDA3Depth``. The values are
meaningless (random weights); the test pins the interface: the package's output shape and units
as the tool reads them, the file format, the resize to raw size. Skipped, with the reason, when
the optional extra is absent (``EXTRAS=da3 make env``; ``make test`` installs it).
"""
import os
import os.path as osp
import shutil
import subprocess
import sys

import numpy as np
import pytest

ROOT = osp.join(osp.dirname(__file__), '..', '..')
MINI = osp.join(ROOT, 'demo', 'kitti_mini', 'KITTI')
IDS = ['000000', '000006']  # 375 x 1242 and 374 x 1238
PROCESS_RES = 140  # long side, a multiple of the ViT patch (14): 140 x 42 for KITTI


@pytest.fixture(scope='module')
def da3():
    os.environ.setdefault('FFMPEG_BINARY', 'auto-detect')  # as the tool does (import_da3)
    pytest.importorskip('depth_anything_3.api',
                        reason='optional extra da3 not installed (EXTRAS=da3 make env: '
                               'requirements/extras/da3*.txt)')
    from monodle_plugin.datasets import da3_depth_generation as gen
    return gen.import_da3()


@pytest.fixture
def layout(tmp_path):
    root = tmp_path / 'KITTI'
    for sub in ('image_2', 'calib'):
        os.makedirs(root / 'training' / sub)
    os.makedirs(root / 'ImageSets')
    for i in IDS:
        for sub, ext in (('image_2', 'png'), ('calib', 'txt')):
            shutil.copy(osp.join(MINI, 'training', sub, f'{i}.{ext}'),
                        root / 'training' / sub / f'{i}.{ext}')
    (root / 'ImageSets' / 'train.txt').write_text('\n'.join(IDS) + '\n')
    return str(root)


@pytest.mark.slow
def test_real_package_generates_checkable_loadable_depth(da3, layout):
    import torch

    from monodle_plugin.datasets import da3_depth_generation as gen
    from monodle_plugin.datasets.kitti_io import read_calib
    from monodle_plugin.datasets.transforms import LoadDA3Depth

    torch.manual_seed(0)
    model = da3(model_name='da3-small').to('cpu').eval()  # random weights, no download
    out = osp.join(layout, 'DA3_depth_results')
    counts = gen.generate(layout, 'train', out, model, 'da3-small', 'metric',
                          process_res=PROCESS_RES)
    assert counts == dict(written=2, skipped=0)
    for sample_id in IDS:
        with np.load(osp.join(out, f'{sample_id}.npz')) as f:
            raw_hw = tuple(int(v) for v in f['raw_shape'])
            assert f['depth'].shape == raw_hw and f['depth'].dtype == np.float32
            proc_h, proc_w = (int(v) for v in f['processing_shape'])
            assert proc_w == PROCESS_RES and abs(proc_h / proc_w - raw_hw[0] / raw_hw[1]) < 0.03
            assert np.isfinite(f['depth']).all() and (f['depth'] > 0).all()
            # metric units: ((fx * w / W) + (fy * h / H)) / 2 / 300 at the package's own
            # processing size (about 0.27 for KITTI at 140 px)
            P = read_calib(osp.join(layout, 'training', 'calib', f'{sample_id}.txt'))['cam2img']
            factor = (P[0, 0] * proc_w / raw_hw[1] + P[1, 1] * proc_h / raw_hw[0]) / 2 / 300
            assert float(f['focal_factor']) == pytest.approx(factor, rel=1e-6)
    # the depth-label check (the command line, as a user runs it) passes
    proc = subprocess.run([sys.executable, osp.join(ROOT, 'tools', 'misc', 'check_depth_labels.py'),
                           layout, '--depth-dir', 'DA3_depth_results', '--split', 'train'],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # and the training pipeline's loader reads them (raw size -> network input, valid everywhere)
    res = dict(sample_id=IDS[0], img_path=osp.join(layout, 'training/image_2/000000.png'),
               ori_shape=(375, 1242), img_shape=(384, 1280), crop_scale=1.0,
               affine_mat=np.array([[1280 / 1242, 0, 0], [0, 1280 / 1242, 0], [0, 0, 1.0]]))
    loaded = LoadDA3Depth()(res)
    assert loaded['gt_depth_valid'].mean() > 0.9
    assert (loaded['gt_depth_map'][loaded['gt_depth_valid']] > 0).all()

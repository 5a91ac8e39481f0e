"""LoadDA3Depth: alignment with the augmented image through the real pipeline, file handling."""
import os.path as osp

import numpy as np
import pytest
from mmengine.dataset import Compose

import monodle_plugin  # noqa: F401  (registers)
from monodle_plugin.datasets import MonoDLEKittiDataset
from monodle_plugin.datasets.transforms import LoadDA3Depth
from monodle_plugin.datasets.transforms.load_da3_depth import downsample_depth, resample_depth
from monodle_plugin.datasets.transforms.monodle_affine_aug import warp_image_pil_convention

MINI = osp.join(osp.dirname(__file__), '..', '..', 'demo', 'kitti_mini', 'KITTI')
OUT_W, OUT_H = 1280, 384
FORCED = dict(output_size=(OUT_W, OUT_H), random_flip=1.0, random_crop=1.0, scale=0.4, shift=0.1)
IDS = ('000000', '000076')


@pytest.fixture(scope='module')
def mini():
    return MonoDLEKittiDataset(data_root=MINI, split='train')


def raw_hw(sample_id):
    import cv2
    return cv2.imread(osp.join(MINI, 'training', 'image_2', f'{sample_id}.png')).shape[:2]


def coordinate_maps(h, w):
    """Each pixel's own continuous centre coordinate (PIL convention): u + 0.5, v + 0.5."""
    vs, us = np.mgrid[0:h, 0:w].astype(np.float32)
    return us + 0.5, vs + 0.5


def write_depth(folder, sample_id, depth, **extra):
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / f'{sample_id}.npz', depth=depth.astype(np.float32), **extra)


def run_pipeline(ds, idx, depth_cfg, seed, aug=FORCED, pack=True):
    steps = [dict(type='LoadKittiMonoImage'), dict(type='LoadMonoDLEAnnotations'),
             dict(type='MonoDLEAffineAug', **aug), dict(type='LoadDA3Depth', **depth_cfg)]
    results = dict(ds.get_data_info(idx), box_type_3d=ds.box_type_3d,
                   box_mode_3d=ds.box_mode_3d)
    np.random.seed(seed)
    out = Compose(steps)(results)
    if not pack:
        return out
    packed = Compose([dict(type='PackMonoDLEInputs')])(dict(out))
    return out, packed


@pytest.mark.parametrize('seed', [0, 3])
def test_teacher_lands_where_the_image_pixel_lands(tmp_path, mini, seed):
    """Flip and crop forced on: a depth map holding each pixel's own coordinate, warped by the
    transform, equals the same coordinate image warped by the image path (bilinear) up to the
    nearest-neighbour rounding (<= 0.5 px), with no systematic offset; checked at stride 1 and
    at the head's stride 4, on the packed sample that reaches the loss."""
    for idx, sample_id in enumerate(mini.get_data_info(i)['sample_id'] for i in range(2)):
        h, w = raw_hw(sample_id)
        u, v = coordinate_maps(h, w)
        write_depth(tmp_path / 'u', sample_id, u)
        write_depth(tmp_path / 'v', sample_id, v)
        for stride in (1, 4):
            got = {}
            for name in ('u', 'v'):
                cfg = dict(depth_dir=str(tmp_path / name), stride=stride, scale_by_crop=False)
                res, packed = run_pipeline(mini, idx, cfg, seed)
                got[name] = packed['data_samples'].gt_depth
            assert res['flip'] and res['random_crop'] and res['crop_scale'] != 1.0
            image_u = warp_image_pil_convention(u, res['affine_mat'], (OUT_W, OUT_H))
            image_v = warp_image_pil_convention(v, res['affine_mat'], (OUT_W, OUT_H))
            # where the network pixel comes from (exact), to keep away from the image border
            ys, xs = np.mgrid[0:OUT_H, 0:OUT_W]
            src = np.stack([xs + 0.5, ys + 0.5, np.ones(xs.shape)], -1) @ res['inv_affine_mat'].T
            inside = ((src[..., 0] > 1.5) & (src[..., 0] < w - 1.5) & (src[..., 1] > 1.5)
                      & (src[..., 1] < h - 1.5))
            outside = ((src[..., 0] < -0.5) | (src[..., 0] > w + 0.5) | (src[..., 1] < -0.5)
                       | (src[..., 1] > h + 0.5))
            if stride == 4:
                def pool(a):
                    return a.reshape(OUT_H // 4, 4, OUT_W // 4, 4).mean(axis=(1, 3))
                image_u, image_v = pool(image_u), pool(image_v)
                inside = inside.reshape(OUT_H // 4, 4, OUT_W // 4, 4).all(axis=(1, 3))
                outside = outside.reshape(OUT_H // 4, 4, OUT_W // 4, 4).all(axis=(1, 3))
            for name, image in (('u', image_u), ('v', image_v)):
                depth, valid = got[name].depth[0].numpy(), got[name].valid[0].numpy()
                assert depth.shape == (OUT_H // stride, OUT_W // stride)
                assert valid[inside].all() and not valid[outside].any()
                diff = (depth - image)[inside]
                assert np.abs(diff).max() <= 0.5 + 1 / 32 + 1e-3, (name, stride)
                assert abs(diff.mean()) < 0.05, (name, stride)
            # the flip is really there: u decreases along a row
            row = got['u'].depth[0].numpy()[inside.shape[0] // 2][inside[inside.shape[0] // 2]]
            assert np.all(np.diff(row) <= 0) and row[0] > row[-1]


def test_bilinear_warp_matches_the_image_warp_exactly(tmp_path, mini):
    """With interpolation='bilinear' a fully valid map is warped exactly like the image (same
    matrix, same OpenCV interpolation grid): any half-pixel or flip slip would show."""
    sample_id = mini.get_data_info(0)['sample_id']
    h, w = raw_hw(sample_id)
    u, v = coordinate_maps(h, w)
    field = 1.0 + 0.01 * u + 0.02 * v
    write_depth(tmp_path / 'f', sample_id, field)
    cfg = dict(depth_dir=str(tmp_path / 'f'), stride=1, scale_by_crop=False,
               interpolation='bilinear')
    res = run_pipeline(mini, 0, cfg, seed=5, pack=False)
    assert res['flip'] and res['random_crop']
    image = warp_image_pil_convention(field, res['affine_mat'], (OUT_W, OUT_H))
    ys, xs = np.mgrid[0:OUT_H, 0:OUT_W]
    src = np.stack([xs + 0.5, ys + 0.5, np.ones(xs.shape)], -1) @ res['inv_affine_mat'].T
    inside = ((src[..., 0] > 1) & (src[..., 0] < w - 1) & (src[..., 1] > 1)
              & (src[..., 1] < h - 1))
    depth, valid = res['gt_depth_map'][0], res['gt_depth_valid'][0]
    assert valid[inside].all()
    np.testing.assert_allclose(depth[inside], image[inside], rtol=1e-5)


def test_crop_scale_multiplies_the_teacher(tmp_path, mini):
    sample_id = mini.get_data_info(0)['sample_id']
    write_depth(tmp_path / 'd', sample_id, np.full(raw_hw(sample_id), 10.0))
    res = run_pipeline(mini, 0, dict(depth_dir=str(tmp_path / 'd')), seed=1, pack=False)
    values = res['gt_depth_map'][res['gt_depth_valid']]
    np.testing.assert_allclose(values, 10.0 * res['crop_scale'], rtol=1e-6)
    res = run_pipeline(mini, 0, dict(depth_dir=str(tmp_path / 'd'), scale_by_crop=False),
                       seed=1, pack=False)
    np.testing.assert_allclose(res['gt_depth_map'][res['gt_depth_valid']], 10.0)


def test_lidar_depth_sparse_maps(mini):
    """kitti_mini's sparse LiDAR: nearest warp keeps measured values only (no blending)."""
    lidar_dir = osp.join(MINI, 'lidar_depth')
    sample_id = mini.get_data_info(0)['sample_id']
    with np.load(osp.join(lidar_dir, f'{sample_id}.npz')) as f:
        raw = f['depth']
    measured = np.unique(raw[raw > 0])
    cfg = dict(depth_dir='lidar_depth', stride=1, scale_by_crop=False)
    res = run_pipeline(mini, 0, cfg, seed=2, pack=False)
    values = res['gt_depth_map'][res['gt_depth_valid']]
    assert values.size > 1000 and np.isin(values, measured).all()
    assert (res['gt_depth_map'][~res['gt_depth_valid']] == 0).all()
    # stride 4 (default): enough cells, values within the measured range
    res = run_pipeline(mini, 0, dict(depth_dir='lidar_depth'), seed=2, pack=False)
    assert res['gt_depth_map'].shape == (1, OUT_H // 4, OUT_W // 4)
    valid = res['gt_depth_valid']
    assert 0.02 < valid.mean() < 0.9
    values = res['gt_depth_map'][valid] / res['crop_scale']
    assert values.min() >= measured.min() - 1e-3 and values.max() <= measured.max() + 1e-3


def base_results(sample_id, hw=(375, 1242), crop_scale=1.0):
    """Minimal results of MonoDLEAffineAug in test mode for a raw image of size ``hw``."""
    h, w = hw
    affine = np.array([[OUT_W / w, 0, 0], [0, OUT_W / w, (OUT_H - h * OUT_W / w) / 2],
                       [0, 0, 1.0]])
    return dict(sample_id=sample_id, img_path=f'/x/training/image_2/{sample_id}.png',
                ori_shape=hw, img_shape=(OUT_H, OUT_W), affine_mat=affine, crop_scale=crop_scale,
                flip=False)


def test_invalid_values_are_never_valid_or_blended(tmp_path):
    depth = np.full((375, 1242), 20.0, np.float32)
    depth[:, :300] = np.nan
    depth[:, 300:400] = -5
    depth[:, 400:500] = np.inf
    depth[:, 500:600] = 0
    depth[:, 600:700] = 200.0
    write_depth(tmp_path, '000001', depth)
    for interpolation in ('nearest', 'bilinear'):
        t = LoadDA3Depth(depth_dir=str(tmp_path), max_depth=80.0, interpolation=interpolation,
                         stride=1)
        out = t(base_results('000001'))
        d, v = out['gt_depth_map'][0], out['gt_depth_valid'][0]
        assert np.isfinite(d).all() and (d[~v] == 0).all()
        assert np.all(d[v] == pytest.approx(20.0))  # only the valid 20 m region remains
        cols = np.where(v.any(axis=0))[0]
        scale = OUT_W / 1242
        assert cols.min() >= np.floor(700 * scale) - 1


def test_missing_file_error_and_skip(tmp_path):
    t = LoadDA3Depth(depth_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r'000002\.npz'):
        t(base_results('000002'))
    t = LoadDA3Depth(depth_dir=str(tmp_path), on_missing='skip')
    with pytest.warns(UserWarning, match=r'000002\.npz') as record:
        out = t(base_results('000002'))
        t(base_results('000003'))
    assert len([r for r in record if 'LoadDA3Depth' in str(r.message)]) == 1
    assert out['gt_depth_map'].shape == (1, OUT_H // 4, OUT_W // 4)
    assert not out['gt_depth_valid'].any() and out['gt_depth_valid'].dtype == bool


def test_depth_dir_relative_to_data_root_or_image_path(tmp_path):
    write_depth(tmp_path / 'KITTI' / 'DA3_depth_results', '000004', np.ones((375, 1242)))
    results = base_results('000004')
    results['img_path'] = str(tmp_path / 'KITTI' / 'training' / 'image_2' / '000004.png')
    assert LoadDA3Depth()(dict(results))['gt_depth_valid'].any()
    results['img_path'] = '/elsewhere/000004.png'
    assert LoadDA3Depth(data_root=str(tmp_path / 'KITTI'))(dict(results))['gt_depth_valid'].any()
    with pytest.raises(ValueError, match='data_root'):
        LoadDA3Depth()(dict(results))


def test_bad_files_name_the_file(tmp_path):
    (tmp_path / '000005.npz').write_bytes(b'not a zip archive at all')
    with pytest.raises(ValueError, match=r'000005\.npz'):
        LoadDA3Depth(depth_dir=str(tmp_path))(base_results('000005'))
    np.savez(tmp_path / '000006.npz', disparity=np.ones((375, 1242), np.float32))
    with pytest.raises(KeyError, match=r"000006\.npz.*'depth'.*disparity"):
        LoadDA3Depth(depth_dir=str(tmp_path))(base_results('000006'))
    np.savez(tmp_path / '000007.npz', depth=np.ones((2, 375, 1242), np.float32))
    with pytest.raises(ValueError, match=r'000007\.npz.*2D'):
        LoadDA3Depth(depth_dir=str(tmp_path))(base_results('000007'))
    with pytest.raises(KeyError, match='MonoDLEAffineAug'):
        LoadDA3Depth(depth_dir=str(tmp_path))(dict(sample_id='000007'))


def test_shape_rules(tmp_path):
    write_depth(tmp_path, '000008', np.ones((375, 375)))  # other aspect ratio
    with pytest.raises(ValueError, match=r'000008\.npz.*375x375.*375x1242'):
        LoadDA3Depth(depth_dir=str(tmp_path))(base_results('000008'))
    out = LoadDA3Depth(depth_dir=str(tmp_path), resize='force')(base_results('000008'))
    assert out['gt_depth_valid'].all()
    write_depth(tmp_path, '000009', np.ones((154, 504)))  # DA3 processing resolution
    with pytest.raises(ValueError, match='154x504'):
        LoadDA3Depth(depth_dir=str(tmp_path), resize='never')(base_results('000009'))


def test_da3_processing_resolution_is_resized_validity_aware(tmp_path):
    """A 504 x 154 map (DA3's processing size for 1242 x 375, with intrinsics keys) is resized to
    the raw size: a linear depth field is reproduced, and an invalid (NaN sky) band does not pull
    its neighbours towards 0 as plain bilinear resizing would."""
    raw_h, raw_w, h, w = 375, 1242, 154, 504
    vs, us = np.mgrid[0:h, 0:w].astype(np.float64)
    raw_u = (us + 0.5) * raw_w / w  # DA3 pixel centres in raw continuous coordinates
    raw_v = (vs + 0.5) * raw_h / h
    field = 5.0 + 0.02 * raw_u + 0.05 * raw_v
    field[:40] = np.nan  # "sky"
    write_depth(tmp_path, '000010', field, intrinsics=np.eye(3), extrinsics=np.eye(4)[:3])
    depth, valid = LoadDA3Depth(depth_dir=str(tmp_path)).read_depth(
        str(tmp_path / '000010.npz')), None
    valid = np.isfinite(depth)
    t = LoadDA3Depth(depth_dir=str(tmp_path))
    big, big_valid = t.to_raw_size(depth, valid, (raw_h, raw_w), 'x')
    assert big.shape == (raw_h, raw_w)
    rv, ru = np.mgrid[0:raw_h, 0:raw_w].astype(np.float64) + 0.5
    expected = 5.0 + 0.02 * ru + 0.05 * rv
    sky_rows = int(40 * raw_h / h)
    interior = np.zeros_like(big_valid)
    interior[sky_rows + 2:raw_h - 2, 2:raw_w - 2] = True
    assert big_valid[interior].all() and not big_valid[:sky_rows - 3].any()
    np.testing.assert_allclose(big[interior], expected[interior], atol=0.02)
    # the band next to the sky keeps true values (plain bilinear would blend in zeros)
    assert np.abs(big[big_valid] - expected[big_valid]).max() < 0.3
    # through the whole transform
    out = t(base_results('000010'))
    assert out['gt_depth_valid'].mean() > 0.6


def test_downsample_modes():
    depth = np.arange(16, dtype=np.float32).reshape(4, 4) + 1
    valid = np.ones((4, 4), bool)
    valid[0, 0] = False
    d, v = downsample_depth(depth, valid, 2, 'mean')
    np.testing.assert_allclose(d, [[(2 + 5 + 6) / 3, (3 + 4 + 7 + 8) / 4],
                                   [(9 + 10 + 13 + 14) / 4, (11 + 12 + 15 + 16) / 4]])
    d, v = downsample_depth(depth, valid, 2, 'min')
    np.testing.assert_allclose(d, [[2, 3], [9, 11]])
    d, v = downsample_depth(depth, valid, 2, 'nearest')
    np.testing.assert_allclose(d, [[6, 8], [14, 16]])
    valid[:2, :2] = False
    d, v = downsample_depth(depth, valid, 2, 'mean')
    assert not v[0, 0] and d[0, 0] == 0 and v[1].all()
    d, v = downsample_depth(depth, np.ones((4, 4), bool), 2, 'mean', min_valid_count=5)
    assert not v.any()
    with pytest.raises(ValueError, match='stride'):
        downsample_depth(depth[:3], valid[:3], 2)


def test_resample_bilinear_never_mixes_invalid():
    depth = np.array([[10.0, 10.0, 0.0, 0.0]], np.float32).repeat(4, 0)
    valid = depth > 0
    d, v = resample_depth(depth, valid, (8, 4), 'bilinear')
    assert np.all(d[v] == pytest.approx(10.0)) and v[:, :4].all() and not v[:, 5:].any()
    d, v = resample_depth(depth, valid, (8, 4), 'nearest')
    assert np.all(d[v] == 10.0) and v.sum() == 16


def test_registered_and_bad_options():
    from mmdet3d.registry import TRANSFORMS
    t = TRANSFORMS.build(dict(type='LoadDA3Depth', depth_dir='x', max_depth=80))
    assert isinstance(t, LoadDA3Depth) and 'max_depth=80' in repr(t)
    with pytest.raises(ValueError, match='on_missing'):
        LoadDA3Depth(on_missing='ignore')
    with pytest.raises(ValueError, match='downsample'):
        LoadDA3Depth(downsample='median')

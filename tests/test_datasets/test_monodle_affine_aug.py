"""MonoDLEAffineAug, loading and packing: geometry against independent references (kitti_mini)."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmdet3d.structures import CameraInstance3DBoxes, Det3DDataSample
from mmengine.dataset import Compose
from mmengine.structures import InstanceData, PixelData
from PIL import Image

import monodle_plugin  # noqa: F401  (registers)
from monodle_plugin.datasets import MonoDLEKittiDataset
from monodle_plugin.datasets.transforms import (
    LoadKittiMonoImage,
    MonoDLEAffineAug,
    PackMonoDLEInputs,
)
from monodle_plugin.datasets.transforms.monodle_affine_aug import (
    monodle_affine_matrix,
    warp_image_pil_convention,
)

MINI = osp.join(osp.dirname(__file__), '..', '..', 'demo', 'kitti_mini', 'KITTI')
OUT_W, OUT_H = 1280, 384
FORCED = dict(output_size=(OUT_W, OUT_H), random_flip=1.0, random_crop=1.0, scale=0.4, shift=0.1)


def pipeline(**aug):
    return Compose([dict(type='LoadKittiMonoImage'), dict(type='LoadMonoDLEAnnotations'),
                    dict(type='MonoDLEAffineAug', **aug)])


@pytest.fixture(scope='module')
def mini():
    return MonoDLEKittiDataset(data_root=MINI, split='train')


def run(ds, idx, pipe, seed):
    info = ds.get_data_info(idx)
    results = dict(info, box_type_3d=ds.box_type_3d, box_mode_3d=ds.box_mode_3d)
    np.random.seed(seed)
    return info, pipe(results)


def project_raw(bbox_3d, cam2img):
    """Hand projection of the 3D centre (x, y - h/2, z), divided by z."""
    x, y, z, _, h, _, _ = bbox_3d
    P = np.asarray(cam2img)[:3]
    p = P @ np.array([x, y - h / 2, z, 1.0])
    return p[:2] / z


def test_matrix_closed_form():
    """Uniform scale out_w / crop_w about the centre, centre -> output centre."""
    center, crop = np.array([600.3, 170.9]), np.array([1000.0, 300.0])
    s = OUT_W / crop[0]
    expected = np.array([[s, 0, OUT_W / 2 - s * center[0]], [0, s, OUT_H / 2 - s * center[1]],
                         [0, 0, 1]])
    np.testing.assert_allclose(monodle_affine_matrix(center, crop, (OUT_W, OUT_H)), expected,
                               atol=2e-4)


def test_random_draws_follow_monodle_order():
    """Same numpy seed -> the draws MonoDLE's __getitem__ makes, written out here by hand."""
    aug = MonoDLEAffineAug(output_size=(OUT_W, OUT_H), random_flip=0.5, random_crop=0.5)
    img = np.zeros((375, 1242, 3), np.uint8)
    seen = set()
    for seed in range(40):
        np.random.seed(seed)
        r = aug(dict(img=img.copy(), cam2img=np.eye(4)))
        np.random.seed(seed)
        flip = np.random.random() < 0.5
        crop = np.random.random() < 0.5
        scale, cx, cy = 1.0, 621.0, 187.5
        if crop:
            scale = np.clip(np.random.randn() * 0.4 + 1, 0.6, 1.4)
            cx += 1242 * np.clip(np.random.randn() * 0.1, -0.2, 0.2)
            cy += 375 * np.clip(np.random.randn() * 0.1, -0.2, 0.2)
        assert (r['flip'], r['random_crop']) == (flip, crop)
        assert r['crop_scale'] == pytest.approx(scale, abs=1e-12)
        s = OUT_W / (1242 * scale)
        # raw (cx, cy) lands on the output centre; with a flip the raw point is (W - cx, cy)
        raw = np.array([1242 - cx if flip else cx, cy, 1.0])
        np.testing.assert_allclose((r['affine_mat'] @ raw)[:2], [OUT_W / 2, OUT_H / 2], atol=2e-3)
        assert abs(r['affine_mat'][0, 0]) == pytest.approx(s, rel=1e-5)
        seen.add((flip, crop))
    assert len(seen) == 4


def test_test_mode_draws_nothing_and_fits_the_image():
    aug = MonoDLEAffineAug(output_size=(OUT_W, OUT_H), test_mode=True)
    np.random.seed(3)
    state = np.random.get_state()[1].copy()
    r = aug(dict(img=np.zeros((375, 1242, 3), np.uint8), cam2img=np.eye(4)))
    assert np.array_equal(np.random.get_state()[1], state)
    assert not r['flip'] and not r['random_crop'] and r['crop_scale'] == 1.0
    s = OUT_W / 1242
    np.testing.assert_allclose(r['affine_mat'], [[s, 0, 0], [0, s, OUT_H / 2 - s * 187.5],
                                                 [0, 0, 1]], atol=2e-4)
    np.testing.assert_allclose(r['inv_affine_mat'] @ r['affine_mat'], np.eye(3), atol=1e-12)


@pytest.mark.parametrize('flip', [False, True])
def test_warp_matches_pil_affine_bilinear(flip):
    """cv2 with PIL's pixel-centre convention reproduces MonoDLE's PIL warp."""
    img = np.array(Image.open(osp.join(MINI, 'training', 'image_2', '000015.png')).convert('RGB'))
    H, W = img.shape[:2]
    mat = monodle_affine_matrix(np.array([W / 2 + 31.7, H / 2 - 12.2]),
                                np.array([W, H]) * 0.83, (OUT_W, OUT_H))
    pil = Image.fromarray(img)
    if flip:
        pil = pil.transpose(Image.FLIP_LEFT_RIGHT)
        mat = mat @ np.array([[-1.0, 0, W], [0, 1, 0], [0, 0, 1]])
        inv_no_flip = np.linalg.inv(monodle_affine_matrix(
            np.array([W / 2 + 31.7, H / 2 - 12.2]), np.array([W, H]) * 0.83, (OUT_W, OUT_H)))
    else:
        inv_no_flip = np.linalg.inv(mat)
    ref = np.asarray(pil.transform((OUT_W, OUT_H), Image.AFFINE,
                                   data=tuple(inv_no_flip[:2].reshape(-1)),
                                   resample=Image.BILINEAR), dtype=np.float64)
    out = warp_image_pil_convention(img, mat, (OUT_W, OUT_H)).astype(np.float64)
    diff = np.abs(out - ref)[2:-2, 2:-2]  # OpenCV blends the outermost pixel with the fill
    assert diff.mean() < 1.0
    assert np.percentile(diff, 99.9) <= 3
    assert diff.max() <= 8


def test_coordinate_image_stays_aligned():
    """An image whose pixels hold their own (u, v) centre comes out holding inv_affine(u', v')."""
    H, W = 375, 1242
    us, vs = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    coords = np.stack([us, vs, np.zeros_like(us)], -1).astype(np.float32)
    aug = MonoDLEAffineAug(**FORCED)
    for seed in range(3):
        np.random.seed(seed)
        r = aug(dict(img=coords.copy(), cam2img=np.eye(4)))
        ys, xs = np.mgrid[0:OUT_H, 0:OUT_W]
        out_pts = np.stack([xs + 0.5, ys + 0.5, np.ones_like(xs, dtype=float)], -1)
        expected = out_pts @ r['inv_affine_mat'].T
        inside = ((expected[..., 0] > 1) & (expected[..., 0] < W - 1)
                  & (expected[..., 1] > 1) & (expected[..., 1] < H - 1))
        assert inside.mean() > 0.3
        err = np.abs(r['img'][..., :2] - expected[..., :2])[inside]
        assert err.max() < 1 / 32  # OpenCV's interpolation grid is 1/32 px
        if r['flip']:  # left/right really swapped: u decreases along the output row
            row = r['img'][OUT_H // 2, :, 0][inside[OUT_H // 2]]
            assert np.all(np.diff(row) < 0)


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_acceptance_centres_map_back_through_inverse(mini, seed):
    """Flip and crop forced on: every projected 3D centre maps back to its raw projection."""
    pipe = pipeline(**FORCED)
    n_checked = 0
    for idx in range(len(mini)):
        info, r = run(mini, idx, pipe, seed + 10 * idx)
        assert r['flip'] and r['random_crop'] and r['img'].shape == (OUT_H, OUT_W, 3)
        W = r['ori_shape'][1]
        for k, ins in enumerate(info['instances']):
            if ins['bbox_3d'][2] <= 0:  # DontCare
                continue
            raw = project_raw(ins['bbox_3d'], info['cam2img'])
            back = r['inv_affine_mat'] @ np.array([*r['centers_2d'][k], 1.0])
            np.testing.assert_allclose(back[:2], raw, atol=1e-3)
            # the flipped 3D box through the flipped P2 (flipped-image pixels), then the crop
            # affine without the flip, lands on the same network pixel
            flip_mat = np.array([[-1.0, 0, W], [0, 1, 0], [0, 0, 1]])
            crop_only = r['affine_mat'] @ flip_mat
            box = r['gt_bboxes_3d'].tensor[k].double().numpy()
            uv = project_raw(box, r['cam2img'])
            np.testing.assert_allclose(crop_only[:2] @ [*uv, 1.0], r['centers_2d'][k], atol=1e-3)
            assert box[0] == pytest.approx(-ins['bbox_3d'][0], abs=1e-5)
            ry = np.pi - ins['bbox_3d'][6]
            ry = ry - 2 * np.pi if ry > np.pi else ry + 2 * np.pi if ry < -np.pi else ry
            assert box[6] == pytest.approx(ry, abs=1e-5) and -np.pi <= box[6] <= np.pi
            alpha = np.pi - ins['alpha']
            alpha = alpha - 2 * np.pi if alpha > np.pi else \
                alpha + 2 * np.pi if alpha < -np.pi else alpha
            assert r['gt_alphas'][k] == pytest.approx(alpha, abs=1e-5)
            # 2D box: flip W - x (x1/x2 swap), then the affine of the corners
            x1, y1, x2, y2 = ins['bbox']
            corners = np.array([[W - x2, y1, 1.0], [W - x1, y2, 1.0]])
            np.testing.assert_allclose(r['gt_bboxes'][k], (corners @ crop_only[:2].T).reshape(-1),
                                       atol=1e-3)
            assert r['depths'][k] == pytest.approx(ins['depth'])
            n_checked += 1
        np.testing.assert_allclose(r['ori_cam2img'], info['cam2img'])
        assert r['cam2img'][0, 2] == pytest.approx(W - info['cam2img'][0][2])
        assert r['cam2img'][0, 3] == pytest.approx(-info['cam2img'][0][3])
    assert n_checked > 20


def test_no_flip_keeps_boxes_and_camera(mini):
    pipe = pipeline(output_size=(OUT_W, OUT_H), random_flip=0.0, random_crop=1.0)
    info, r = run(mini, 0, pipe, 5)
    assert not r['flip']
    np.testing.assert_allclose(r['cam2img'], info['cam2img'])
    x1, y1, x2, y2 = info['instances'][0]['bbox']
    expected = np.array([[x1, y1, 1.0], [x2, y2, 1.0]]) @ r['affine_mat'][:2].T
    np.testing.assert_allclose(r['gt_bboxes'][0], expected.reshape(-1), atol=1e-3)
    assert r['gt_alphas'][0] == pytest.approx(info['instances'][0]['alpha'])


def test_parameters_come_from_the_config():
    aug = MonoDLEAffineAug(output_size=(640, 192), random_flip=0.0, random_crop=0.0)
    np.random.seed(0)
    r = aug(dict(img=np.zeros((375, 1242, 3), np.uint8), cam2img=np.eye(4)))
    assert r['img'].shape == (192, 640, 3) and r['img_shape'] == (192, 640)
    with pytest.raises(ValueError, match='random_flip'):
        MonoDLEAffineAug(random_flip=1.5)


# ------------------------------------------------------------------ loading and packing
def test_unreadable_image_names_the_file(tmp_path):
    bad = tmp_path / '000000.png'
    bad.write_bytes(b'not a png at all')
    with pytest.raises(OSError, match='000000.png: image could not be'):
        LoadKittiMonoImage()(dict(img_path=str(bad), cam2img=np.eye(4).tolist()))
    empty = tmp_path / '000001.png'
    empty.write_bytes(b'')
    with pytest.raises(OSError, match='000001.png'):
        LoadKittiMonoImage()(dict(img_path=str(empty), cam2img=np.eye(4).tolist()))


def test_calibration_read_when_not_given():
    r = LoadKittiMonoImage()(dict(
        img_path=osp.join(MINI, 'training', 'image_2', '000000.png'),
        calib_path=osp.join(MINI, 'training', 'calib', '000000.txt')))
    assert r['cam2img'].shape == (4, 4) and r['cam2img'][0, 0] == pytest.approx(707.0493)
    raw = np.asarray(Image.open(osp.join(MINI, 'training', 'image_2', '000000.png')))
    assert r['ori_shape'] == raw.shape[:2] == (370, 1224) and r['img'].dtype == np.uint8
    np.testing.assert_array_equal(r['img'][..., ::-1], raw)  # BGR as mmcv loads it


def test_packing_types_and_meta(mini):
    pipe = Compose(list(pipeline(**FORCED).transforms) + [PackMonoDLEInputs()])
    info, packed = run(mini, 11, pipe, 0)  # 000076
    img = packed['inputs']['img']
    assert isinstance(img, torch.Tensor) and img.dtype == torch.uint8
    assert tuple(img.shape) == (3, OUT_H, OUT_W)
    ds = packed['data_samples']
    assert isinstance(ds, Det3DDataSample)
    n = len(info['instances'])
    g3 = ds.gt_instances_3d
    assert isinstance(g3, InstanceData) and len(g3) == n
    assert isinstance(g3.bboxes_3d, CameraInstance3DBoxes) and g3.bboxes_3d.tensor.shape == (n, 7)
    assert g3.labels_3d.dtype == torch.int64 and g3.difficulty.dtype == torch.int64
    assert g3.alphas.dtype == torch.float32 and g3.depths.shape == (n,)
    assert g3.centers_2d.shape == (n, 2)
    assert ds.gt_instances.bboxes.shape == (n, 4) and ds.gt_instances.labels.dtype == torch.int64
    names = [ins['name'] for ins in info['instances']]
    assert g3.labels_3d.tolist() == [{'Pedestrian': 0, 'Car': 1, 'Cyclist': 2}.get(x, -1)
                                     for x in names]
    meta = ds.metainfo
    for key in ('sample_idx', 'sample_id', 'img_path', 'ori_shape', 'img_shape', 'cam2img',
                'ori_cam2img', 'affine_mat', 'inv_affine_mat', 'flip', 'crop_scale',
                'random_crop', 'box_type_3d', 'box_mode_3d'):
        assert key in meta, key
    assert meta['sample_id'] == '000076' and meta['img_shape'] == (OUT_H, OUT_W)
    assert meta['flip'] is True and meta['random_crop'] is True
    assert 'gt_depth' not in ds


def test_packing_teacher_depth():
    h, w = OUT_H // 4, OUT_W // 4
    depth = np.random.rand(1, h, w).astype(np.float32)
    valid = depth > 0.5
    packed = PackMonoDLEInputs()(dict(img=np.zeros((OUT_H, OUT_W, 3), np.uint8),
                                      gt_depth_map=depth, gt_depth_valid=valid))
    gt = packed['data_samples'].gt_depth
    assert isinstance(gt, PixelData)
    assert gt.depth.shape == (1, h, w) and gt.depth.dtype == torch.float32
    assert gt.valid.dtype == torch.bool and torch.equal(gt.valid, torch.from_numpy(valid))
    np.testing.assert_array_equal(gt.depth.numpy(), depth)


def test_empty_frame_through_pipeline(tmp_path, make_kitti_layout):
    root = make_kitti_layout(tmp_path, ['000000'])
    open(osp.join(root, 'training', 'label_2', '000000.txt'), 'w').close()
    ds = MonoDLEKittiDataset(data_root=root, split='train', pipeline=[
        dict(type='LoadKittiMonoImage'), dict(type='LoadMonoDLEAnnotations'),
        dict(type='MonoDLEAffineAug', **FORCED), dict(type='PackMonoDLEInputs')])
    out = ds[0]
    assert len(out['data_samples'].gt_instances_3d) == 0
    assert out['data_samples'].gt_instances_3d.bboxes_3d.tensor.shape == (0, 7)
    assert out['data_samples'].gt_instances.bboxes.shape == (0, 4)


def test_names_packed_on_request(mini):
    pipe = Compose([dict(type='LoadKittiMonoImage'), dict(type='LoadMonoDLEAnnotations',
                                                          with_names=True),
                    dict(type='MonoDLEAffineAug', **FORCED),
                    dict(type='PackMonoDLEInputs',
                         keys=['img', 'gt_bboxes_3d', 'gt_labels_3d', 'gt_names'])])
    info, packed = run(mini, 0, pipe, 0)
    g3 = packed['data_samples'].gt_instances_3d
    assert list(g3.names) == [ins['name'] for ins in info['instances']]
    assert 'alphas' not in g3

"""MonoDLEBBoxCoder: decoding bit for bit equal to the head before the split, encode -> decode
round trip on KITTI-mini objects, and ground-truth substitution between the decode steps."""
import math
import os.path as osp

import numpy as np
import pytest
import torch
from mmdet3d.registry import TASK_UTILS
from mmdet3d.structures import CameraInstance3DBoxes
from mmengine.structures import InstanceData
from presplit_decode import PresplitDecoder  # tests/test_models (test material)

import monodle_plugin  # noqa: F401  (registers)
from monodle_plugin.datasets.kitti_io import read_calib, read_label
from monodle_plugin.datasets.transforms.monodle_affine_aug import monodle_affine_matrix
from monodle_plugin.structures.geometry import project_to_image

HERE = osp.dirname(__file__)
MINI = osp.join(HERE, '..', '..', 'demo', 'kitti_mini', 'KITTI', 'training')
CHANNELS = dict(heatmap=3, offset_2d=2, size_2d=2, depth=2, offset_3d=2, size_3d=3, heading=24)
FEAT_HW = (24, 80)  # 96 x 320 network input
RAW_HW = (375, 1242)
P2 = np.array([[721.5377, 0.0, 609.5593, 44.85728], [0.0, 721.5377, 172.854, 0.2163791],
               [0.0, 0.0, 1.0, 0.002745884], [0.0, 0.0, 0.0, 1.0]])


def coder(**kwargs):
    return TASK_UTILS.build(dict(type='MonoDLEBBoxCoder', **kwargs))


def random_maps(seed, b=2):
    """Head-like raw maps from numpy's RandomState (stable across versions)."""
    rng = np.random.RandomState(seed)
    outs = {k: torch.from_numpy(rng.randn(b, c, *FEAT_HW).astype(np.float32))
            for k, c in CHANNELS.items()}
    outs['heatmap'] = outs['heatmap'] * 2 - 6  # some of the 50 peaks below 0.2
    outs['size_2d'] = outs['size_2d'].abs() * 10
    outs['size_3d'] = outs['size_3d'].abs() + 1
    return outs


def metas(mode):
    aff = monodle_affine_matrix(np.array([621.0, 187.5]), np.array([1242.0, 375.0]), (320, 96))
    if mode == 'affine':  # a flipped sample: the inverse maps back through the flip
        aff = aff @ np.array([[-1.0, 0.0, RAW_HW[1]], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    meta = dict(ori_shape=RAW_HW, img_shape=(96, 320), cam2img=P2.tolist(),
                inv_affine_mat=np.linalg.inv(aff), box_type_3d=CameraInstance3DBoxes)
    return [meta, dict(meta, ori_cam2img=(P2 * [[1.01], [0.99], [1], [1]]).tolist())]


def decode_all(c, outs, mode):
    peaks = c.select_peaks(outs['heatmap'], 50, 3)
    preds = c.gather_predictions(outs, peaks, 0.2)
    return c.decode(preds, metas(mode), FEAT_HW, mode)


def flatten(res3d, res2d):
    """One float64 row per detection: labels, scores, alpha, 3D box (7), 2D box (4), image."""
    rows = []
    for i, (r3, r2) in enumerate(zip(res3d, res2d)):
        rows.append(torch.cat([
            r3.labels_3d[:, None].double(), r3.scores_3d[:, None].double(),
            r3.alphas[:, None].double(), r3.bboxes_3d.tensor.double(), r2.bboxes.double(),
            r2.scores[:, None].double(), r2.labels[:, None].double(),
            torch.full((len(r3), 1), float(i), dtype=torch.float64)], 1))
    return torch.cat(rows).numpy()


@pytest.mark.parametrize('mode', ['official', 'affine'])
@pytest.mark.parametrize('seed', [0, 1])
@pytest.mark.parametrize('use_mean_size', [False, True])
def test_decode_equals_the_head_before_the_split_bit_for_bit(mode, seed, use_mean_size):
    """The coder's decoding equals ``CenterNet3DHead.predict_by_feat`` of commit c480796 (the
    decode before the head/coder split, transcribed in presplit_decode.py) to the last bit.

    Both run on the same maps in this process (same kernels, same CPU), so any difference is
    a change of the decoding, never of the machine: exact equality holds on every CPU."""
    res3d, res2d = decode_all(coder(use_mean_size=use_mean_size), random_maps(seed), mode)
    got = flatten(res3d, res2d)
    old = PresplitDecoder(use_mean_size=use_mean_size, test_cfg=dict(decode_mode=mode))
    ref_results = old.predict_by_feat(random_maps(seed), metas(mode))  # maps of its own
    ref = flatten(ref_results, ref_results)  # one InstanceData held the 3D and 2D fields
    assert got.shape == ref.shape and len(got) > 10
    np.testing.assert_array_equal(got, ref)


def test_decode_rejects_unknown_mode_and_missing_affine():
    c = coder()
    outs = random_maps(0)
    preds = c.gather_predictions(outs, c.select_peaks(outs['heatmap']), 0.2)
    with pytest.raises(ValueError, match='decode_mode'):
        c.decode(preds, metas('official'), FEAT_HW, 'exact')
    no_affine = [{k: v for k, v in m.items() if k != 'inv_affine_mat'} for m in metas('affine')]
    with pytest.raises(KeyError, match='inv_affine_mat'):
        c.decode(preds, no_affine, FEAT_HW, 'affine')


# ----------------------------------------------------------------------------- round trip
def kitti_mini_sample(frame='000008'):
    """GT instances of a KITTI-mini frame, network input = raw image (identity affine)."""
    cam2img = read_calib(osp.join(MINI, 'calib', f'{frame}.txt'))['cam2img']
    objs = read_label(osp.join(MINI, 'label_2', f'{frame}.txt'), cam2img)
    names = [o['name'] for o in objs]
    boxes = np.array([o['bbox_3d'] for o in objs], np.float32)
    classes = ('Pedestrian', 'Car', 'Cyclist')
    labels = torch.tensor([classes.index(n) if n in classes else -1 for n in names])
    centers = project_to_image(boxes[:, :3] - np.array([0, 1, 0]) * boxes[:, 4:5] / 2, cam2img)
    g3 = InstanceData(bboxes_3d=CameraInstance3DBoxes(torch.from_numpy(boxes)),
                      labels_3d=labels, centers_2d=torch.from_numpy(centers).float(),
                      depths=torch.from_numpy(boxes[:, 2]),
                      alphas=torch.tensor([o['alpha'] for o in objs], dtype=torch.float32),
                      difficulty=torch.tensor([o['difficulty'] for o in objs]))
    g3.names = names
    g2 = InstanceData(bboxes=torch.tensor(np.array([o['bbox'] for o in objs]),
                                          dtype=torch.float32), labels=labels.clone())
    meta = dict(ori_shape=RAW_HW, img_shape=RAW_HW, cam2img=cam2img, inv_affine_mat=np.eye(3),
                box_type_3d=CameraInstance3DBoxes)
    return g3, g2, meta


def maps_from_targets(c, t, feat_hw):
    """Perfect raw maps: a peak per target slot and the targets' values at its cell."""
    h, w = feat_hw
    outs = {k: torch.zeros(1, ch, h, w) for k, ch in CHANNELS.items()}
    outs['heatmap'][:] = -20.0
    for slot in np.flatnonzero(t['mask_2d']):
        y, x = divmod(int(t['indices'][slot]), w)
        cls = int(np.argmax(t['heatmap'][:, y, x]))
        outs['heatmap'][0, cls, y, x] = 5.0
        outs['offset_2d'][0, :, y, x] = torch.from_numpy(t['offset_2d'][slot])
        outs['size_2d'][0, :, y, x] = torch.from_numpy(t['size_2d'][slot])
        outs['offset_3d'][0, :, y, x] = torch.from_numpy(t['offset_3d'][slot])
        s = 1.0 / (float(t['depth'][slot, 0]) + 1.0) - c.depth_eps
        outs['depth'][0, 0, y, x] = math.log(s / (1 - s))
        outs['size_3d'][0, :, y, x] = torch.from_numpy(t['size_3d'][slot])
        outs['heading'][0, int(t['heading_bin'][slot, 0]), y, x] = 10.0
        outs['heading'][0, 12 + int(t['heading_bin'][slot, 0]), y, x] = float(
            t['heading_res'][slot, 0])
    return outs


@pytest.mark.parametrize('use_mean_size', [False, True])
def test_encode_decode_round_trip_on_kitti_mini(use_mean_size):
    c = coder(writelist=('Pedestrian', 'Car', 'Cyclist'), use_mean_size=use_mean_size)
    g3, g2, meta = kitti_mini_sample()
    feat_hw = (RAW_HW[0] // 4, RAW_HW[1] // 4)
    t = c.encode(g3, g2, meta, feat_hw)
    kept = np.flatnonzero(t['mask_2d'])
    assert len(kept) >= 2
    outs = maps_from_targets(c, t, feat_hw)
    res3d, res2d = c.decode(c.gather_predictions(outs, c.select_peaks(outs['heatmap']), 0.2),
                            [meta], feat_hw, 'affine')
    res3d, res2d = res3d[0], res2d[0]
    assert len(res3d) == len(kept)
    gt = g3.bboxes_3d.tensor.numpy()[kept]
    order = [int(np.argmin(np.abs(res3d.bboxes_3d.tensor[:, 2].numpy() - z))) for z in gt[:, 2]]
    got = res3d.bboxes_3d.tensor.numpy()[order]
    np.testing.assert_allclose(got[:, :6], gt[:, :6], atol=2e-3)  # centre, size (metres)
    # ry = alpha + ray angle of the projected 3D centre (MonoDLE's alpha2ry); the label's ry
    # agrees to its 2-decimal rounding and the ray-angle definition (~1e-2 rad)
    alphas = g3.alphas.numpy()[kept]
    u = g3.centers_2d.numpy()[kept, 0]
    cam2img = meta['cam2img']
    ray = np.arctan2(u - cam2img[0, 2], cam2img[0, 0])
    np.testing.assert_allclose(np.cos(got[:, 6] - (alphas + ray)), 1.0, atol=1e-8)
    np.testing.assert_allclose(got[:, 6], gt[:, 6], atol=2e-2)
    np.testing.assert_allclose(np.cos(res3d.alphas.numpy()[order] - alphas), 1.0, atol=1e-6)
    np.testing.assert_allclose(res2d.bboxes.numpy()[order], g2.bboxes.numpy()[kept], atol=1e-3)
    assert res2d.labels.tolist() == res3d.labels_3d.tolist()


def test_ground_truth_can_replace_predictions_between_the_steps():
    """Oracle use: replacing the gathered depth changes exactly the box's depth (and x, y)."""
    c = coder()
    outs = random_maps(3, b=1)
    preds = c.gather_predictions(outs, c.select_peaks(outs['heatmap']), 0.2)
    before = c.decode(preds, metas('official')[:1], FEAT_HW)[0][0].bboxes_3d.tensor
    preds[0]['depth'] = torch.full_like(preds[0]['depth'], 20.0)
    after = c.decode(preds, metas('official')[:1], FEAT_HW)[0][0].bboxes_3d.tensor
    assert torch.all(after[:, 2] == 20.0)
    torch.testing.assert_close(after[:, 3:], before[:, 3:])
    ratio = after[:, 0] - P2[0, 3] / -P2[0, 0]
    expected = (before[:, 0] - P2[0, 3] / -P2[0, 0]) * 20.0 / before[:, 2]
    torch.testing.assert_close(ratio, expected, rtol=1e-4, atol=1e-4)


def test_bad_coder_arguments():
    with pytest.raises(ValueError, match='class_names'):
        coder(num_classes=2)
    with pytest.raises(ValueError, match='cls_mean_size'):
        coder(cls_mean_size=[[1.0, 1.0, 1.0]])

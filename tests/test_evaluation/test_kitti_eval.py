"""KITTI AP40 / AP11 evaluation on the CPU: exact rotated IoU, devkit rules, equality with
mmdet3d's own ``kitti_eval`` (run in numba's CUDA simulator), the metric and the CLI."""
import copy
import importlib
import json
import os.path as osp
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import shapely.geometry
from mmdet3d_reference import run_mmdet3d_kitti_eval  # tests/test_evaluation (test material)
from synthetic_kitti import make_synthetic_kitti

import monodle_plugin  # noqa: F401  (registers)
from monodle_plugin.datasets.kitti_io import (
    check_kitti_anno,
    load_kitti_dir,
    read_kitti_file,
    read_label,
    read_split_file,
)
from monodle_plugin.evaluation.functional import (
    compute_kitti_ap,
    evaluate_kitti_files,
    frame_overlaps,
    kitti_eval,
    rotated_iou_bev,
)
from monodle_plugin.evaluation.functional.kitti_eval import KITTI_EVAL_CLASSES
from monodle_plugin.structures.classes import MONODLE_CLASSES

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
KITTI_MINI = osp.join(ROOT, 'demo', 'kitti_mini', 'KITTI')
CLASSES = list(KITTI_EVAL_CLASSES)


# ----------------------------------------------------------------------------- helpers
def shapely_bev(box):
    """Polygon of a BEV box (x, z, l, w, ry), corners written out independently."""
    x, z, length, width, ry = box
    c, s = np.cos(ry), np.sin(ry)
    pts = []
    for u, v in ((-length / 2, -width / 2), (length / 2, -width / 2), (length / 2, width / 2),
                 (-length / 2, width / 2)):
        pts.append((x + c * u + s * v, z - s * u + c * v))
    return shapely.geometry.Polygon(pts)


def obj(name, bbox, loc, dims_lhw, ry, alpha=0.0, trunc=0.0, occ=0, score=0.0):
    return dict(name=name, bbox=bbox, loc=loc, dims=dims_lhw, ry=ry, alpha=alpha,
                trunc=trunc, occ=occ, score=score)


def anno(objs):
    n = len(objs)
    return dict(
        name=np.array([o['name'] for o in objs], dtype='<U16'),
        truncated=np.array([o['trunc'] for o in objs], dtype=float),
        occluded=np.array([o['occ'] for o in objs], dtype=np.int64),
        alpha=np.array([o['alpha'] for o in objs], dtype=float),
        bbox=np.array([o['bbox'] for o in objs], dtype=float).reshape(n, 4),
        dimensions=np.array([o['dims'] for o in objs], dtype=float).reshape(n, 3),
        location=np.array([o['loc'] for o in objs], dtype=float).reshape(n, 3),
        rotation_y=np.array([o['ry'] for o in objs], dtype=float),
        score=np.array([o['score'] for o in objs], dtype=float))


def car(i, score=0.0, name='Car', dx=0.0, height_px=60.0, y1=100.0):
    """An easy object (2D height 60 px) with its own 2D / 3D place, index i."""
    x1 = 20.0 * (i % 50)
    return obj(name, [x1, y1, x1 + 15.0, y1 + height_px], [i * 10.0 + dx, 1.6, 20.0],
               [3.9, 1.5, 1.6], 0.3, score=score)


def compare_with_mmdet3d(gts, dts, classes=CLASSES, tol=1e-4):
    ref, ref_aos, _, _ = run_mmdet3d_kitti_eval(gts, dts, classes, warmup=False)
    _, ours = kitti_eval(gts, dts, classes)
    assert set(ref) == {k for k in ours if '_AOS_' not in k}
    worst = max(abs(ref[k] - ours[k]) for k in ref)
    assert worst <= tol, [(k, ref[k], ours[k]) for k in ref if abs(ref[k] - ours[k]) > tol]
    for ap, arr in ref_aos.items():  # AOS: mmdet3d only prints it; compare the arrays
        for j, cls in enumerate(classes):
            for d, diff in enumerate(('easy', 'moderate', 'hard')):
                for s, set_name in enumerate(('strict', 'loose')):
                    key = f'KITTI/{cls}_AOS_{ap[:4]}_{diff}_{set_name}'
                    assert abs(ours[key] - arr[j, d, s]) <= tol, key
    return ours


# ----------------------------------------------------------------------------- IoU
def test_rotated_iou_matches_shapely():
    rng = np.random.default_rng(0)
    n = 300
    a = np.stack([rng.uniform(-2, 2, n), rng.uniform(-2, 2, n), rng.uniform(0.3, 5, n),
                  rng.uniform(0.3, 3, n), rng.uniform(-np.pi, np.pi, n)], 1)
    b = a + np.stack([rng.normal(0, 0.8, n), rng.normal(0, 0.8, n), rng.normal(0, 0.3, n),
                      rng.normal(0, 0.2, n), rng.normal(0, 0.6, n)], 1)
    b[:, 2:4] = np.abs(b[:, 2:4]) + 0.05
    b[:10] = a[:10]  # identical boxes (mmdet3d's float32 CUDA kernel gives ~0 for these)
    b[10:20, :2] += 50  # disjoint
    b[20:30, 2:4] = a[20:30, 2:4] * 0.3  # contained
    b[20:30, :2] = a[20:30, :2]
    b[20:30, 4] = a[20:30, 4] + 0.2
    ours = np.array([rotated_iou_bev(a[i:i + 1], b[i:i + 1])[0, 0] for i in range(n)])
    ref = []
    for i in range(n):
        pa, pb = shapely_bev(a[i]), shapely_bev(b[i])
        inter = pa.intersection(pb).area
        ref.append(inter / (pa.area + pb.area - inter))
    np.testing.assert_allclose(ours, ref, atol=1e-9)
    np.testing.assert_allclose(ours[:10], 1.0, atol=1e-12)
    assert (ours[10:20] == 0).all()
    assert (ours > 0).sum() > n * 0.5  # most pairs overlap: the test exercises clipping
    full = rotated_iou_bev(a[:50], b[:60])
    assert full.shape == (50, 60)
    np.testing.assert_allclose(np.diag(full), ours[:50], atol=1e-12)


def test_3d_iou_uses_bottom_centre_and_y_down():
    """Two 2 x 2 x 2 boxes; the second one 0.5 m lower (y down): 3D IoU = 1.5 / 2.5 ..."""
    gt = np.array([[0.0, 2.0, 10.0, 2.0, 2.0, 2.0, 0.0]])  # spans y in [0, 2]
    dt = np.array([[0.0, 2.5, 10.0, 2.0, 2.0, 2.0, 0.0]])  # spans y in [0.5, 2.5]
    box2d = np.zeros((1, 4))
    off = np.array([0, 1])
    ov3d, _ = frame_overlaps(2, box2d, box2d, dt, gt, off, off)
    inter = 2 * 2 * 1.5
    assert ov3d[0] == pytest.approx(inter / (8 + 8 - inter), abs=1e-12)
    ovbev, _ = frame_overlaps(1, box2d, box2d, dt, gt, off, off)
    assert ovbev[0] == pytest.approx(1.0, abs=1e-12)
    dt_shift = dt.copy()
    dt_shift[0, 0] = 1.0  # half the width to the side: BEV 2 / 6
    ovbev, _ = frame_overlaps(1, box2d, box2d, dt_shift, gt, off, off)
    assert ovbev[0] == pytest.approx(2.0 / 6.0, abs=1e-12)


def test_3d_iou_equals_mmdet3d_camera_box_overlaps():
    """Same 3D IoU as mmdet3d's ``CameraInstance3DBoxes.overlaps`` (mmcv's CPU rotated IoU),
    an independent check of the camera-frame conventions (bottom centre, y down, yaw)."""
    import torch
    from mmdet3d.structures import CameraInstance3DBoxes
    rng = np.random.default_rng(0)
    n = 40
    a = np.stack([rng.uniform(-5, 5, n), rng.uniform(1, 2, n), rng.uniform(10, 30, n),
                  rng.uniform(3, 5, n), rng.uniform(1.3, 1.8, n), rng.uniform(1.5, 2, n),
                  rng.uniform(-3, 3, n)], 1)
    b = a + rng.normal(0, [0.5, 0.2, 0.5, 0.2, 0.1, 0.1, 0.3], (n, 7))  # perturbed (see above)
    ref = CameraInstance3DBoxes.overlaps(CameraInstance3DBoxes(torch.from_numpy(a)),
                                         CameraInstance3DBoxes(torch.from_numpy(b))).numpy()
    off = np.array([0, n])
    ov, _ = frame_overlaps(2, np.zeros((n, 4)), np.zeros((n, 4)), a, b, off, off)
    assert (ref.diagonal() > 0.1).mean() > 0.8
    np.testing.assert_allclose(ov.reshape(n, n), ref, atol=1e-5)


# ----------------------------------------------------------------------------- hand-made
def _frames_with_cars(num_gt, dets_per_frame):
    gts = [anno([car(i)]) for i in range(num_gt)]
    dts = [anno(dets_per_frame(i)) for i in range(num_gt)]
    return gts, dts


def test_perfect_detections_give_100():
    """>= 40 counted objects per class: every recall position is reached at precision 1."""
    rng = np.random.default_rng(1)
    gts, dts = [], []
    for i in range(45):
        objs = [car(i), car(i + 100, name='Pedestrian'), car(i + 200, name='Cyclist')]
        for o in objs:
            o['ry'] = rng.uniform(-3, 3)  # yawed boxes (mmdet3d's IoU fails on these)
            o['alpha'] = rng.uniform(-3, 3)
        gts.append(anno(objs))
        det = [dict(o, score=rng.uniform(0.1, 1)) for o in objs]
        dts.append(anno(det))
    _, res = kitti_eval(gts, dts, CLASSES)
    assert len(res) == 2 * (3 * 2 * 3 * 4 + 3 * 4)
    for k, v in res.items():
        assert v == pytest.approx(100.0, abs=1e-9), k


def test_no_detections_give_0():
    gts, dts = _frames_with_cars(45, lambda i: [])
    _, res = kitti_eval(gts, dts, CLASSES)
    assert res['KITTI/Car_3D_AP40_moderate_strict'] == 0.0
    assert all(v == 0.0 for v in res.values())
    assert not any('_AOS_' in k for k in res)  # no predicted alpha -> no AOS, as mmdet3d


def test_known_ap40_by_hand():
    """40 easy cars; the first 20 found exactly (scores 0.90 > ... > 0.71), 10 false cars
    with higher scores 0.99 far from everything.

    Each TP gives one recall threshold, stored at positions 0..19 of the 41; at the i-th,
    tp = i and fp = 10, precision i / (i + 10), interpolated (max to the right) 20 / 30 at
    all 20 positions. AP40 averages positions 1..40: 19 * (2/3) / 40 = 31.67 %; AP11
    positions 0, 4, .., 40: 5 * (2/3) / 11 = 30.30 %. If the 10 false cars lie in a DontCare
    region, the 2D evaluation does not count them (devkit rule) but BEV / 3D do:
    2D AP40 = 19 / 40 = 47.5 %.
    """
    def dets(i):
        out = [dict(car(i), score=0.90 - 0.01 * i)] if i < 20 else []
        if i < 10:
            out.append(car(i + 1000, score=0.99, dx=500.0, y1=250.0))  # far in 2D and 3D
        return out

    gts, dts = _frames_with_cars(40, dets)
    _, res = kitti_eval(gts, dts, ['Car'])
    for kind in ('2D', 'BEV', '3D'):
        assert res[f'KITTI/Car_{kind}_AP40_easy_strict'] == pytest.approx(
            19 * (2 / 3) / 40 * 100, abs=1e-9)
        assert res[f'KITTI/Car_{kind}_AP11_easy_strict'] == pytest.approx(
            5 * (2 / 3) / 11 * 100, abs=1e-9)
    assert 'KITTI/Overall_3D_AP40_moderate' not in res  # one class: no overall, as mmdet3d

    # the false cars in a DontCare region
    for i in range(10):
        fp_box = dts[i]['bbox'][-1]
        g = gts[i]
        dc = dict(name='DontCare', bbox=fp_box - [2, 2, -2, -2], loc=[-1000] * 3,
                  dims_lhw=[-1] * 3, ry=-10, alpha=-10, trunc=-1, occ=-1)
        gts[i] = anno([obj(g['name'][0], g['bbox'][0], g['location'][0],
                           g['dimensions'][0], g['rotation_y'][0]), obj(**dc)])
    _, res = kitti_eval(gts, dts, ['Car'])
    assert res['KITTI/Car_2D_AP40_easy_strict'] == pytest.approx(47.5, abs=1e-9)
    assert res['KITTI/Car_3D_AP40_easy_strict'] == pytest.approx(
        19 * (2 / 3) / 40 * 100, abs=1e-9)


def test_neighbour_class_and_small_detections_are_ignored():
    """Car detections on Van ground truth, and Car detections shorter than 25 px, are
    neither TP nor FP for Car moderate; the same detections on a Truck are false positives.

    41 cars found with score 0.5 fill the 41 recall positions: AP40 = 100 %, or with the 10
    false positives (score 0.99) precision 41 / 51 everywhere.
    """
    def dets(i):
        out = [dict(car(i), score=0.5)]
        out.append(dict(car(i + 1000, dx=500.0, height_px=20.0, y1=250.0), score=0.9))  # small
        return out

    gts, dts = _frames_with_cars(41, dets)
    for i in range(10):
        van = car(i + 2000, name='Van', dx=900.0, y1=200.0)
        gts[i] = anno([car(i), van])
        dts[i] = anno(dets(i) + [dict(van, name='Car', score=0.99)])
    _, res = kitti_eval(gts, dts, ['Car'])
    assert res['KITTI/Car_3D_AP40_moderate_strict'] == pytest.approx(100.0, abs=1e-9)
    for i in range(10):
        gts[i]['name'][1] = 'Truck'
    _, res = kitti_eval(gts, dts, ['Car'])
    assert res['KITTI/Car_3D_AP40_moderate_strict'] == pytest.approx(41 / 51 * 100, abs=1e-9)


# ----------------------------------------------------------------------------- mmdet3d
def test_equals_mmdet3d_kitti_eval_random():
    """Mixed classes, Van / Person_sitting, DontCare, all difficulties, empty frames."""
    gts, dts = make_synthetic_kitti(20, seed=7, gt_per_frame=4.0, dontcare_per_frame=1.5)
    gts.append(gts[2])
    dts.append({k: v[:0] for k, v in dts[0].items()})  # frame without detections
    gts.append({k: v[:0] for k, v in gts[0].items()})  # last frame without labels
    dts.append(dts[1])
    ours = compare_with_mmdet3d(gts, dts)
    assert 0 < ours['KITTI/Car_3D_AP40_moderate_strict'] < 100


@pytest.mark.slow
def test_equals_mmdet3d_kitti_eval_hundreds_of_frames():
    gts, dts = make_synthetic_kitti(150, seed=11)
    compare_with_mmdet3d(gts, dts)
    gts, dts = make_synthetic_kitti(50, seed=12, fp_per_frame=2.0, recall=0.95)
    compare_with_mmdet3d(gts, dts, classes=['Pedestrian', 'Cyclist'])


# ----------------------------------------------------------------------------- bad input
def test_bad_input_errors(tmp_path):
    good = 'Car 0.00 0 -1.58 587.01 173.33 614.12 200.12 1.65 1.67 3.64 -0.65 1.71 46.70 -1.59'
    p = tmp_path / '000001.txt'
    p.write_text(good + ' nan\n')
    with pytest.raises(ValueError, match=r'000001.txt.*score'):
        check_kitti_anno(read_kitti_file(str(p)), str(p), is_result=True)
    p.write_text(good.replace('1.65 1.67 3.64', '1.65 -1.67 3.64') + '\n')
    with pytest.raises(ValueError, match=r'000001.txt.*negative dimensions'):
        check_kitti_anno(read_kitti_file(str(p)), str(p), is_result=False)
    p.write_text(good + '\n')  # a result line without its score (issue 25)
    with pytest.raises(ValueError, match=r'000001.txt \(object 0\): result line has 15 '
                       r'fields, no score'):
        load_kitti_dir(str(tmp_path), ['000001'], is_result=True)
    p.write_text(good.replace('46.70', '-2.0') + '\n')  # behind the camera
    with pytest.raises(ValueError, match=r'000001.txt.*location z <= 0'):
        check_kitti_anno(read_kitti_file(str(p)), str(p), is_result=False)
    with pytest.raises(ValueError, match=r'000001.txt \(object 0\): location z = -2.0 m'):
        read_label(str(p))
    p.write_text('Car 0.0 0 1.0 2.0\n')
    with pytest.raises(ValueError, match=r'000001.txt:1: expected 15 or 16 fields'):
        read_kitti_file(str(p))
    with pytest.raises(ValueError, match='cannot be evaluated'):
        kitti_eval([], [], ['Van'])


# ----------------------------------------------------------------------------- metric
def _gt_as_samples(ids, classes=MONODLE_CLASSES, drop=()):
    """Fake detector outputs: the label-file objects of our classes, jittered a little."""
    import torch
    from mmdet3d.structures import CameraInstance3DBoxes
    from mmengine.structures import InstanceData
    rng = np.random.default_rng(0)
    samples, dt_annos = [], []
    for sid in ids:
        a = read_kitti_file(osp.join(KITTI_MINI, 'training', 'label_2', f'{sid}.txt'))
        keep = np.flatnonzero(np.isin(a['name'], classes))
        if sid in drop:
            keep = keep[:0]
        n = len(keep)
        loc = a['location'][keep] + rng.normal(0, 0.05, (n, 3))
        dims = a['dimensions'][keep]
        ry = a['rotation_y'][keep]
        box3d = np.concatenate([loc, dims, ry[:, None]], 1)
        bbox = a['bbox'][keep] + rng.normal(0, 1.0, (n, 4))
        scores = rng.uniform(0.2, 1.0, n)
        labels = np.array([classes.index(c) for c in a['name'][keep]], dtype=np.int64)
        pred3d = InstanceData()
        pred3d.bboxes_3d = CameraInstance3DBoxes(torch.from_numpy(box3d).float().reshape(-1, 7))
        pred3d.scores_3d = torch.from_numpy(scores).float()
        pred3d.labels_3d = torch.from_numpy(labels)
        pred2d = InstanceData()
        pred2d.bboxes = torch.from_numpy(bbox).float().reshape(-1, 4)
        pred2d.scores = torch.from_numpy(scores).float()
        pred2d.labels = torch.from_numpy(labels)
        samples.append(dict(pred_instances_3d=pred3d, pred_instances=pred2d,
                            sample_idx=int(sid)))
        f32 = box3d.astype(np.float32).astype(np.float64)
        dt_annos.append(dict(
            name=a['name'][keep], truncated=np.zeros(n), occluded=np.zeros(n, dtype=np.int64),
            alpha=f32[:, 6] - np.arctan2(f32[:, 0], f32[:, 2]),
            bbox=bbox.astype(np.float32).astype(np.float64).reshape(-1, 4),
            dimensions=f32[:, 3:6], location=f32[:, :3], rotation_y=f32[:, 6],
            score=scores.astype(np.float32).astype(np.float64)))
    return samples, dt_annos


def test_metric_end_to_end_on_kitti_mini(tmp_path):
    from mmdet3d.registry import METRICS
    ids = sorted(read_split_file(osp.join(KITTI_MINI, 'ImageSets', 'trainval.txt')))
    samples, dt_annos = _gt_as_samples(ids, drop={'000002'})
    sub = tmp_path / 'results'
    metric = METRICS.build(dict(type='KittiAP40Metric', data_root=KITTI_MINI,
                                submission_prefix=str(sub)))
    metric.process({}, samples[:5])
    metric.process({}, samples[5:])
    res = metric.evaluate(len(samples))
    gt_annos = [read_kitti_file(osp.join(KITTI_MINI, 'training', 'label_2', f'{i}.txt'))
                for i in ids]
    _, expected = kitti_eval(gt_annos, dt_annos, list(MONODLE_CLASSES))
    assert set(res) == set(expected)
    assert 'KITTI/Car_3D_AP40_moderate_strict' in res
    assert 'KITTI/Car_AOS_AP40_moderate_strict' in res
    assert 'KITTI/Overall_3D_AP40_moderate' in res
    for k in expected:
        assert res[k] == pytest.approx(expected[k], abs=1e-9), k
    assert res['KITTI/Car_2D_AP40_moderate_strict'] > 50
    # result files: one per image, empty for the image without detections
    assert sorted(p.name for p in sub.iterdir()) == [f'{i}.txt' for i in ids]
    assert (sub / '000002.txt').read_text() == ''
    line = (sub / '000000.txt').read_text().split('\n')[0].split()
    assert line[0] == 'Pedestrian' and line[1:3] == ['-1', '-1'] and len(line) == 16

    # the file evaluation (tools/kitti_eval.py) on the written files gives the same numbers
    from_files, report = evaluate_kitti_files(
        osp.join(KITTI_MINI, 'training', 'label_2'), str(sub),
        osp.join(KITTI_MINI, 'ImageSets', 'trainval.txt'), MONODLE_CLASSES)
    assert report['images'] == len(ids) and 'AP40' in report['table']
    assert set(from_files) == set(res)
    for k in res:  # files carry 4 decimals: IoUs move by ~1e-5, matches do not change here
        assert from_files[k] == pytest.approx(res[k], abs=1e-4), k


def test_metric_options_and_errors(tmp_path):
    from mmdet3d.registry import METRICS
    samples, _ = _gt_as_samples(['000000', '000076'])
    metric = METRICS.build(dict(type='KittiAP40Metric', data_root=KITTI_MINI,
                                eval_classes=['Car'], eval_types=['bbox', '3d'],
                                ap_types=['AP40']))
    metric.process({}, samples)
    res = metric.evaluate(2)
    assert res and all('_AP40_' in k and k.startswith('KITTI/Car_') for k in res)
    assert not any('_BEV_' in k or '_AOS_' in k for k in res)

    # format_only: files only, no labels read (test split)
    metric = METRICS.build(dict(type='KittiAP40Metric', data_root=str(tmp_path / 'nowhere'),
                                format_only=True, submission_prefix=str(tmp_path / 'sub')))
    metric.process({}, samples)
    assert metric.evaluate(2) == {}
    assert (tmp_path / 'sub' / '000076.txt').is_file()
    # format_only without submission_prefix: the run dir's results/test, none here -> error
    from mmengine.logging import MMLogger
    MMLogger.get_instance('format_only_without_log_file')  # current logger: no file handler
    metric = METRICS.build(dict(type='KittiAP40Metric', format_only=True))
    metric.process({}, samples)
    with pytest.raises(ValueError, match='no submission_prefix and no run directory'):
        metric.evaluate(2)
    # images of testing/ (no labels) evaluated without format_only: an error, not AP40 against
    # the training labels of the same ids
    metric = METRICS.build(dict(type='KittiAP40Metric', data_root=KITTI_MINI))
    metric.process({}, [dict(s, img_path=f"data/KITTI/testing/image_2/{s['sample_idx']:06d}.png")
                        for s in samples])
    with pytest.raises(ValueError, match='testing/.*format_only=True'):
        metric.evaluate(2)

    # prediction for an image without label file
    metric = METRICS.build(dict(type='KittiAP40Metric', data_root=KITTI_MINI))
    bad = dict(samples[0], sample_idx=999999)
    metric.process({}, [bad])
    with pytest.raises(FileNotFoundError, match='999999.*no label file'):
        metric.evaluate(1)
    # NaN score
    nan = dict(samples[0])
    nan['pred_instances_3d'] = copy.deepcopy(samples[0]['pred_instances_3d'])
    nan['pred_instances_3d'].scores_3d[0] = float('nan')
    with pytest.raises(ValueError, match='image 000000.*score'):
        metric.process({}, [nan])
    # negative dimensions
    neg = dict(samples[0])
    neg['pred_instances_3d'] = copy.deepcopy(samples[0]['pred_instances_3d'])
    neg['pred_instances_3d'].bboxes_3d.tensor[0, 4] = -1.0
    with pytest.raises(ValueError, match='image 000000.*negative dimensions'):
        metric.process({}, [neg])


def test_metric_takes_classes_from_dataset_meta():
    """Labels are named with the evaluated dataset's classes (``dataset_meta``), not a copy."""
    from mmdet3d.registry import METRICS
    order = ('Car', 'Pedestrian', 'Cyclist')  # a dataset whose label order is not MonoDLE's
    samples, _ = _gt_as_samples(['000000', '000076'], classes=order)  # labels in that order
    metric = METRICS.build(dict(type='KittiAP40Metric', data_root=KITTI_MINI))
    assert metric.classes == MONODLE_CLASSES  # no dataset: the constant
    metric.dataset_meta = dict(classes=order)  # what mmengine's Evaluator does
    metric.process({}, samples)
    names = sorted(n for r in metric.results for n in r['anno']['name'])
    expected = sorted(n for sid in ['000000', '000076'] for n in read_kitti_file(
        osp.join(KITTI_MINI, 'training', 'label_2', f'{sid}.txt'))['name'] if n in order)
    assert names == expected
    # the same detections labelled in MonoDLE's order, with the default metric: same numbers
    monodle_samples, _ = _gt_as_samples(['000000', '000076'])
    reference = METRICS.build(dict(type='KittiAP40Metric', data_root=KITTI_MINI))
    reference.process({}, monodle_samples)
    expected_aps = reference.evaluate(2)
    assert expected_aps['KITTI/Pedestrian_3D_AP40_easy_strict'] > 0
    assert metric.evaluate(2) == expected_aps

    # explicit classes that contradict the dataset: an error naming both, not wrong names
    metric = METRICS.build(dict(type='KittiAP40Metric', data_root=KITTI_MINI,
                                classes=list(MONODLE_CLASSES)))
    metric.dataset_meta = dict(classes=order)
    with pytest.raises(ValueError, match=r"classes=\['Pedestrian', 'Car', 'Cyclist'\] but the "
                                         r"evaluated dataset labels \['Car'"):
        metric.process({}, samples)


def test_cli_subprocess_and_missing_label(tmp_path):
    label_dir = osp.join(KITTI_MINI, 'training', 'label_2')
    split = tmp_path / 'split.txt'
    split.write_text('000000\n000076\n')
    out_json = tmp_path / 'out' / 'ap.json'
    cmd = [sys.executable, osp.join(ROOT, 'tools', 'kitti_eval.py'), '--gt', label_dir,
           '--pred', label_dir, '--split', str(split), '--out-json', str(out_json)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    # label files (15 fields) as results: no score, an error (they were ranked with score 0)
    assert proc.returncode == 2 and 'no score' in proc.stderr, proc.stderr
    assert osp.join(label_dir, '000000.txt') in proc.stderr
    scored = tmp_path / 'scored'
    scored.mkdir()
    for sid in ('000000', '000076'):
        lines = open(osp.join(label_dir, f'{sid}.txt')).read().split('\n')
        (scored / f'{sid}.txt').write_text(''.join(f'{ln} 1.0\n' for ln in lines if ln.strip()))
    cmd[cmd.index('--pred') + 1] = str(scored)
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert 'AP40' in proc.stdout
    res = json.loads(out_json.read_text())
    assert 'KITTI/Car_3D_AP40_moderate_strict' in res
    # labels as predictions: 7 moderate pedestrians (occlusion <= 1, truncation <= 0.3) fill
    # recall positions 0..6 at precision 1; AP40 counts 1..6 (the devkit's small-set effect)
    assert res['KITTI/Pedestrian_3D_AP40_moderate_strict'] == pytest.approx(6 / 40 * 100)

    preds = tmp_path / 'pred'
    preds.mkdir()
    (preds / '123456.txt').write_text('')
    split.write_text('000000\n123456\n')
    cmd[cmd.index('--pred') + 1] = str(preds)
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode != 0
    assert '123456.txt has no' in proc.stderr



def test_cli_imports_no_torch(tmp_path):
    """tools/kitti_eval.py, --help and a whole evaluation, imports neither torch nor mmengine /
    mmcv / mmdet / mmdet3d nor monodle_plugin (whose import registers): it starts in about a
    second instead of about ten. The package's old module names are the same module objects."""
    label_dir = osp.join(KITTI_MINI, 'training', 'label_2')
    split = tmp_path / 'split.txt'
    split.write_text('000000\n000076\n')
    scored = tmp_path / 'scored'
    scored.mkdir()
    for sid in ('000000', '000076'):
        lines = open(osp.join(label_dir, f'{sid}.txt')).read().split('\n')
        (scored / f'{sid}.txt').write_text(''.join(f'{ln} 1.0\n' for ln in lines if ln.strip()))
    runs = [['--help'], ['--gt', label_dir, '--pred', str(scored), '--split', str(split),
                         '--depth-bins']]
    script = textwrap.dedent(f"""
        import runpy, sys
        for argv in {runs!r}:
            sys.argv = ['kitti_eval.py', *argv]
            try:
                runpy.run_path({osp.join(ROOT, 'tools', 'kitti_eval.py')!r}, run_name='__main__')
            except SystemExit as ex:
                assert ex.code in (0, None), ex.code
        heavy = ('torch', 'mmengine', 'mmcv', 'mmdet', 'mmdet3d', 'monodle_plugin')
        print('IMPORTED', sorted({{m.split('.')[0] for m in sys.modules}} & set(heavy)))
    """)
    proc = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                          cwd=str(tmp_path), timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'AP40' in proc.stdout and 'Objects at depth 0-20m' in proc.stdout, proc.stdout
    assert proc.stdout.strip().splitlines()[-1] == 'IMPORTED []', proc.stdout[-500:]

    for old, new in (('monodle_plugin.datasets.kitti_io', 'monodle_kitti.kitti_io'),
                     ('monodle_plugin.evaluation.functional.kitti_eval',
                      'monodle_kitti.kitti_eval'),
                     ('monodle_plugin.utils.cli', 'monodle_kitti.cli')):
        assert importlib.import_module(old) is importlib.import_module(new), old


def test_compute_kitti_ap_shapes():
    gts, dts = make_synthetic_kitti(5, seed=3)
    aps, with_aos = compute_kitti_ap(gts, dts, ['Car', 'Cyclist'], ['bbox', '3d'])
    assert with_aos
    assert sorted(aps) == sorted(f'AP{n}_{k}' for n in (11, 40) for k in ('2D', '3D', 'AOS'))
    assert all(v.shape == (2, 3, 2) for v in aps.values())
    with pytest.raises(ValueError, match='ground-truth frames'):
        compute_kitti_ap(gts, dts[:4], ['Car'])

"""Oracle analysis on kitti_mini with synthetic head maps: peaks at the ground-truth centres,
random regressions. ``all`` then rebuilds the matched label boxes; nothing is trained."""
import os.path as osp

import numpy as np
import pytest
import torch

from monodle_plugin.datasets.kitti_io import read_calib, read_kitti_file, read_split_file
from monodle_plugin.evaluation.analysis.distance_bins import depth_bins_from_edges
from monodle_plugin.evaluation.analysis.oracle import (
    STANDARD_VARIANTS,
    evaluate_variants,
    gt_items,
    parse_variant,
    replace_items,
    variant_name,
)
from monodle_plugin.evaluation.functional import kitti_eval
from monodle_plugin.evaluation.metrics import KittiAP40Metric
from monodle_plugin.models.task_modules.coders.monodle_bbox_coder import (
    MonoDLEBBoxCoder,
)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
KITTI = osp.join(ROOT, 'demo', 'kitti_mini', 'KITTI')
FEAT_HW = (96, 320)  # 384 x 1280 input / 4


def _synthetic_cache(coder, seed=0):
    """Per image: heatmap logits +6 at every in-map ground-truth centre, -9 elsewhere; the
    regression maps random. Returns the cache ``evaluate_variants`` takes."""
    rng = torch.Generator().manual_seed(seed)
    ids = read_split_file(osp.join(KITTI, 'ImageSets', 'val.txt'))
    cache = []
    for sid in ids:
        calib = read_calib(osp.join(KITTI, 'training', 'calib', f'{sid}.txt'))
        img_h, img_w = (375, 1242)
        meta = dict(ori_shape=(img_h, img_w), cam2img=calib['cam2img'], sample_id=sid)
        anno = read_kitti_file(osp.join(KITTI, 'training', 'label_2', f'{sid}.txt'))
        g = gt_items(anno, coder.class_names, meta, FEAT_HW, 'official', coder.down_ratio)
        h, w = FEAT_HW
        outs = dict(heatmap=torch.full((1, 3, h, w), -9.0))
        for lab, (x, y) in zip(g['labels'], g['center_3d']):
            if 0 <= x < w and 0 <= y < h:
                outs['heatmap'][0, lab, int(y), int(x)] = 6.0
        for name, c in (('offset_2d', 2), ('size_2d', 2), ('depth', 2), ('offset_3d', 2),
                        ('size_3d', 3), ('heading', 24)):
            outs[name] = torch.randn(1, c, h, w, generator=rng)
        outs['size_2d'] = outs['size_2d'].abs() * 10
        outs['size_3d'] = outs['size_3d'].abs() + 1
        outs['depth'][:, 1] = 0  # log-variance 0: score = heatmap score
        peaks = coder.select_peaks(outs['heatmap'], 50, 3)
        pred = coder.gather_predictions(outs, peaks, 0.2)[0]
        cache.append(dict(sample_id=sid, meta=meta, feat_hw=FEAT_HW, pred=pred))
    return cache


def test_variant_names():
    assert variant_name(()) == 'baseline' and variant_name(parse_variant('all')) == 'all'
    assert variant_name(parse_variant('offset_3d+depth')) == 'offset_3d+depth'
    assert parse_variant('location') == ('offset_3d', 'depth')
    with pytest.raises(ValueError, match='choose from'):
        parse_variant('colour')
    assert [variant_name(v) for v in STANDARD_VARIANTS][-2:] == ['offset_3d+depth', 'all']


def test_all_rebuilds_matched_boxes_and_beats_baseline():
    coder = MonoDLEBBoxCoder()
    cache = _synthetic_cache(coder)
    metric = KittiAP40Metric(data_root=KITTI, eval_types=['bbox', 'bev', '3d'])
    bins = depth_bins_from_edges([0, 20, 40])
    res, counts = evaluate_variants(cache, coder, metric, STANDARD_VARIANTS, 'official', bins)
    assert counts['matched'] == counts['detections'] > 0  # every peak sits on a GT centre
    assert set(res) == {variant_name(v) for v in STANDARD_VARIANTS}
    keys = [k for k in res['baseline'] if '_AP40_' in k]
    assert 'KITTI/Car_3D_AP40_moderate_strict_0-20m' in keys
    for k in keys:
        assert res['all'][k] >= res['baseline'][k] - 1e-9, k
    # ceiling: the matched ground-truth objects as detections with the same scores
    gt_dets, gt_annos = [], []
    for c in cache:
        anno = read_kitti_file(osp.join(KITTI, 'training', 'label_2', f"{c['sample_id']}.txt"))
        gt_annos.append(anno)
        g = gt_items(anno, coder.class_names, c['meta'], FEAT_HW, 'official', 4)
        from monodle_plugin.evaluation.analysis.oracle import match_detections
        m = match_detections(c['pred'], g)
        keep = np.isin(anno['name'], coder.class_names)
        sel = np.flatnonzero(keep)[m[m >= 0]]
        d = {k: np.asarray(v)[sel] for k, v in anno.items()}
        d['score'] = c['pred']['scores'].numpy()[m >= 0].astype(np.float64)
        gt_dets.append(d)
    _, ceiling = kitti_eval(gt_annos, gt_dets, ['Pedestrian', 'Car', 'Cyclist'],
                            ('bbox', 'bev', '3d'))
    for k in ('KITTI/Car_3D_AP40_moderate_strict', 'KITTI/Car_BEV_AP40_easy_strict',
              'KITTI/Pedestrian_3D_AP40_moderate_strict', 'KITTI/Car_2D_AP40_hard_strict'):
        assert res['all'][k] == pytest.approx(ceiling[k], abs=1e-6), k
    assert res['all']['KITTI/Car_3D_AP40_moderate_strict'] > 50
    assert res['baseline']['KITTI/Car_3D_AP40_moderate_strict'] < 5  # random regressions


def test_replace_items_only_touches_matched_rows():
    coder = MonoDLEBBoxCoder()
    c = _synthetic_cache(coder)[1]
    anno = read_kitti_file(osp.join(KITTI, 'training', 'label_2', f"{c['sample_id']}.txt"))
    g = gt_items(anno, coder.class_names, c['meta'], FEAT_HW, 'official', 4)
    match = np.full(len(c['pred']['labels']), -1)
    match[0] = 0
    out = replace_items(c['pred'], g, match, ('depth', 'size_3d'), c['meta']['cam2img'])
    assert out['depth'][0] == pytest.approx(g['depth'][0])
    torch.testing.assert_close(out['depth'][1:], c['pred']['depth'][1:])
    torch.testing.assert_close(out['offset_3d'], c['pred']['offset_3d'])
    r3, _ = coder.decode([replace_items(c['pred'], g, match, parse_variant('all'),
                                        c['meta']['cam2img'])], [c['meta']], FEAT_HW)
    box = r3[0].bboxes_3d.tensor[0].double().numpy()
    keep = np.flatnonzero(np.isin(anno['name'], coder.class_names))[0]
    expected = np.concatenate([anno['location'][keep], anno['dimensions'][keep],
                               [anno['rotation_y'][keep]]])
    np.testing.assert_allclose(box, expected, atol=1e-4)

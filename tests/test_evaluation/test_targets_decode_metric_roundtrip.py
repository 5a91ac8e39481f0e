"""Dataset -> head targets -> (targets written as network outputs) -> decoding -> KITTI metric.

The head's own training targets of the kitti_mini frames, written into the raw output maps the
way the network would have to predict them, must decode to the labelled boxes and score Car
AP40 in 2D, BEV and 3D equal to that of the labels themselves taken as detections (the ceiling
of 13 frames: with fewer than 40 ground-truth cars KITTI's AP40 cannot reach 100, e.g. 77.5
moderate here, as in the official code). A coordinate-convention mismatch anywhere between the
dataset, the affine warp, the targets, the decoding, the result files and the metric breaks
this (the slow fit test, tests/test_tools/test_fit_kitti_mini.py, checks the same chain with a
trained network).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope

REPO = Path(__file__).resolve().parents[2]
DATA_ROOT = str(REPO / 'demo/kitti_mini/KITTI') + '/'


def _samples(input_size: tuple[int, int]) -> list:
    from mmdet3d.registry import DATASETS

    import monodle_plugin  # noqa: F401
    init_default_scope('mmdet3d')
    pipeline = [dict(type='LoadKittiMonoImage'), dict(type='LoadMonoDLEAnnotations'),
                dict(type='MonoDLEAffineAug', output_size=input_size, random_flip=0.0,
                     random_crop=0.0),
                dict(type='PackMonoDLEInputs')]
    dataset = DATASETS.build(dict(type='MonoDLEKittiDataset', data_root=DATA_ROOT, split='train',
                                  pipeline=pipeline, test_mode=False))
    return [dataset[i]['data_samples'] for i in range(len(dataset))]


def _targets_as_outputs(head, sample, feat_hw: tuple[int, int], rng: np.random.Generator
                        ) -> dict[str, torch.Tensor]:
    """Raw output maps (1, C, h, w) that decode to the head's targets of ``sample``."""
    h, w = feat_hw
    t = head.bbox_coder.encode(sample.gt_instances_3d, sample.gt_instances, sample.metainfo,
                                feat_hw)
    outs = {name: torch.zeros(1, c, h, w) for name, c in head.out_channels.items()}
    outs['heatmap'][:] = -10.0  # sigmoid ~ 0 except at the object centres
    nb = head.bbox_coder.num_heading_bins
    for k in np.nonzero(t['mask_2d'])[0]:
        y, x = divmod(int(t['indices'][k]), w)
        cls = int(np.argmax(t['heatmap'][:, y, x]))
        # distinct scores: with equal scores KITTI's AP has a single threshold (AP < recall)
        outs['heatmap'][0, cls, y, x] = float(rng.uniform(2.0, 8.0))
        outs['offset_2d'][0, :, y, x] = torch.from_numpy(t['offset_2d'][k])
        outs['size_2d'][0, :, y, x] = torch.from_numpy(t['size_2d'][k])
        # decoding: 1 / (sigmoid(x) + 1e-6) - 1 = exp(-x) (up to 1e-6): x = -log(depth)
        outs['depth'][0, 0, y, x] = -math.log(float(t['depth'][k, 0]))
        outs['offset_3d'][0, :, y, x] = torch.from_numpy(t['offset_3d'][k])
        outs['size_3d'][0, :, y, x] = torch.from_numpy(t['size_3d'][k])
        b = int(t['heading_bin'][k, 0])
        outs['heading'][0, b, y, x] = 10.0
        outs['heading'][0, nb + b, y, x] = float(t['heading_res'][k, 0])
    return outs


@pytest.mark.parametrize('decode_mode', ['official', 'affine'])
def test_targets_decode_to_labels_and_full_ap(decode_mode):
    from mmdet3d.registry import MODELS

    from monodle_plugin.evaluation.metrics.kitti_ap40_metric import KittiAP40Metric
    input_size = (640, 192)
    samples = _samples(input_size)
    head = MODELS.build(dict(type='CenterNet3DHead', in_channels=8, feat_channels=8,
                             test_cfg=dict(decode_mode=decode_mode, score_thr=0.5)))
    feat_hw = (input_size[1] // 4, input_size[0] // 4)
    metric = KittiAP40Metric(data_root=DATA_ROOT)
    errors = []
    rng = np.random.default_rng(0)
    for sample in samples:
        outs = _targets_as_outputs(head, sample, feat_hw, rng)
        results_3d, results_2d = head.predict_by_feat(outs, [sample.metainfo])
        pred = results_3d[0]
        metric.process({}, [dict(pred_instances_3d=pred, pred_instances=results_2d[0],
                                 sample_id=sample.metainfo['sample_id'])])
        gt = sample.gt_instances_3d.bboxes_3d.tensor.numpy()
        boxes = pred.bboxes_3d.tensor.numpy()
        for g in gt:
            if boxes.shape[0] and np.min(np.hypot(*(boxes[:, [0, 2]] - g[[0, 2]]).T)) < 1.0:
                j = int(np.argmin(np.hypot(*(boxes[:, [0, 2]] - g[[0, 2]]).T)))
                errors.append(boxes[j] - g)
    errors = np.abs(np.array(errors))
    assert len(errors) >= 20  # the cars that receive targets are decoded back
    tol_xyz = 0.02 if decode_mode == 'affine' else 0.15  # official: raw/feature-size scaling
    assert errors[:, :3].max() < tol_xyz, errors[:, :3].max(0)  # x, y, z metres
    assert errors[:, 3:6].max() < 1e-4  # sizes
    assert errors[:, 6].max() < 0.02  # yaw (rad): alpha + ray angle
    aps = metric.compute_metrics(metric.results)
    ceiling = _labels_as_detections_ap(metric)
    for key in ('Car_2D_AP40_moderate_strict', 'Car_BEV_AP40_moderate_strict',
                'Car_3D_AP40_moderate_strict', 'Car_3D_AP40_easy_strict'):
        value = [v for k, v in aps.items() if k.endswith(key)]
        assert value and value[0] == pytest.approx(ceiling[key], abs=0.5), (key, value, ceiling)
    assert ceiling['Car_3D_AP40_moderate_strict'] > 70.0


def test_batches_of_four_decode_and_score_the_ap_of_single_images():
    """The real configs validate / test 4 images per process: the head's outputs of 4 frames at
    once (the last batch of 1) decode to the same boxes, and the metric fed per batch gives the
    same AP, as one frame at a time."""
    from mmdet3d.registry import MODELS

    from monodle_plugin.evaluation.metrics.kitti_ap40_metric import KittiAP40Metric
    input_size = (640, 192)
    samples = _samples(input_size)
    head = MODELS.build(dict(type='CenterNet3DHead', in_channels=8, feat_channels=8,
                             test_cfg=dict(score_thr=0.5)))
    feat_hw = (input_size[1] // 4, input_size[0] // 4)
    rng = np.random.default_rng(0)
    outs = [_targets_as_outputs(head, sample, feat_hw, rng) for sample in samples]
    boxes, aps = {}, {}
    for batch in (1, 4):
        metric = KittiAP40Metric(data_root=DATA_ROOT)
        boxes[batch] = []
        for i in range(0, len(samples), batch):
            chunk = samples[i:i + batch]
            maps = {k: torch.cat([o[k] for o in outs[i:i + batch]]) for k in outs[0]}
            results_3d, results_2d = head.predict_by_feat(maps, [s.metainfo for s in chunk])
            metric.process({}, [dict(pred_instances_3d=r3, pred_instances=r2,
                                     sample_id=s.metainfo['sample_id'])
                                for r3, r2, s in zip(results_3d, results_2d, chunk)])
            boxes[batch] += [r.bboxes_3d.tensor for r in results_3d]
        aps[batch] = metric.compute_metrics(metric.results)
    assert len(samples) % 4 == 1 and len(boxes[4]) == len(samples)
    for one, four in zip(boxes[1], boxes[4]):
        assert torch.equal(one, four)
    assert aps[4] == aps[1]
    assert [v for k, v in aps[1].items() if k.endswith('Car_3D_AP40_moderate_strict')][0] > 70


def _labels_as_detections_ap(metric) -> dict[str, float]:
    """Car AP40 of the label files scored against themselves (random distinct scores)."""
    from monodle_plugin.evaluation.functional.kitti_eval import (
        compute_kitti_ap,
        kitti_aps_to_dict,
    )
    ids = sorted({r['sample_id'] for r in metric.results})
    gts = metric.load_ground_truth(ids)
    rng = np.random.default_rng(1)
    dts = []
    for gt in gts:
        keep = gt['name'] != 'DontCare'
        dt = {k: np.asarray(v)[keep] for k, v in gt.items()}
        dt['score'] = rng.uniform(0.1, 1.0, int(keep.sum()))
        dts.append(dt)
    aps, _ = compute_kitti_ap(gts, dts, ['Car'], ['bbox', 'bev', '3d'], with_aos=False)
    return {k.split('/')[-1]: v for k, v in kitti_aps_to_dict(aps, ['Car']).items()}

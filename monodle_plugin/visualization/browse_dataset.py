"""Browse the training data as the model sees it (``tools/misc/browse_dataset.py``).

For a sample after the config's training pipeline (augmentation included: flip, crop, affine
warp to the network input, the teacher depth warped with it), :func:`render_training_sample`
draws, one panel under the other at the network-input size:

1. the warped image with the ground-truth 2D boxes, the 3D boxes projected into it and the
   projected 3D centres (dots: ``gt_instances_3d.centers_2d``, where the heatmap peaks go);
   objects of other classes (label -1: Van, DontCare...) in grey;
2. the heatmap targets, one panel per class, as the head's ``get_targets`` encodes them
   (``MonoDLEBBoxCoder.encode``: only writelist classes, depth range and difficulty filters);
3. with ``LoadDA3Depth`` in the pipeline, the teacher depth (0-80 m) and its validity mask.

Drawing reuses :mod:`monodle_kitti.mono3d_drawing` / :mod:`.analysis_drawing` (what ``tools/test.py
--show-dir`` and ``tools/analysis_tools/visualize.py`` draw) rather than mmdet3d's
``Det3DLocalVisualizer``, whose mono task draws neither heatmaps nor a depth map with a fixed
colour range.

3D boxes are projected into the network input with :func:`warped_cam2img` (the affine warp
folded into P2), which equals projecting in the raw image and warping the points.
"""
from __future__ import annotations

import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np

from monodle_kitti.classes import MONODLE_CLASSES
from monodle_kitti.mono3d_drawing import CLASS_COLORS, UNKNOWN_COLOR, draw_projected_boxes

from .analysis_drawing import _title, draw_2d_boxes, draw_heatmaps, draw_teacher


def warped_cam2img(meta: dict) -> np.ndarray:
    """(4, 4) P2 of the network input, for projections that divide by the point's depth.

    ``meta['cam2img']`` is the P2 of the raw image as the pipeline left it (mirrored when
    ``flip``); ``meta['affine_mat']`` maps raw pixels to input pixels and includes the mirror,
    which ``cam2img`` already holds, so it is taken out again. With ``A`` that map
    (``u' = A[0, 0] u + A[0, 1] v + A[0, 2]``) and ``u = P[0] X / z``, the rows
    ``A[i, 0] P[0] + A[i, 1] P[1] + A[i, 2] (0, 0, 1, 0)`` give ``u'``, ``v'`` exactly (the
    translation goes with ``z``, not with P2's third row, whose ``P2[2, 3]`` would add
    ``A[i, 2] P2[2, 3] / z`` pixels).
    """
    affine = np.asarray(meta['affine_mat'], dtype=np.float64)
    if meta.get('flip', False):
        width = float(meta['ori_shape'][1])
        flip = np.array([[-1.0, 0.0, width], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        affine = affine @ flip  # the mirror is its own inverse
    p = np.asarray(meta['cam2img'], dtype=np.float64).reshape(4, 4)
    ez = np.array([0.0, 0.0, 1.0, 0.0])
    out = p.copy()
    for i in range(2):
        out[i] = affine[i, 0] * p[0] + affine[i, 1] * p[1] + affine[i, 2] * ez
    return out


def feature_size(img_hw: Sequence[int], pad_size_divisor: int, down_ratio: int) -> tuple:
    """(h, w) of the head's maps for an input of ``img_hw``: padded by the data preprocessor
    to a multiple of ``pad_size_divisor``, then divided by the head's ``down_ratio``."""
    div = max(int(pad_size_divisor or 1), 1)
    return tuple(int(np.ceil(s / div) * div) // down_ratio for s in img_hw)


def render_training_sample(item: dict, head, pad_size_divisor: int = 32,
                           classes: Sequence[str] = MONODLE_CLASSES) -> Dict[str, np.ndarray]:
    """Panels of one training sample (see the module docstring).

    Args:
        item: ``dataset[i]`` after the training pipeline: ``inputs['img']`` (3, H, W) uint8 BGR,
            ``data_samples`` a ``Det3DDataSample`` with ``gt_instances_3d``, ``gt_instances``
            and optionally ``gt_depth``.
        head: the config's ``CenterNet3DHead`` (its ``get_targets`` makes the heatmaps).
        pad_size_divisor: the data preprocessor's padding (feature-map size).
        classes: label names (heatmap panel titles).

    Returns:
        ``{'boxes': (H, W, 3), 'heatmap': (C H, W, 3), 'teacher': (2 H, W, 3) or absent,
        'heatmap_targets': (C, h, w) float32}``, BGR uint8 images.
    """
    img = item['inputs']['img']
    img = np.ascontiguousarray(img.permute(1, 2, 0).numpy() if hasattr(img, 'permute')
                               else np.transpose(img, (1, 2, 0))).astype(np.uint8)
    sample = item['data_samples']
    meta = sample.metainfo
    gt3d, gt2d = sample.gt_instances_3d, sample.gt_instances
    labels = gt3d.labels_3d.numpy() if 'labels_3d' in gt3d else np.zeros(0, np.int64)
    boxes = gt3d.bboxes_3d.tensor.numpy() if 'bboxes_3d' in gt3d else np.zeros((0, 7))
    canvas = draw_2d_boxes(img, gt2d.bboxes.numpy() if 'bboxes' in gt2d else np.zeros((0, 4)),
                           labels)
    canvas = draw_projected_boxes(canvas, boxes, warped_cam2img(meta), labels, thickness=1)
    centers = gt3d.centers_2d.numpy() if 'centers_2d' in gt3d else np.zeros((0, 2))
    for (u, v), lab in zip(centers, labels):
        if np.isfinite([u, v]).all() and abs(u) < 1e5 and abs(v) < 1e5:
            color = CLASS_COLORS[lab] if 0 <= lab < len(CLASS_COLORS) else UNKNOWN_COLOR
            cv2.circle(canvas, (int(round(u)), int(round(v))), 3, color, -1, cv2.LINE_AA)
    crop = f", crop x{meta.get('crop_scale', 1.0):.2f}" if meta.get('random_crop') else ''
    flip = ', flipped' if meta.get('flip') else ''
    out = {'boxes': _title(canvas, f"{meta.get('sample_id', '')}: input {img.shape[1]}x"
                                   f'{img.shape[0]}{flip}{crop}, {len(labels)} objects')}

    feat_hw = feature_size(img.shape[:2], pad_size_divisor, head.bbox_coder.down_ratio)
    targets = head.get_targets([gt3d], [gt2d], [meta], feat_hw)
    heatmap = targets['heatmap'][0].numpy()
    out['heatmap_targets'] = heatmap
    out['heatmap'] = draw_heatmaps(img, heatmap, classes)
    if 'gt_depth' in sample:
        depth = sample.gt_depth.depth.numpy()[0]
        valid = sample.gt_depth.valid.numpy()[0]
        out['teacher'] = draw_teacher(img, depth, valid)
    return out


def build_browse_objects(cfg, split: Optional[str] = None):
    """``(dataset, head, pad_size_divisor)`` of a config's training data and head.

    The distillation switches are applied first (as ``MonoDLERunner`` does), so the pipeline
    is the one training runs. ``split`` overrides ``train_dataloader.dataset.split``.
    """
    from mmdet3d.registry import DATASETS, MODELS
    from mmengine.registry import init_default_scope

    from ..datasets.transforms.encode_monodle_targets import fill_target_coders
    from ..utils.distill_switches import apply_distill_switches
    apply_distill_switches(cfg)
    fill_target_coders(cfg)  # EncodeMonoDLETargets with the head's coder, as in training
    init_default_scope(cfg.get('default_scope', 'mmdet3d'))
    data_cfg = cfg.train_dataloader.dataset
    if split is not None:
        data_cfg.split = split
    dataset = DATASETS.build(data_cfg)
    head = MODELS.build(cfg.model.bbox_head)
    pad = cfg.model.get('data_preprocessor', {}).get('pad_size_divisor', 1)
    return dataset, head, pad


def browse_dataset(cfg, out_dir: str, num_samples: int = 10,
                   sample_ids: Optional[Sequence[str]] = None, seed: int = 0,
                   split: Optional[str] = None) -> List[str]:
    """Write one PNG per sample: ``<out_dir>/<index>_<sample id>.png``, the panels stacked.

    Args:
        cfg: an mmengine ``Config`` (changed in place: the distillation switches).
        out_dir: folder for the PNGs (created).
        num_samples: the first N frames of the split (ignored with ``sample_ids``).
        sample_ids: 6-digit ids to draw instead.
        seed: seed of the augmentation draws (``numpy``, ``random``, ``torch``).
        split: dataset split (default: the config's training split).

    Returns:
        the written paths.

    Raises:
        KeyError: an id of ``sample_ids`` is not in the split. ValueError: ``num_samples`` < 1.
    """
    from mmengine.runner import set_random_seed
    dataset, head, pad = build_browse_objects(cfg, split)
    ids = [dataset.get_data_info(i)['sample_id'] for i in range(len(dataset))]
    if sample_ids:
        missing = [s for s in sample_ids if s not in ids]
        if missing:
            raise KeyError(f'ids {missing} are not in the dataset of the config '
                           f'({len(ids)} frames, split {dataset.split!r})')
        indices = [ids.index(s) for s in sample_ids]
    else:
        if num_samples < 1:
            raise ValueError(f'--num-samples must be >= 1, got {num_samples}')
        indices = list(range(min(num_samples, len(ids))))
    set_random_seed(seed)
    os.makedirs(out_dir, exist_ok=True)
    classes = tuple(dataset.metainfo['classes'])
    paths = []
    for k in indices:
        panels = render_training_sample(dataset[k], head, pad, classes)
        stack = [panels['boxes'], panels['heatmap']] + (
            [panels['teacher']] if 'teacher' in panels else [])
        path = osp.join(out_dir, f'{k:04d}_{ids[k]}.png')
        cv2.imwrite(path, np.concatenate(stack, 0))
        paths.append(path)
    return paths


__all__ = ['browse_dataset', 'build_browse_objects', 'feature_size', 'render_training_sample',
           'warped_cam2img']

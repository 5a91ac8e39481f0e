"""KITTI 2D / BEV / 3D / AOS average precision (AP40 and AP11) on the CPU.

A drop-in for mmdet3d's ``kitti_eval`` (``mmdet3d/evaluation/functional/kitti_utils/eval.py``)
that needs no GPU: mmdet3d computes BEV and 3D IoU with ``numba.cuda`` and raises
``CudaSupportError`` on CPU-only machines. Same inputs, same keys, same numbers (up to float
rounding of the IoU, which mmdet3d computes in float32), plus AOS in the returned dict.

AP40: mean precision at the 40 recall positions 1/40 .. 1 (Simonelli et al., the official
KITTI metric since 2019). AP11: mean at the 11 positions 0, 0.1 .. 1 (the original metric).
Both in percent.

As in the devkit, the i-th true positive (by score) fills the i-th of the 41 sampling
positions, so with fewer than 41 counted objects of a class / difficulty even perfect
detections stay below 100 (n objects: AP40 = (n - 1) / 40). Evaluate small demo sets with
this in mind.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .box_overlaps import METRIC_3D, METRIC_BBOX, METRIC_BEV, frame_overlaps
from .kitti_matching import (
    NUM_SAMPLE_PTS,
    counts_at_thresholds,
    ignore_flags,
    recall_thresholds,
    true_positive_scores,
)

# KITTI benchmark definition (devkit evaluate_object.cpp): easy, moderate, hard.
DIFFICULTIES = ('easy', 'moderate', 'hard')
MIN_HEIGHT = (40.0, 25.0, 25.0)  # pixels; ground truth must be taller, detections not shorter
MAX_OCCLUSION = (0, 1, 2)
MAX_TRUNCATION = (0.15, 0.3, 0.5)
DONT_CARE = 'DontCare'
NO_ALPHA = -10.0  # alpha value meaning "no orientation estimate"

# The classes KITTI evaluates, in mmdet3d's order (Car, Pedestrian, Cyclist = 0, 1, 2).
# Per class: the neighbouring class whose ground truth is ignored (neither TP nor FN), and the
# minimum IoU for (2D, BEV, 3D): 'strict' is the official set, 'loose' the relaxed one.
KITTI_EVAL_CLASSES: Dict[str, dict] = {
    'Car': dict(neighbour='Van', strict=(0.7, 0.7, 0.7), loose=(0.7, 0.5, 0.5)),
    'Pedestrian': dict(neighbour='Person_sitting', strict=(0.5, 0.5, 0.5),
                       loose=(0.5, 0.25, 0.25)),
    'Cyclist': dict(neighbour=None, strict=(0.5, 0.5, 0.5), loose=(0.5, 0.25, 0.25)),
}
OVERLAP_SETS = ('strict', 'loose')
EVAL_TYPES = ('bbox', 'bev', '3d', 'aos')
_METRIC_OF_TYPE = {'bbox': METRIC_BBOX, 'bev': METRIC_BEV, '3d': METRIC_3D}
_KEY_OF_TYPE = {'bbox': '2D', 'bev': 'BEV', '3d': '3D', 'aos': 'AOS'}
_AP11_POINTS = range(0, NUM_SAMPLE_PTS, 4)
_AP40_POINTS = range(1, NUM_SAMPLE_PTS)


def _flatten(annos: Sequence[dict], with_score: bool) -> dict:
    """Concatenate per-frame annotation dicts into flat arrays with frame offsets."""
    counts = np.array([len(a['name']) for a in annos], dtype=np.int64)
    off = np.zeros(len(annos) + 1, dtype=np.int64)
    np.cumsum(counts, out=off[1:])
    total = int(off[-1])

    def cat(key, width):
        parts = [np.asarray(a[key], dtype=np.float64).reshape(-1, width) for a in annos]
        out = np.concatenate(parts, 0) if parts else np.zeros((0, width))
        return np.ascontiguousarray(out.reshape(total, width))

    names = (np.concatenate([np.asarray(a['name']).astype(str) for a in annos])
             if total else np.zeros(0, dtype=str))
    box3d = np.concatenate([cat('location', 3), cat('dimensions', 3), cat('rotation_y', 1)], 1)
    flat = dict(off=off, names=names, box2d=cat('bbox', 4), box3d=np.ascontiguousarray(box3d),
                alpha=np.ascontiguousarray(cat('alpha', 1)[:, 0]))
    if with_score:
        flat['score'] = np.ascontiguousarray(cat('score', 1)[:, 0])
    else:
        flat['occluded'] = np.ascontiguousarray(cat('occluded', 1)[:, 0].astype(np.int64))
        flat['truncated'] = np.ascontiguousarray(cat('truncated', 1)[:, 0])
    return flat


def _precision_from_counts(counts: np.ndarray, num_thr: np.ndarray,
                           column: int) -> np.ndarray:
    """Interpolated precision (or orientation similarity) (M, 3, K, 41) from counts.

    Same arithmetic as the devkit / mmdet3d: value / (tp + fp) at each recall threshold, then
    the maximum over all higher recall thresholds; positions without a threshold stay 0.
    """
    out = np.zeros(counts.shape[:-1])
    tp = counts[..., 0]
    fp = counts[..., 1]
    with np.errstate(divide='ignore', invalid='ignore'):
        ratio = counts[..., column] / (tp + fp)
    for idx in np.ndindex(*num_thr.shape):
        nt = int(num_thr[idx])
        if nt:
            out[idx][:nt] = np.maximum.accumulate(ratio[idx][:nt][::-1])[::-1]
    return out


def _mean_ap(prec: np.ndarray, points: range) -> np.ndarray:
    sums = 0
    for i in points:
        sums = sums + prec[..., i]
    return sums / len(points) * 100


def _check_classes(current_classes) -> List[str]:
    if isinstance(current_classes, (str, int)):
        current_classes = [current_classes]
    names = list(KITTI_EVAL_CLASSES)
    out = []
    for c in current_classes:
        if isinstance(c, (int, np.integer)):  # mmdet3d numbering: 0 Car, 1 Pedestrian, 2 Cyclist
            if not 0 <= c < len(names):
                raise ValueError(f'class index {c} not in 0..{len(names) - 1} ({names})')
            c = names[c]
        if c not in KITTI_EVAL_CLASSES:
            raise ValueError(f'class "{c}" cannot be evaluated; KITTI classes: {names}')
        out.append(c)
    if not out:
        raise ValueError('no class to evaluate')
    return out


def compute_kitti_ap(gt_annos: Sequence[dict], dt_annos: Sequence[dict],
                     current_classes: Sequence[str],
                     eval_types: Sequence[str] = ('bbox', 'bev', '3d'),
                     with_aos: bool = True) -> Tuple[Dict[str, np.ndarray], bool]:
    """AP arrays for every requested overlap type.

    Args:
        gt_annos, dt_annos: per-frame annotation dicts (``datasets.kitti_io`` layout), same length
            and order.
        current_classes: class names from ``KITTI_EVAL_CLASSES``.
        eval_types: subset of ('bbox', 'bev', '3d'); AOS is added when both ground truth
            and detections carry alphas (as mmdet3d decides it).
        with_aos: False skips AOS even when alphas are present.

    Returns:
        ``{'AP11_3D': (M, 3, 2), 'AP40_3D': ..., 'AP40_AOS': ...}`` (class, difficulty,
        strict/loose) in percent, and whether AOS was computed.
    """
    if len(gt_annos) != len(dt_annos):
        raise ValueError(f'{len(gt_annos)} ground-truth frames but {len(dt_annos)} '
                         'detection frames')
    for t in eval_types:
        if t not in EVAL_TYPES:
            raise ValueError(f'unknown eval type "{t}"; choose from {EVAL_TYPES}')
    current_classes = _check_classes(current_classes)
    gt = _flatten(gt_annos, with_score=False)
    dt = _flatten(dt_annos, with_score=True)

    # mmdet3d's rule: AOS when any detection has alpha != -10 and the first object of some
    # ground-truth frame has alpha != -10.
    pred_alpha = bool((dt['alpha'] != NO_ALPHA).any())
    gt_alpha = any(len(a['alpha']) and a['alpha'][0] != NO_ALPHA for a in gt_annos)
    compute_aos = with_aos and 'bbox' in eval_types and pred_alpha and gt_alpha

    lower_names = np.concatenate([np.char.lower(gt['names']), np.char.lower(dt['names'])])
    vocab, codes = np.unique(lower_names, return_inverse=True)
    codes = codes.astype(np.int64)
    gt_cls = np.ascontiguousarray(codes[:len(gt['names'])])
    dt_cls = np.ascontiguousarray(codes[len(gt['names']):])
    code_of = {n: i for i, n in enumerate(vocab)}

    def code(name: Optional[str]) -> int:
        # -1: name absent from all files, -2: no neighbour class; neither matches any object
        return code_of.get(name.lower(), -1) if name else -2

    class_codes = np.array([code(c) for c in current_classes], dtype=np.int64)
    neighbour_codes = np.array([code(KITTI_EVAL_CLASSES[c]['neighbour']) for c in current_classes],
                               dtype=np.int64)

    is_dc = gt['names'] == DONT_CARE
    dc_cum = np.concatenate([[0], np.cumsum(is_dc)])
    dc_counts = dc_cum[gt['off'][1:]] - dc_cum[gt['off'][:-1]]
    dc_off = np.zeros(len(gt_annos) + 1, dtype=np.int64)
    np.cumsum(dc_counts, out=dc_off[1:])
    dc_box = np.ascontiguousarray(gt['box2d'][is_dc])

    results: Dict[str, np.ndarray] = {}
    types = [t for t in eval_types if t != 'aos']
    overlaps = {}
    for t in types:
        metric = _METRIC_OF_TYPE[t]
        overlaps[t] = frame_overlaps(metric, dt['box2d'], gt['box2d'], dt['box3d'], gt['box3d'],
                                     dt['off'], gt['off'])
    num_class, num_diff, num_sets = len(current_classes), len(DIFFICULTIES), len(OVERLAP_SETS)
    counts = {t: np.zeros((num_class, num_diff, num_sets, NUM_SAMPLE_PTS, 4)) for t in types}
    num_thr = {t: np.zeros((num_class, num_diff, num_sets), dtype=np.int64) for t in types}
    for m, cls in enumerate(current_classes):
        for d in range(num_diff):
            ignored_gt, ignored_dt, num_valid_gt, active = ignore_flags(
                gt['off'], dt['off'], gt['box2d'], gt_cls, gt['occluded'], gt['truncated'],
                dt['box2d'], dt_cls, class_codes[m], neighbour_codes[m], MIN_HEIGHT[d],
                MAX_OCCLUSION[d], MAX_TRUNCATION[d])
            for t in types:
                metric = _METRIC_OF_TYPE[t]
                ov, ov_off = overlaps[t]
                for k, set_name in enumerate(OVERLAP_SETS):
                    min_overlap = KITTI_EVAL_CLASSES[cls][set_name][metric]
                    scores = true_positive_scores(ov, ov_off, gt['off'], dt['off'], dt['score'],
                                                  ignored_gt, ignored_dt, active, min_overlap)
                    thresholds = recall_thresholds(np.ascontiguousarray(np.sort(scores)[::-1]),
                                                   num_valid_gt, NUM_SAMPLE_PTS)
                    nt = len(thresholds)
                    if nt > NUM_SAMPLE_PTS:
                        raise ValueError(f'{nt} recall thresholds for {cls}: more than '
                                         f'{NUM_SAMPLE_PTS} sampling points')
                    num_thr[t][m, d, k] = nt
                    counts[t][m, d, k, :nt] = counts_at_thresholds(
                        metric, ov, ov_off, gt['off'], dt['off'], dc_off, gt['alpha'],
                        dt['box2d'], dt['alpha'], dt['score'], dc_box, ignored_gt, ignored_dt,
                        active, min_overlap, thresholds, compute_aos and metric == METRIC_BBOX)
    for t in types:
        aos_here = compute_aos and _METRIC_OF_TYPE[t] == METRIC_BBOX
        counts_t, num_thr_t = counts[t], num_thr[t]
        prec = _precision_from_counts(counts_t, num_thr_t, 0)
        key = _KEY_OF_TYPE[t]
        results[f'AP11_{key}'] = _mean_ap(prec, _AP11_POINTS)
        results[f'AP40_{key}'] = _mean_ap(prec, _AP40_POINTS)
        if aos_here:
            orient = _precision_from_counts(counts_t, num_thr_t, 3)
            results['AP11_AOS'] = _mean_ap(orient, _AP11_POINTS)
            results['AP40_AOS'] = _mean_ap(orient, _AP40_POINTS)
    return results, 'AP40_AOS' in results


def format_kitti_table(aps: Dict[str, np.ndarray], current_classes: Sequence[str]) -> str:
    """Text table: class x IoU set x metric rows, easy / moderate / hard columns (percent)."""
    kinds = [k for k in ('2D', 'BEV', '3D', 'AOS') if f'AP40_{k}' in aps]
    head = (f"{'Class':<12}{'IoU set':<9}{'IoU 2D/BEV/3D':<16}{'Metric':<7}{'AP':<6}"
            f"{'Easy':>10}{'Moderate':>10}{'Hard':>10}")
    lines = ['KITTI evaluation, AP in percent: AP40 = 40 recall positions (official since '
             '2019), AP11 = 11 recall positions', head, '-' * len(head)]
    for ap_name in ('AP40', 'AP11'):
        for j, cls in enumerate(current_classes):
            for s, set_name in enumerate(OVERLAP_SETS):
                ious = '/'.join(f'{v:.2f}' for v in KITTI_EVAL_CLASSES[cls][set_name])
                for kind in kinds:
                    v = aps[f'{ap_name}_{kind}'][j, :, s]
                    lines.append(f'{cls:<12}{set_name:<9}{ious:<16}{kind:<7}{ap_name:<6}'
                                 f'{v[0]:>10.4f}{v[1]:>10.4f}{v[2]:>10.4f}')
        if len(current_classes) > 1:
            for kind in kinds:
                v = aps[f'{ap_name}_{kind}'][:, :, 0].mean(0)
                lines.append(f"{'Overall':<12}{'strict':<9}{'(class mean)':<16}{kind:<7}"
                             f'{ap_name:<6}{v[0]:>10.4f}{v[1]:>10.4f}{v[2]:>10.4f}')
        lines.append('-' * len(head))
    return '\n'.join(lines)


def kitti_aps_to_dict(aps: Dict[str, np.ndarray],
                      current_classes: Sequence[str]) -> Dict[str, float]:
    """Flat dict with mmdet3d's ``kitti_eval`` keys (and AOS under the same pattern)."""
    out: Dict[str, float] = {}
    kinds = [k for k in ('3D', 'BEV', '2D', 'AOS') if f'AP40_{k}' in aps]
    for ap_name in ('AP11', 'AP40'):
        for j, cls in enumerate(current_classes):
            for s, set_name in enumerate(OVERLAP_SETS):
                for d, diff in enumerate(DIFFICULTIES):
                    for kind in kinds:
                        out[f'KITTI/{cls}_{kind}_{ap_name}_{diff}_{set_name}'] = float(
                            aps[f'{ap_name}_{kind}'][j, d, s])
        if len(current_classes) > 1:
            for d, diff in enumerate(DIFFICULTIES):
                for kind in kinds:
                    out[f'KITTI/Overall_{kind}_{ap_name}_{diff}'] = float(
                        aps[f'{ap_name}_{kind}'][:, d, 0].mean())
    return out


def kitti_eval(gt_annos: Sequence[dict], dt_annos: Sequence[dict],
               current_classes: Optional[Sequence[str]] = None,
               eval_types: Sequence[str] = ('bbox', 'bev', '3d')
               ) -> Tuple[str, Dict[str, float]]:
    """KITTI evaluation, same contract as mmdet3d's ``kitti_eval``, on the CPU.

    Args:
        gt_annos: per-frame ground truth (``datasets.kitti_io`` layout: ``name``, ``truncated``,
            ``occluded``, ``alpha``, ``bbox`` (N, 4) pixels, ``dimensions`` (N, 3) l, h, w
            metres, ``location`` (N, 3) bottom centre, camera frame, ``rotation_y``), all label
            lines including DontCare.
        dt_annos: per-frame detections, same layout plus ``score``; same order as gt_annos.
        current_classes: names ('Car', 'Pedestrian', 'Cyclist') or mmdet3d indices (0, 1, 2);
            None: all of :data:`KITTI_EVAL_CLASSES` in mmdet3d's order.
        eval_types: subset of ('bbox', 'bev', '3d'); AOS follows automatically from 'bbox'
            when alphas are present (pass 'aos' explicitly or not: same result).

    Returns:
        The printable table and ``{'KITTI/Car_3D_AP40_moderate_strict': 12.3, ...}``.
    """
    classes = _check_classes(list(KITTI_EVAL_CLASSES) if current_classes is None
                             else current_classes)
    types = [t for t in eval_types if t != 'aos']
    if not types:
        raise ValueError('eval_types must contain at least one of bbox, bev, 3d')
    aps, _ = compute_kitti_ap(gt_annos, dt_annos, classes, types)
    return format_kitti_table(aps, classes), kitti_aps_to_dict(aps, classes)

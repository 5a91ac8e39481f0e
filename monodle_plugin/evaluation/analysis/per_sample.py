"""Per-image precision / recall / F1 with the KITTI devkit's matching, and a comparison of two
result folders (the seed's ``tools/per_sample_eval.py``, any class / difficulty / overlap).

Counts are the devkit's ``computeStatistics`` with ``compute_fp=true`` at one score threshold
(``kitti_matching.counts_at_thresholds``), frame by frame: a counted ground truth without a
detection above the IoU threshold is a false negative, an unmatched counted detection a false
positive; ignored objects (other difficulty, neighbour class, too small) count for neither.
"""
from typing import Dict, List, Sequence

import numpy as np

from ..functional.box_overlaps import METRIC_3D, METRIC_BBOX, METRIC_BEV, frame_overlaps
from ..functional.kitti_eval import (
    DIFFICULTIES,
    DONT_CARE,
    KITTI_EVAL_CLASSES,
    MAX_OCCLUSION,
    MAX_TRUNCATION,
    MIN_HEIGHT,
    OVERLAP_SETS,
    _flatten,
)
from ..functional.kitti_matching import counts_at_thresholds, ignore_flags

METRICS = {'bbox': METRIC_BBOX, 'bev': METRIC_BEV, '3d': METRIC_3D}


def per_sample_counts(gt_annos: Sequence[dict], dt_annos: Sequence[dict], cls: str = 'Car',
                      difficulty: str = 'moderate', metric: str = '3d',
                      overlap_set: str = 'strict', score_thr: float = 0.0) -> np.ndarray:
    """(F, 3) int array: true positives, false positives, false negatives of each frame.

    Args:
        gt_annos, dt_annos: per-frame annotations (``kitti_io`` layout), same order.
        cls: 'Car', 'Pedestrian' or 'Cyclist'.
        difficulty: 'easy', 'moderate' or 'hard' (KITTI's limits on height, occlusion,
            truncation).
        metric: 'bbox' (2D), 'bev' or '3d' overlap.
        overlap_set: 'strict' (Car 0.7) or 'loose' (Car 0.5) IoU thresholds.
        score_thr: detections with a lower score are dropped.
    """
    if cls not in KITTI_EVAL_CLASSES:
        raise ValueError(f'class {cls!r}: choose from {list(KITTI_EVAL_CLASSES)}')
    if difficulty not in DIFFICULTIES:
        raise ValueError(f'difficulty {difficulty!r}: choose from {DIFFICULTIES}')
    if metric not in METRICS:
        raise ValueError(f'metric {metric!r}: choose from {list(METRICS)}')
    if overlap_set not in OVERLAP_SETS:
        raise ValueError(f'overlap set {overlap_set!r}: choose from {OVERLAP_SETS}')
    if len(gt_annos) != len(dt_annos):
        raise ValueError(f'{len(gt_annos)} ground-truth frames but {len(dt_annos)} '
                         'detection frames')
    gt = _flatten(gt_annos, with_score=False)
    dt = _flatten(dt_annos, with_score=True)
    names = np.concatenate([np.char.lower(gt['names']), np.char.lower(dt['names'])])
    vocab, codes = np.unique(names, return_inverse=True)
    codes = codes.astype(np.int64)
    code_of = {n: i for i, n in enumerate(vocab)}
    neighbour = KITTI_EVAL_CLASSES[cls]['neighbour']
    code = code_of.get(cls.lower(), -1)
    ncode = code_of.get(neighbour.lower(), -1) if neighbour else -2
    d = DIFFICULTIES.index(difficulty)
    ignored_gt, ignored_dt, _, active = ignore_flags(
        gt['off'], dt['off'], gt['box2d'], np.ascontiguousarray(codes[:len(gt['names'])]),
        gt['occluded'], gt['truncated'], dt['box2d'],
        np.ascontiguousarray(codes[len(gt['names']):]), code, ncode, MIN_HEIGHT[d],
        MAX_OCCLUSION[d], MAX_TRUNCATION[d])
    m = METRICS[metric]
    ov, ov_off = frame_overlaps(m, dt['box2d'], gt['box2d'], dt['box3d'], gt['box3d'],
                                dt['off'], gt['off'])
    min_overlap = KITTI_EVAL_CLASSES[cls][overlap_set][m]
    thr = np.array([score_thr], dtype=np.float64)
    out = np.zeros((len(gt_annos), 3), dtype=np.int64)
    for f in range(len(gt_annos)):
        if not active[f]:
            continue
        g0, g1, d0, d1 = gt['off'][f], gt['off'][f + 1], dt['off'][f], dt['off'][f + 1]
        dc = np.ascontiguousarray(gt['box2d'][g0:g1][gt['names'][g0:g1] == DONT_CARE])
        counts = counts_at_thresholds(
            m, ov[ov_off[f]:ov_off[f + 1]], np.array([0, ov_off[f + 1] - ov_off[f]]),
            np.array([0, g1 - g0]), np.array([0, d1 - d0]), np.array([0, len(dc)]),
            gt['alpha'][g0:g1], dt['box2d'][d0:d1], dt['alpha'][d0:d1], dt['score'][d0:d1],
            dc.reshape(-1, 4), ignored_gt[g0:g1], ignored_dt[d0:d1], np.ones(1, np.bool_),
            min_overlap, thr, False)
        out[f] = counts[0, :3]
    return out


def precision_recall_f1(counts: np.ndarray) -> Dict[str, np.ndarray]:
    """Per-frame ``precision``, ``recall``, ``f1`` from (F, 3) tp, fp, fn counts.

    NaN where undefined: precision without detections, recall without ground truth, F1 when
    the frame has neither (``2 tp / (2 tp + fp + fn)`` otherwise, as the seed's score).
    """
    tp, fp, fn = (counts[:, i].astype(np.float64) for i in range(3))
    with np.errstate(divide='ignore', invalid='ignore'):
        precision = np.where(tp + fp > 0, tp / (tp + fp), np.nan)
        recall = np.where(tp + fn > 0, tp / (tp + fn), np.nan)
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan)
    return dict(precision=precision, recall=recall, f1=f1)


def per_sample_table(ids: Sequence[str], counts: np.ndarray) -> List[dict]:
    """Rows ``{sample_id, tp, fp, fn, precision, recall, f1}`` (NaN as ``None``)."""
    prf = precision_recall_f1(counts)
    rows = []
    for i, sid in enumerate(ids):
        row = dict(sample_id=sid, tp=int(counts[i, 0]), fp=int(counts[i, 1]),
                   fn=int(counts[i, 2]))
        for k, v in prf.items():
            row[k] = None if np.isnan(v[i]) else float(v[i])
        rows.append(row)
    return rows


def compare_per_sample(ids: Sequence[str], counts_a: np.ndarray, counts_b: np.ndarray,
                       min_gap: float = 0.0) -> Dict[str, List[dict]]:
    """Images where one result folder's F1 beats the other's by more than ``min_gap``.

    Returns:
        ``{'a_wins': [...], 'b_wins': [...], 'ties': n}``: rows ``{sample_id, f1_a, f1_b,
        gap}`` (gap = f1_b - f1_a) sorted by the size of the gap, largest first. A frame
        where F1 is undefined for both (nothing to find, nothing found) is a tie.
    """
    fa = np.nan_to_num(precision_recall_f1(counts_a)['f1'], nan=-1.0)
    fb = np.nan_to_num(precision_recall_f1(counts_b)['f1'], nan=-1.0)
    a_wins, b_wins, ties = [], [], 0
    for i, sid in enumerate(ids):
        if fa[i] < 0 and fb[i] < 0:
            ties += 1
            continue
        a, b = max(fa[i], 0.0), max(fb[i], 0.0)
        row = dict(sample_id=sid, f1_a=a, f1_b=b, gap=b - a)
        if b - a > min_gap:
            b_wins.append(row)
        elif a - b > min_gap:
            a_wins.append(row)
        else:
            ties += 1
    a_wins.sort(key=lambda r: r['gap'])
    b_wins.sort(key=lambda r: -r['gap'])
    return dict(a_wins=a_wins, b_wins=b_wins, ties=ties)

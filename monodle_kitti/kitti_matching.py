"""KITTI detection matching and precision/recall accumulation (numba ``@njit``, CPU only).

This is the logic of the official KITTI devkit (``evaluate_object.cpp``), as ported by
mmdet3d (``kitti_utils/eval.py``: ``clean_data``, ``compute_statistics_jit``,
``get_thresholds``, ``fused_compute_statistics``), reorganised over flat arrays with frame
offsets: one compiled call per pass over all frames instead of one per frame.
The decisions (tie-breaking, which detections may match ignored ground truth, DontCare
suppression of 2D false positives, the minimum-height rule for detections) are the devkit's,
bug-for-bug, so the numbers equal mmdet3d's ``kitti_eval``.

Ignore codes, per (class, difficulty):
    ground truth:  0 counted, 1 ignored (neighbour class or too hard), -1 other class
    detection:     0 counted, 1 ignored (2D height below the difficulty's minimum), -1 other class
"""
import math

import numba
import numpy as np

NUM_SAMPLE_PTS = 41  # recall sampling points of the devkit (AP40 uses 1..40, AP11 0, 4, .., 40)
_NO_DETECTION = -10000000.0


@numba.njit(cache=True, error_model='numpy')
def recall_thresholds(scores_desc: np.ndarray, num_gt: int, num_sample_pts: int) -> np.ndarray:
    """Score thresholds at (about) equally spaced recall positions, as the devkit picks them.

    Args:
        scores_desc: (T,) scores of the true positives at threshold 0, sorted descending.
        num_gt: number of counted ground truths.
        num_sample_pts: recall sampling points (41).
    """
    n = scores_desc.shape[0]
    out = np.empty(n, dtype=np.float64)
    m = 0
    current_recall = 0.0
    for i in range(n):
        l_recall = (i + 1) / num_gt
        if i < n - 1:
            r_recall = (i + 2) / num_gt
        else:
            r_recall = l_recall
        if ((r_recall - current_recall) < (current_recall - l_recall)) and (i < n - 1):
            continue
        out[m] = scores_desc[i]
        m += 1
        current_recall += 1 / (num_sample_pts - 1.0)
    return out[:m]


@numba.njit(cache=True, error_model='numpy')
def _frame_tp_scores(ov: np.ndarray, ng: int, dt_score: np.ndarray, ignored_gt: np.ndarray,
                     ignored_dt: np.ndarray, min_overlap: float, assigned: np.ndarray,
                     tp_scores: np.ndarray) -> int:
    """Scores of the true positives of one frame without a score threshold.

    Devkit ``computeStatistics`` with ``compute_fp=false``: each counted or ignored ground
    truth takes the highest-scoring free detection above ``min_overlap``. ``ov`` is the flat
    row-major (num_dt, ng) overlap block; ``assigned`` (>= num_dt) is scratch, ``tp_scores``
    (>= ng) receives the scores. Returns their number.
    """
    nd = dt_score.shape[0]
    for j in range(nd):
        assigned[j] = False
    n_tp = 0
    for i in range(ng):
        if ignored_gt[i] == -1:
            continue
        det_idx = -1
        valid_detection = _NO_DETECTION
        for j in range(nd):
            if ignored_dt[j] == -1 or assigned[j]:
                continue
            if ov[j * ng + i] > min_overlap and dt_score[j] > valid_detection:
                det_idx = j
                valid_detection = dt_score[j]
        if det_idx == -1:
            continue
        assigned[det_idx] = True
        if ignored_gt[i] == 0 and ignored_dt[det_idx] == 0:
            tp_scores[n_tp] = dt_score[det_idx]
            n_tp += 1
    return n_tp


@numba.njit(cache=True, error_model='numpy')
def _frame_counts(ov: np.ndarray, ng: int, gt_alpha: np.ndarray, dt_box2d: np.ndarray,
                  dt_alpha: np.ndarray, dt_score: np.ndarray, ignored_gt: np.ndarray,
                  ignored_dt: np.ndarray, dc_box: np.ndarray, metric: int, min_overlap: float,
                  thresh: float, compute_aos: bool, assigned: np.ndarray,
                  below_thresh: np.ndarray, delta: np.ndarray) -> tuple:
    """Counts of one frame at score threshold ``thresh``.

    Devkit ``computeStatistics`` with ``compute_fp=true``: detections below ``thresh`` are
    dropped; each ground truth takes the free counted detection of largest overlap above
    ``min_overlap``, else an ignored one. Scratch arrays ``assigned``, ``below_thresh``
    (>= num_dt) and ``delta`` (>= ng) are overwritten.

    Returns:
        tp, fp, fn, similarity (sum of (1 + cos(d_alpha)) / 2 over true positives, -1 when
        neither tp nor fp; 0 without ``compute_aos``).
    """
    nd = dt_score.shape[0]
    for j in range(nd):
        assigned[j] = False
        below_thresh[j] = dt_score[j] < thresh
    tp = 0
    fp = 0
    fn = 0
    n_delta = 0
    for i in range(ng):
        if ignored_gt[i] == -1:
            continue
        det_idx = -1
        valid_detection = _NO_DETECTION
        max_overlap = 0.0
        assigned_ignored_det = False
        for j in range(nd):
            if ignored_dt[j] == -1 or assigned[j] or below_thresh[j]:
                continue
            overlap = ov[j * ng + i]
            if (overlap > min_overlap and (overlap > max_overlap or assigned_ignored_det)
                    and ignored_dt[j] == 0):
                max_overlap = overlap
                det_idx = j
                valid_detection = 1.0
                assigned_ignored_det = False
            elif (overlap > min_overlap and valid_detection == _NO_DETECTION
                  and ignored_dt[j] == 1):
                det_idx = j
                valid_detection = 1.0
                assigned_ignored_det = True
        if valid_detection == _NO_DETECTION:
            if ignored_gt[i] == 0:
                fn += 1
        elif ignored_gt[i] == 1 or ignored_dt[det_idx] == 1:
            assigned[det_idx] = True
        else:
            tp += 1
            if compute_aos:
                delta[n_delta] = gt_alpha[i] - dt_alpha[det_idx]
                n_delta += 1
            assigned[det_idx] = True
    for j in range(nd):
        if not (assigned[j] or ignored_dt[j] != 0 or below_thresh[j]):
            fp += 1
    nstuff = 0
    if metric == 0:
        # unmatched 2D detections mostly inside a DontCare region are not false positives
        for c in range(dc_box.shape[0]):
            for j in range(nd):
                if assigned[j] or ignored_dt[j] != 0 or below_thresh[j]:
                    continue
                iw = min(dt_box2d[j, 2], dc_box[c, 2]) - max(dt_box2d[j, 0], dc_box[c, 0])
                if iw <= 0:
                    continue
                ih = min(dt_box2d[j, 3], dc_box[c, 3]) - max(dt_box2d[j, 1], dc_box[c, 1])
                if ih <= 0:
                    continue
                area = (dt_box2d[j, 2] - dt_box2d[j, 0]) * (dt_box2d[j, 3] - dt_box2d[j, 1])
                if iw * ih / area > min_overlap:
                    assigned[j] = True
                    nstuff += 1
    fp -= nstuff
    similarity = 0.0
    if compute_aos:
        if tp > 0 or fp > 0:
            for k in range(n_delta):
                similarity += (1.0 + math.cos(delta[k])) / 2.0
        else:
            similarity = -1.0
    return tp, fp, fn, similarity


@numba.njit(cache=True, error_model='numpy')
def ignore_flags(gt_off: np.ndarray, dt_off: np.ndarray, gt_box2d: np.ndarray,
                 gt_cls: np.ndarray, gt_occ: np.ndarray, gt_trunc: np.ndarray,
                 dt_box2d: np.ndarray, dt_cls: np.ndarray, code: int, neighbour: int,
                 min_height: float, max_occlusion: int, max_truncation: float) -> tuple:
    """Devkit ``cleanData`` for one class and difficulty, over all frames.

    Args:
        gt_off, dt_off: (F + 1,) frame offsets.
        gt_box2d (G, 4) pixels, gt_cls (G,) name codes, gt_occ (G,), gt_trunc (G,).
        dt_box2d (D, 4) pixels, dt_cls (D,) name codes.
        code, neighbour: name codes of the class and its neighbour class (-2: none).
        min_height, max_occlusion, max_truncation: the difficulty's limits.

    Returns:
        ignored_gt (G,), ignored_dt (D,) int64 codes, the number of counted ground truths and
        active (F,) bool: frames with a relevant ground truth or a counted detection (the
        others add nothing to any count).
    """
    num_frames = gt_off.shape[0] - 1
    ignored_gt = np.empty(gt_cls.shape[0], dtype=np.int64)
    ignored_dt = np.empty(dt_cls.shape[0], dtype=np.int64)
    active = np.zeros(num_frames, dtype=np.bool_)
    num_valid_gt = 0
    for f in range(num_frames):
        for i in range(gt_off[f], gt_off[f + 1]):
            if gt_cls[i] == code:
                valid_class = 1
            elif gt_cls[i] == neighbour:
                valid_class = 0
            else:
                valid_class = -1
            height = gt_box2d[i, 3] - gt_box2d[i, 1]
            ignore = (gt_occ[i] > max_occlusion or gt_trunc[i] > max_truncation
                      or height <= min_height)
            if valid_class == 1 and not ignore:
                ignored_gt[i] = 0
                num_valid_gt += 1
            elif valid_class == 0 or (ignore and valid_class == 1):
                ignored_gt[i] = 1
            else:
                ignored_gt[i] = -1
            if ignored_gt[i] != -1:
                active[f] = True
        for j in range(dt_off[f], dt_off[f + 1]):
            height = abs(dt_box2d[j, 3] - dt_box2d[j, 1])
            if height < min_height:
                ignored_dt[j] = 1
            elif dt_cls[j] == code:
                ignored_dt[j] = 0
                active[f] = True
            else:
                ignored_dt[j] = -1
    return ignored_gt, ignored_dt, num_valid_gt, active


@numba.njit(cache=True, error_model='numpy')
def true_positive_scores(ov: np.ndarray, ov_off: np.ndarray, gt_off: np.ndarray,
                         dt_off: np.ndarray, dt_score: np.ndarray, ignored_gt: np.ndarray,
                         ignored_dt: np.ndarray, active: np.ndarray,
                         min_overlap: float) -> np.ndarray:
    """Scores (T,) of all true positives without a score threshold (first devkit pass)."""
    num_frames = gt_off.shape[0] - 1
    max_nd = 1
    for f in range(num_frames):
        max_nd = max(max_nd, dt_off[f + 1] - dt_off[f])
    assigned = np.zeros(max_nd, dtype=np.bool_)
    out = np.empty(gt_off[num_frames], dtype=np.float64)
    n = 0
    for f in range(num_frames):
        if not active[f]:
            continue
        g0, g1, d0, d1 = gt_off[f], gt_off[f + 1], dt_off[f], dt_off[f + 1]
        n += _frame_tp_scores(ov[ov_off[f]:ov_off[f + 1]], g1 - g0, dt_score[d0:d1],
                              ignored_gt[g0:g1], ignored_dt[d0:d1], min_overlap, assigned,
                              out[n:])
    return out[:n]


@numba.njit(cache=True, error_model='numpy')
def counts_at_thresholds(metric: int, ov: np.ndarray, ov_off: np.ndarray, gt_off: np.ndarray,
                         dt_off: np.ndarray, dc_off: np.ndarray, gt_alpha: np.ndarray,
                         dt_box2d: np.ndarray, dt_alpha: np.ndarray, dt_score: np.ndarray,
                         dc_box: np.ndarray, ignored_gt: np.ndarray, ignored_dt: np.ndarray,
                         active: np.ndarray, min_overlap: float, thresholds: np.ndarray,
                         compute_aos: bool) -> np.ndarray:
    """tp, fp, fn, similarity (T, 4) summed over frames at each score threshold (second pass).

    Args:
        metric: overlap type of ``ov`` (0 2D, 1 BEV, 2 3D); 0 enables DontCare suppression.
        ov, ov_off: flat overlaps and their frame offsets (``box_overlaps.frame_overlaps``).
        gt_off, dt_off, dc_off: (F + 1,) frame offsets of ground truth / detections / DontCare.
        gt_alpha (G,), dt_box2d (D, 4), dt_alpha (D,), dt_score (D,), dc_box (C, 4).
        ignored_gt, ignored_dt, active: from ``ignore_flags``.
        thresholds (T,): from ``recall_thresholds``.
    """
    num_frames = gt_off.shape[0] - 1
    max_nd = 1
    max_ng = 1
    for f in range(num_frames):
        max_nd = max(max_nd, dt_off[f + 1] - dt_off[f])
        max_ng = max(max_ng, gt_off[f + 1] - gt_off[f])
    assigned = np.zeros(max_nd, dtype=np.bool_)
    below = np.zeros(max_nd, dtype=np.bool_)
    delta = np.zeros(max_ng, dtype=np.float64)
    pr = np.zeros((thresholds.shape[0], 4), dtype=np.float64)
    for f in range(num_frames):
        if not active[f]:
            continue
        g0, g1, d0, d1 = gt_off[f], gt_off[f + 1], dt_off[f], dt_off[f + 1]
        ov_f = ov[ov_off[f]:ov_off[f + 1]]
        dc_f = dc_box[dc_off[f]:dc_off[f + 1]]
        for t in range(thresholds.shape[0]):
            tp, fp, fn, similarity = _frame_counts(
                ov_f, g1 - g0, gt_alpha[g0:g1], dt_box2d[d0:d1], dt_alpha[d0:d1],
                dt_score[d0:d1], ignored_gt[g0:g1], ignored_dt[d0:d1], dc_f, metric,
                min_overlap, thresholds[t], compute_aos, assigned, below, delta)
            pr[t, 0] += tp
            pr[t, 1] += fp
            pr[t, 2] += fn
            if similarity != -1.0:
                pr[t, 3] += similarity
    return pr

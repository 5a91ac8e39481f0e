"""KITTI detection matching and precision/recall accumulation (numba ``@njit``, CPU only).

This is the logic of the official KITTI devkit (``evaluate_object.cpp``), as ported by
mmdet3d (``kitti_utils/eval.py``: ``clean_data``, ``compute_statistics_jit``,
``get_thresholds``, ``fused_compute_statistics``), reorganised so that one compiled call
evaluates every class, difficulty and IoU threshold of one overlap type over flat arrays.
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


@numba.njit(cache=True)
def recall_thresholds(scores: np.ndarray, num_gt: int,
                      num_sample_pts: int = NUM_SAMPLE_PTS) -> np.ndarray:
    """Score thresholds at (about) equally spaced recall positions, as the devkit picks them.

    Args:
        scores: (T,) scores of the true positives at threshold 0 (any order).
        num_gt: number of counted ground truths.
    """
    s = np.sort(scores)[::-1]
    n = s.shape[0]
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
        out[m] = s[i]
        m += 1
        current_recall += 1 / (num_sample_pts - 1.0)
    return out[:m]


@numba.njit(cache=True)
def _frame_statistics(ov: np.ndarray, ng: int, gt_alpha: np.ndarray, dt_box2d: np.ndarray,
                      dt_alpha: np.ndarray, dt_score: np.ndarray, ignored_gt: np.ndarray,
                      ignored_dt: np.ndarray, dc_box: np.ndarray, metric: int,
                      min_overlap: float, thresh: float, compute_fp: bool, compute_aos: bool,
                      assigned: np.ndarray, below_thresh: np.ndarray, tp_scores: np.ndarray,
                      delta: np.ndarray) -> tuple:
    """Match one frame (devkit ``computeStatistics``).

    ``ov`` is the flat row-major (num_dt, ng) overlap block. Scratch arrays ``assigned``,
    ``below_thresh`` (>= num_dt) and ``tp_scores``, ``delta`` (>= ng) are overwritten.

    Returns:
        tp, fp, fn, similarity (-1 if neither tp nor fp), number of entries in ``tp_scores``.
    """
    nd = dt_score.shape[0]
    for j in range(nd):
        assigned[j] = False
        below_thresh[j] = compute_fp and dt_score[j] < thresh
    tp = 0
    fp = 0
    fn = 0
    n_tp_scores = 0
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
            if not compute_fp:
                if overlap > min_overlap and dt_score[j] > valid_detection:
                    det_idx = j
                    valid_detection = dt_score[j]
            elif (overlap > min_overlap and (overlap > max_overlap or assigned_ignored_det)
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
            tp_scores[n_tp_scores] = dt_score[det_idx]
            n_tp_scores += 1
            if compute_aos:
                delta[n_delta] = gt_alpha[i] - dt_alpha[det_idx]
                n_delta += 1
            assigned[det_idx] = True
    similarity = 0.0
    if compute_fp:
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
                    area = ((dt_box2d[j, 2] - dt_box2d[j, 0])
                            * (dt_box2d[j, 3] - dt_box2d[j, 1]))
                    if iw * ih / area > min_overlap:
                        assigned[j] = True
                        nstuff += 1
        fp -= nstuff
        if compute_aos:
            if tp > 0 or fp > 0:
                for k in range(n_delta):
                    similarity += (1.0 + math.cos(delta[k])) / 2.0
            else:
                similarity = -1.0
    return tp, fp, fn, similarity, n_tp_scores


@numba.njit(cache=True)
def accumulate_pr(metric: int, ov: np.ndarray, ov_off: np.ndarray, gt_off: np.ndarray,
                  dt_off: np.ndarray, dc_off: np.ndarray, gt_box2d: np.ndarray,
                  gt_alpha: np.ndarray, gt_cls: np.ndarray, gt_occ: np.ndarray,
                  gt_trunc: np.ndarray, dt_box2d: np.ndarray, dt_alpha: np.ndarray,
                  dt_score: np.ndarray, dt_cls: np.ndarray, dc_box: np.ndarray,
                  class_codes: np.ndarray, neighbour_codes: np.ndarray,
                  min_overlaps: np.ndarray, min_height: np.ndarray, max_occlusion: np.ndarray,
                  max_truncation: np.ndarray, compute_aos: bool) -> tuple:
    """Counts at the recall thresholds for every class, difficulty and IoU threshold.

    Args:
        metric: overlap type of ``ov`` (0 2D, 1 BEV, 2 3D); 0 enables DontCare suppression.
        ov, ov_off: flat overlaps and their frame offsets (see ``box_overlaps.frame_overlaps``).
        gt_off, dt_off, dc_off: (F + 1,) frame offsets of ground truth / detections / DontCare.
        gt_box2d (G, 4), gt_alpha (G,), gt_cls (G,) int name code, gt_occ (G,) int,
        gt_trunc (G,): ground truth, all label lines except DontCare rows are in ``dc_box``
        too if named ``DontCare`` (they are also kept in the ground truth, as the devkit does).
        dt_box2d (D, 4), dt_alpha (D,), dt_score (D,), dt_cls (D,) int name code: detections.
        dc_box (C, 4): DontCare boxes.
        class_codes, neighbour_codes (M,): name codes of the evaluated classes and of their
            neighbour class (-2 for none).
        min_overlaps (K, M): IoU thresholds.
        min_height, max_occlusion, max_truncation (3,): difficulty definitions (pixels, level,
            fraction) for easy, moderate, hard.

    Returns:
        pr (M, 3, K, 41, 4) float64 with tp, fp, fn, similarity per threshold, and
        num_thresholds (M, 3, K) int64.
    """
    num_frames = gt_off.shape[0] - 1
    num_class = class_codes.shape[0]
    num_diff = min_height.shape[0]
    num_k = min_overlaps.shape[0]
    num_gt_total = gt_cls.shape[0]
    num_dt_total = dt_cls.shape[0]
    pr = np.zeros((num_class, num_diff, num_k, NUM_SAMPLE_PTS, 4), dtype=np.float64)
    num_thresholds = np.zeros((num_class, num_diff, num_k), dtype=np.int64)

    max_nd = 1
    max_ng = 1
    for f in range(num_frames):
        max_nd = max(max_nd, dt_off[f + 1] - dt_off[f])
        max_ng = max(max_ng, gt_off[f + 1] - gt_off[f])
    assigned = np.zeros(max_nd, dtype=np.bool_)
    below = np.zeros(max_nd, dtype=np.bool_)
    frame_scores = np.zeros(max_ng, dtype=np.float64)
    delta = np.zeros(max_ng, dtype=np.float64)
    all_scores = np.zeros(max(num_gt_total, 1), dtype=np.float64)
    ignored_gt = np.zeros(num_gt_total, dtype=np.int64)
    ignored_dt = np.zeros(num_dt_total, dtype=np.int64)
    active = np.zeros(num_frames, dtype=np.bool_)

    for m in range(num_class):
        code = class_codes[m]
        neighbour = neighbour_codes[m]
        for d in range(num_diff):
            # devkit cleanData
            num_valid_gt = 0
            for i in range(num_gt_total):
                if gt_cls[i] == code:
                    valid_class = 1
                elif gt_cls[i] == neighbour:
                    valid_class = 0
                else:
                    valid_class = -1
                height = gt_box2d[i, 3] - gt_box2d[i, 1]
                ignore = (gt_occ[i] > max_occlusion[d] or gt_trunc[i] > max_truncation[d]
                          or height <= min_height[d])
                if valid_class == 1 and not ignore:
                    ignored_gt[i] = 0
                    num_valid_gt += 1
                elif valid_class == 0 or (ignore and valid_class == 1):
                    ignored_gt[i] = 1
                else:
                    ignored_gt[i] = -1
            for j in range(num_dt_total):
                height = abs(dt_box2d[j, 3] - dt_box2d[j, 1])
                if height < min_height[d]:
                    ignored_dt[j] = 1
                elif dt_cls[j] == code:
                    ignored_dt[j] = 0
                else:
                    ignored_dt[j] = -1
            # frames that can contribute anything: a relevant ground truth or a counted detection
            for f in range(num_frames):
                act = False
                for i in range(gt_off[f], gt_off[f + 1]):
                    if ignored_gt[i] != -1:
                        act = True
                        break
                if not act:
                    for j in range(dt_off[f], dt_off[f + 1]):
                        if ignored_dt[j] == 0:
                            act = True
                            break
                active[f] = act

            for k in range(num_k):
                min_overlap = min_overlaps[k, m]
                # pass 1: scores of the true positives without a score threshold
                n_scores = 0
                for f in range(num_frames):
                    if not active[f]:
                        continue
                    g0 = gt_off[f]
                    g1 = gt_off[f + 1]
                    d0 = dt_off[f]
                    d1 = dt_off[f + 1]
                    res = _frame_statistics(
                        ov[ov_off[f]:ov_off[f + 1]], g1 - g0, gt_alpha[g0:g1],
                        dt_box2d[d0:d1], dt_alpha[d0:d1], dt_score[d0:d1], ignored_gt[g0:g1],
                        ignored_dt[d0:d1], dc_box[dc_off[f]:dc_off[f + 1]], metric,
                        min_overlap, 0.0, False, False, assigned, below, frame_scores, delta)
                    n_tp = res[4]
                    all_scores[n_scores:n_scores + n_tp] = frame_scores[:n_tp]
                    n_scores += n_tp
                thresholds = recall_thresholds(all_scores[:n_scores], num_valid_gt)
                nt = thresholds.shape[0]
                if nt > NUM_SAMPLE_PTS:
                    raise ValueError('more recall thresholds than sampling points')
                num_thresholds[m, d, k] = nt
                # pass 2: counts at every threshold
                for f in range(num_frames):
                    if not active[f]:
                        continue
                    g0 = gt_off[f]
                    g1 = gt_off[f + 1]
                    d0 = dt_off[f]
                    d1 = dt_off[f + 1]
                    ov_f = ov[ov_off[f]:ov_off[f + 1]]
                    for t in range(nt):
                        res = _frame_statistics(
                            ov_f, g1 - g0, gt_alpha[g0:g1], dt_box2d[d0:d1], dt_alpha[d0:d1],
                            dt_score[d0:d1], ignored_gt[g0:g1], ignored_dt[d0:d1],
                            dc_box[dc_off[f]:dc_off[f + 1]], metric, min_overlap,
                            thresholds[t], True, compute_aos, assigned, below, frame_scores,
                            delta)
                        pr[m, d, k, t, 0] += res[0]
                        pr[m, d, k, t, 1] += res[1]
                        pr[m, d, k, t, 2] += res[2]
                        if res[3] != -1.0:
                            pr[m, d, k, t, 3] += res[3]
    return pr, num_thresholds

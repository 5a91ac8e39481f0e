"""Per-frame detection x ground-truth overlaps for the KITTI evaluation (CPU, numba).

Three overlap types, numbered as in the KITTI devkit / mmdet3d (``metric``):

- 0: 2D image boxes ``(x1, y1, x2, y2)`` in pixels, IoU = inter / union (no ``+1``).
- 1: bird's-eye view, rotated rectangles ``(x, z, l, w, ry)`` (camera frame, metres, radians).
- 2: 3D, the BEV intersection times the overlap of the vertical extents. KITTI's camera y axis
  points down and ``y`` is the *bottom* of the box, so a box spans ``[y - h, y]``.

Only pairs inside the same frame are computed (mmdet3d computes all pairs of ~20-frame chunks
and slices them afterwards). The overlaps of all frames are stored flat: frame ``f`` occupies
``flat[ov_off[f]:ov_off[f + 1]]`` as a row-major (num_dt_f, num_gt_f) block.
"""
import numba
import numpy as np

from .rotated_iou import rotated_intersection_area

METRIC_BBOX = 0
METRIC_BEV = 1
METRIC_3D = 2


@numba.njit(cache=True, error_model='numpy')
def image_box_iou(box_a: np.ndarray, box_b: np.ndarray, criterion: int) -> float:
    """2D overlap of ``(x1, y1, x2, y2)`` boxes; criterion -1: IoU, 0: inter / area(box_a)."""
    iw = min(box_a[2], box_b[2]) - max(box_a[0], box_b[0])
    if iw <= 0:
        return 0.0
    ih = min(box_a[3], box_b[3]) - max(box_a[1], box_b[1])
    if ih <= 0:
        return 0.0
    area_a = (box_a[2] - box_a[0]) * (box_a[3] - box_a[1])
    if criterion == -1:
        ua = area_a + (box_b[2] - box_b[0]) * (box_b[3] - box_b[1]) - iw * ih
    else:
        ua = area_a
    return iw * ih / ua


@numba.njit(cache=True, error_model='numpy')
def _pair_overlap(metric: int, dt_box2d: np.ndarray, gt_box2d: np.ndarray,
                  dt_box3d: np.ndarray, gt_box3d: np.ndarray, bev_a: np.ndarray,
                  bev_b: np.ndarray) -> float:
    if metric == METRIC_BBOX:
        return image_box_iou(dt_box2d, gt_box2d, -1)
    # boxes3d rows: x, y, z, l, h, w, ry (camera frame, bottom centre)
    bev_a[0] = dt_box3d[0]
    bev_a[1] = dt_box3d[2]
    bev_a[2] = dt_box3d[3]
    bev_a[3] = dt_box3d[5]
    bev_a[4] = dt_box3d[6]
    bev_b[0] = gt_box3d[0]
    bev_b[1] = gt_box3d[2]
    bev_b[2] = gt_box3d[3]
    bev_b[3] = gt_box3d[5]
    bev_b[4] = gt_box3d[6]
    inter = rotated_intersection_area(bev_a, bev_b)
    if inter <= 0.0:
        return 0.0
    if metric == METRIC_BEV:
        union = bev_a[2] * bev_a[3] + bev_b[2] * bev_b[3] - inter
    else:
        ih = min(dt_box3d[1], gt_box3d[1]) - max(dt_box3d[1] - dt_box3d[4],
                                                  gt_box3d[1] - gt_box3d[4])
        if ih <= 0.0:
            return 0.0
        inter = inter * ih
        union = (dt_box3d[3] * dt_box3d[4] * dt_box3d[5]
                 + gt_box3d[3] * gt_box3d[4] * gt_box3d[5] - inter)
    if union <= 0.0:
        return 0.0
    return inter / union


@numba.njit(cache=True, error_model='numpy')
def frame_overlaps(metric: int, dt_box2d: np.ndarray, gt_box2d: np.ndarray,
                   dt_box3d: np.ndarray, gt_box3d: np.ndarray, dt_off: np.ndarray,
                   gt_off: np.ndarray) -> tuple:
    """Overlaps of every detection with every ground truth of the same frame.

    Args:
        metric: 0 (2D), 1 (BEV) or 2 (3D).
        dt_box2d, gt_box2d: (D, 4), (G, 4) image boxes, pixels.
        dt_box3d, gt_box3d: (D, 7), (G, 7) ``x, y, z, l, h, w, ry``, camera frame, bottom centre.
        dt_off, gt_off: (F + 1,) int64 frame offsets into the detection / ground-truth rows.

    Returns:
        flat (sum_f D_f * G_f,) float64 overlaps and ov_off (F + 1,) int64 block offsets.
    """
    num_frames = dt_off.shape[0] - 1
    ov_off = np.zeros(num_frames + 1, dtype=np.int64)
    for f in range(num_frames):
        ov_off[f + 1] = ov_off[f] + (dt_off[f + 1] - dt_off[f]) * (gt_off[f + 1] - gt_off[f])
    flat = np.zeros(ov_off[num_frames], dtype=np.float64)
    bev_a = np.empty(5, dtype=np.float64)
    bev_b = np.empty(5, dtype=np.float64)
    for f in range(num_frames):
        ng = gt_off[f + 1] - gt_off[f]
        base = ov_off[f]
        for j in range(dt_off[f], dt_off[f + 1]):
            row = base + (j - dt_off[f]) * ng
            for i in range(gt_off[f], gt_off[f + 1]):
                flat[row + i - gt_off[f]] = _pair_overlap(
                    metric, dt_box2d[j], gt_box2d[i], dt_box3d[j], gt_box3d[i], bev_a, bev_b)
    return flat, ov_off

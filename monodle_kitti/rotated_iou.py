"""Exact intersection of two rotated rectangles on the CPU (numba ``@njit``, no CUDA).

mmdet3d computes the same quantity with ``numba.cuda`` kernels in float32
(``kitti_utils/rotate_iou.py``), which fails without a GPU and returns wrong
values for degenerate pairs (two identical yawed boxes give ~0). Here the
intersection polygon is found by Sutherland-Hodgman clipping in float64, which
is exact up to rounding for any pair of convex quadrilaterals.

Box convention (KITTI camera frame seen from above, as mmdet3d's evaluation):
a BEV box is ``(cx, cz, l, w, ry)`` in metres / radians; the corner at local
``(u, v)`` (``u`` along the length, ``v`` along the width) lies at
``(cx + cos(ry) u + sin(ry) v, cz - sin(ry) u + cos(ry) v)``.
"""
import math

import numba
import numpy as np

_NUM_CORNERS = 4
# A convex quadrilateral clipped by 4 half-planes has at most 8 vertices; 16 is a safe bound.
_MAX_POLY = 16


@numba.njit(cache=True, error_model='numpy')
def bev_box_corners(cx: float, cz: float, length: float, width: float, ry: float) -> np.ndarray:
    """Corners (4, 2) of a BEV box, counter-clockwise in the (x, z) plane."""
    c = math.cos(ry)
    s = math.sin(ry)
    hl = 0.5 * length
    hw = 0.5 * width
    us = (-hl, hl, hl, -hl)
    vs = (-hw, -hw, hw, hw)
    out = np.empty((_NUM_CORNERS, 2), dtype=np.float64)
    for k in range(_NUM_CORNERS):
        out[k, 0] = cx + c * us[k] + s * vs[k]
        out[k, 1] = cz - s * us[k] + c * vs[k]
    # The map (u, v) -> (x, z) has determinant +1, so the local CCW order is kept.
    return out


@numba.njit(cache=True, error_model='numpy')
def _polygon_area(px: np.ndarray, py: np.ndarray, n: int) -> float:
    """Absolute shoelace area of the polygon ``(px[:n], py[:n])``."""
    acc = 0.0
    for k in range(n):
        k2 = (k + 1) % n
        acc += px[k] * py[k2] - px[k2] * py[k]
    return abs(0.5 * acc)


@numba.njit(cache=True, error_model='numpy')
def convex_quad_intersection_area(poly_a: np.ndarray, poly_b: np.ndarray) -> float:
    """Area of the intersection of two convex CCW quadrilaterals (4, 2) -> float.

    Sutherland-Hodgman: clip ``poly_a`` successively by the 4 half-planes of ``poly_b``.
    Points on a clipping edge count as inside, so coincident edges are handled.
    """
    px = np.empty(_MAX_POLY, dtype=np.float64)
    py = np.empty(_MAX_POLY, dtype=np.float64)
    qx = np.empty(_MAX_POLY, dtype=np.float64)
    qy = np.empty(_MAX_POLY, dtype=np.float64)
    n = _NUM_CORNERS
    for k in range(n):
        px[k] = poly_a[k, 0]
        py[k] = poly_a[k, 1]
    for e in range(_NUM_CORNERS):
        ax = poly_b[e, 0]
        ay = poly_b[e, 1]
        bx = poly_b[(e + 1) % _NUM_CORNERS, 0]
        by = poly_b[(e + 1) % _NUM_CORNERS, 1]
        ex = bx - ax
        ey = by - ay
        m = 0
        for k in range(n):
            k2 = (k + 1) % n
            # signed distance-like cross products; >= 0 means left of (inside) the edge
            s1 = ex * (py[k] - ay) - ey * (px[k] - ax)
            s2 = ex * (py[k2] - ay) - ey * (px[k2] - ax)
            if s1 >= 0.0:
                qx[m] = px[k]
                qy[m] = py[k]
                m += 1
                if s2 < 0.0:
                    t = s1 / (s1 - s2)
                    qx[m] = px[k] + t * (px[k2] - px[k])
                    qy[m] = py[k] + t * (py[k2] - py[k])
                    m += 1
            elif s2 >= 0.0:
                t = s1 / (s1 - s2)
                qx[m] = px[k] + t * (px[k2] - px[k])
                qy[m] = py[k] + t * (py[k2] - py[k])
                m += 1
        n = m
        if n < 3:
            return 0.0
        for k in range(n):
            px[k] = qx[k]
            py[k] = qy[k]
    return _polygon_area(px, py, n)


@numba.njit(cache=True, error_model='numpy')
def rotated_intersection_area(box_a: np.ndarray, box_b: np.ndarray) -> float:
    """Intersection area (m^2) of two BEV boxes ``(cx, cz, l, w, ry)``."""
    # Quick rejection by the circumscribed circles.
    dx = box_a[0] - box_b[0]
    dz = box_a[1] - box_b[1]
    ra = 0.5 * math.sqrt(box_a[2] * box_a[2] + box_a[3] * box_a[3])
    rb = 0.5 * math.sqrt(box_b[2] * box_b[2] + box_b[3] * box_b[3])
    if dx * dx + dz * dz >= (ra + rb) * (ra + rb):
        return 0.0
    ca = bev_box_corners(box_a[0], box_a[1], box_a[2], box_a[3], box_a[4])
    cb = bev_box_corners(box_b[0], box_b[1], box_b[2], box_b[3], box_b[4])
    return convex_quad_intersection_area(ca, cb)


@numba.njit(cache=True, error_model='numpy')
def rotated_iou_bev(boxes: np.ndarray, qboxes: np.ndarray) -> np.ndarray:
    """BEV IoU matrix (N, K) of boxes (N, 5) and qboxes (K, 5), rows ``(cx, cz, l, w, ry)``."""
    n = boxes.shape[0]
    k = qboxes.shape[0]
    out = np.zeros((n, k), dtype=np.float64)
    for i in range(n):
        area_i = boxes[i, 2] * boxes[i, 3]
        for j in range(k):
            inter = rotated_intersection_area(boxes[i], qboxes[j])
            if inter > 0.0:
                union = area_i + qboxes[j, 2] * qboxes[j, 3] - inter
                if union > 0.0:
                    out[i, j] = inter / union
    return out

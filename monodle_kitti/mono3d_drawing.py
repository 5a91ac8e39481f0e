"""Headless drawing of monocular 3D detections: projected boxes + a bird's-eye-view panel.

Pure numpy + OpenCV (no torch, no display, no matplotlib state), used by ``tools/demo.py``
(:class:`~monodle_plugin.apis.MonoDLEInferencer`), the ``MonoDLEVisualizationHook`` behind
``tools/test.py --show-dir``, the analysis pictures (:mod:`monodle_plugin.visualization`) and
``tools/deployment/ort_infer.py --draw-dir`` (which must not import torch).

Conventions: KITTI camera frame (x right, y down, z forward; metres), boxes
``[x, y, z, l, h, w, ry]`` with ``(x, y, z)`` the **bottom** centre (mmdet3d
``CameraInstance3DBoxes``), ``ry`` rotation about the camera y axis (radians; ``ry = 0`` faces
+x). Images are BGR uint8 (H, W, 3), as OpenCV / mmcv load them.
"""
from __future__ import annotations

from typing import Optional, Sequence

import cv2
import numpy as np

from .camera import camera_box_corners, project_to_image

#: BGR colour per class label (Pedestrian, Car, Cyclist); others / unknown: grey.
CLASS_COLORS = ((0, 165, 255), (255, 128, 0), (255, 0, 255))
GT_COLOR = (0, 220, 0)
UNKNOWN_COLOR = (160, 160, 160)
# the 12 edges of a box whose corners are ordered bottom 0..3, top 4..7 (see box_corners)
_EDGES = ((0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4),
          (0, 4), (1, 5), (2, 6), (3, 7))
_FRONT = (0, 1, 5, 4)  # the face at +l/2 along the heading
# the diagonals of the front face (the cross that shows the heading)
_FRONT_CROSS = ((_FRONT[0], _FRONT[2]), (_FRONT[1], _FRONT[3]))
#: metres: the near plane. Box edges are cut at ``z = MIN_DEPTH`` in the camera frame before
#: they are projected (a part behind it is not drawn); single corners closer are not projected.
MIN_DEPTH = 0.1
# mmdet3d's corner order (x0y0z0, x0y0z1, x0y1z1, x0y1z0, x1y0z0, ...) -> the order above:
# bottom (y1) +l+w, +l-w, -l-w, -l+w, then the same on top (y0)
_MMDET3D_TO_DRAWING = [6, 7, 3, 2, 5, 4, 0, 1]


def box_corners(boxes: np.ndarray) -> np.ndarray:
    """Corners of bottom-centre camera boxes (``CameraInstance3DBoxes.corners``, reordered).

    Args:
        boxes: (N, 7) ``[x, y, z, l, h, w, ry]`` metres / radians.

    Returns:
        (N, 8, 3) camera-frame corners; 0..3 bottom (y = y0), 4..7 top (y = y0 - h); 0, 1, 5,
        4 is the front face (+l/2 along the heading).
    """
    return camera_box_corners(boxes)[:, _MMDET3D_TO_DRAWING]


def clip_segments_near(p0: np.ndarray, p1: np.ndarray, near: float = MIN_DEPTH
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut camera-frame segments at the near plane ``z = near``.

    Args:
        p0, p1: (..., 3) end points, metres.
        near: depth of the plane, metres (> 0).

    Returns:
        ``(q0, q1, keep)``: the end points with every end behind the plane moved onto it along
        the segment (``z == near``), and ``keep`` (...,) False for segments entirely behind the
        plane (their ``q0`` / ``q1`` are NaN).
    """
    p0 = np.asarray(p0, dtype=np.float64)
    p1 = np.asarray(p1, dtype=np.float64)
    z0, z1 = p0[..., 2], p1[..., 2]
    behind0, behind1 = z0 < near, z1 < near
    keep = ~(behind0 & behind1)
    dz = np.where(z1 == z0, 1.0, z1 - z0)  # t is used only where one end is behind: z1 != z0
    t = (near - z0) / dz
    cut = p0 + t[..., None] * (p1 - p0)
    cut[..., 2] = near
    q0 = np.where(behind0[..., None], cut, p0)
    q1 = np.where(behind1[..., None], cut, p1)
    q0[~keep] = np.nan
    q1[~keep] = np.nan
    return q0, q1, keep


def project_box_edges(corners: np.ndarray, cam2img: np.ndarray,
                      edges: Sequence[tuple[int, int]] = _EDGES, near: float = MIN_DEPTH
                      ) -> np.ndarray:
    """Project box edges, each cut at the near plane first (:func:`clip_segments_near`).

    A corner behind the camera projects to the wrong side of the image (and one just in front
    of it far outside): projecting corners and joining them would draw lines across the whole
    image. Cutting the edge at ``z = near`` keeps only its visible part.

    Args:
        corners: (N, 8, 3) camera-frame corners (:func:`box_corners`).
        cam2img: 3x4 or 4x4 P2.
        edges: (E, 2) corner index pairs (default: the 12 box edges).
        near: near plane depth, metres.

    Returns:
        (N, E, 2, 2) pixel end points ``[start (u, v), end (u, v)]``; NaN for an edge entirely
        behind the plane.
    """
    corners = np.asarray(corners, dtype=np.float64).reshape(-1, 8, 3)
    idx = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    q0, q1, _ = clip_segments_near(corners[:, idx[:, 0]], corners[:, idx[:, 1]], near)
    uv = project_to_image(np.stack([q0, q1], axis=2).reshape(-1, 3), cam2img)
    return uv.reshape(len(corners), len(idx), 2, 2)


def _clip_to_rect(a: np.ndarray, b: np.ndarray, width: int, height: int, margin: float
                  ) -> Optional[tuple[tuple[int, int], tuple[int, int]]]:
    """Pixel segment a-b cut to the image grown by ``margin`` (Liang-Barsky), as int points for
    OpenCV (far-away end points would not fit its integer coordinates); None if outside."""
    d = b - a
    t0, t1 = 0.0, 1.0
    for p, q in ((-d[0], a[0] + margin), (d[0], width - 1 + margin - a[0]),
                 (-d[1], a[1] + margin), (d[1], height - 1 + margin - a[1])):
        if p == 0:
            if q < 0:
                return None
            continue
        r = q / p
        if p < 0:
            t0 = max(t0, r)
        else:
            t1 = min(t1, r)
        if t0 > t1:
            return None
    pa, pb = np.round(a + t0 * d).astype(int), np.round(a + t1 * d).astype(int)
    return (int(pa[0]), int(pa[1])), (int(pb[0]), int(pb[1]))


def _draw_segments(img: np.ndarray, segments: np.ndarray, color: tuple, thickness: int) -> None:
    """Draw (E, 2, 2) pixel segments (NaN: skipped) into ``img`` in place."""
    h, w = img.shape[:2]
    for a, b in segments:
        if not (np.isfinite(a).all() and np.isfinite(b).all()):
            continue
        seg = _clip_to_rect(a, b, w, h, margin=float(thickness + 1))
        if seg is not None:
            cv2.line(img, seg[0], seg[1], color, thickness, cv2.LINE_AA)


def _color(label: int, colors: Sequence[tuple]) -> tuple:
    return tuple(colors[label]) if 0 <= label < len(colors) else UNKNOWN_COLOR


def draw_projected_boxes(img: np.ndarray, boxes: np.ndarray, cam2img: np.ndarray,
                         labels: Optional[np.ndarray] = None, scores: Optional[np.ndarray] = None,
                         color: Optional[tuple] = None, thickness: int = 2) -> np.ndarray:
    """Draw 3D boxes projected into ``img`` (a copy is returned).

    Each edge is cut at the near plane ``z = MIN_DEPTH`` before projection
    (:func:`project_box_edges`), so a box next to or partly behind the camera draws only its
    visible part, never a line across the image from a corner behind the camera.

    Args:
        img: (H, W, 3) BGR uint8 raw image.
        boxes: (N, 7) bottom-centre camera boxes.
        cam2img: 3x4 or 4x4 P2 of this image.
        labels: (N,) class labels (colour); scores: (N,) drawn next to each box.
        color: one BGR colour for all boxes (e.g. ground truth), overriding the labels.
    """
    out = img.copy()
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 7)
    corners = box_corners(boxes)
    segs = project_box_edges(corners, cam2img, _EDGES + _FRONT_CROSS)
    n_edges = len(_EDGES)
    for i in range(len(boxes)):
        c = color or _color(int(labels[i]) if labels is not None else -1, CLASS_COLORS)
        _draw_segments(out, segs[i, :n_edges], c, thickness)
        _draw_segments(out, segs[i, n_edges:], c, 1)  # cross on the front face: the heading
        if scores is not None:
            # at the top front corner (4); behind the near plane: the first visible top point
            top = segs[i, 4:8].reshape(-1, 2)  # edges 4-5, 5-6, 6-7, 7-4
            seen = top[np.isfinite(top).all(1)]
            if corners[i, 4, 2] >= MIN_DEPTH:
                anchor = project_to_image(corners[i, 4:5], cam2img)[0]
            elif len(seen):
                anchor = seen[0]
            else:
                continue
            if np.abs(anchor).max() > 1e6:  # far outside the image (near the plane)
                continue
            org = tuple(int(v) for v in np.round(anchor).astype(int) + np.array([0, -4]))
            cv2.putText(out, f'{float(scores[i]):.2f}', org, cv2.FONT_HERSHEY_SIMPLEX, 0.45, c,
                        1, cv2.LINE_AA)
    return out


def draw_bev(height: int, boxes: np.ndarray, labels: Optional[np.ndarray] = None,
             gt_boxes: Optional[np.ndarray] = None, x_range: tuple = (-25.0, 25.0),
             z_range: tuple = (0.0, 70.0), grid: float = 10.0) -> np.ndarray:
    """Bird's-eye view panel (camera x to the right, depth z upwards), ``height`` pixels high.

    Args:
        height: panel height in pixels (the width follows the metric aspect ratio).
        boxes: (N, 7) predicted boxes; labels: (N,) their classes.
        gt_boxes: (M, 7) ground-truth boxes drawn in green, optional.
        x_range, z_range: metres shown; grid: spacing of the range rings / lines (metres).
    """
    scale = height / (z_range[1] - z_range[0])  # pixels per metre
    width = int(round((x_range[1] - x_range[0]) * scale))
    panel = np.full((height, width, 3), 30, np.uint8)

    def to_px(x, z):
        return np.stack([(x - x_range[0]) * scale, height - (z - z_range[0]) * scale], -1)

    for z in np.arange(z_range[0], z_range[1] + 1e-6, grid):
        v = int(round(height - (z - z_range[0]) * scale))
        cv2.line(panel, (0, v), (width - 1, v), (70, 70, 70), 1)
        cv2.putText(panel, f'{z:.0f}m', (2, max(v - 2, 10)), cv2.FONT_HERSHEY_SIMPLEX, 0.35,
                    (150, 150, 150), 1, cv2.LINE_AA)
    for x in np.arange(np.ceil(x_range[0] / grid) * grid, x_range[1] + 1e-6, grid):
        u = int(round((x - x_range[0]) * scale))
        cv2.line(panel, (u, 0), (u, height - 1), (70, 70, 70), 1)
    ego = to_px(np.array(0.0), np.array(z_range[0]))
    cv2.circle(panel, tuple(np.round(ego).astype(int)), 4, (255, 255, 255), -1)

    def draw(bxs, lbls, fixed):
        bxs = np.asarray(bxs, dtype=np.float64).reshape(-1, 7)
        for i, corners in enumerate(box_corners(bxs)):
            foot = np.round(to_px(corners[:4, 0], corners[:4, 2])).astype(np.int32)
            c = fixed or _color(int(lbls[i]) if lbls is not None else -1, CLASS_COLORS)
            cv2.polylines(panel, [foot], True, c, 2, cv2.LINE_AA)
            cv2.line(panel, tuple(foot[0]), tuple(foot[1]), (255, 255, 255), 1, cv2.LINE_AA)

    if gt_boxes is not None:
        draw(gt_boxes, None, GT_COLOR)
    draw(boxes, labels, None)
    return panel


def draw_mono3d_result(img: np.ndarray, cam2img: np.ndarray, boxes: np.ndarray,
                       labels: Optional[np.ndarray] = None, scores: Optional[np.ndarray] = None,
                       gt_boxes: Optional[np.ndarray] = None, title: Optional[str] = None
                       ) -> np.ndarray:
    """Image with projected boxes (and ground truth in green) next to a BEV panel.

    Returns:
        (H, W + W_bev, 3) BGR uint8 canvas, ready for ``cv2.imwrite``.
    """
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f'draw_mono3d_result: expected an (H, W, 3) image, got {img.shape}')
    canvas = img
    if gt_boxes is not None and len(gt_boxes):
        canvas = draw_projected_boxes(canvas, gt_boxes, cam2img, color=GT_COLOR, thickness=1)
    canvas = draw_projected_boxes(canvas, boxes, cam2img, labels, scores)
    if title:
        if canvas is img:
            canvas = img.copy()
        (tw, th), _ = cv2.getTextSize(title, cv2.FONT_HERSHEY_SIMPLEX, 0.6, 1)
        cv2.rectangle(canvas, (0, 0), (tw + 12, th + 12), (0, 0, 0), -1)
        cv2.putText(canvas, title, (6, th + 6), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1,
                    cv2.LINE_AA)
    bev = draw_bev(img.shape[0], boxes, labels, gt_boxes)
    return np.concatenate([canvas, bev], axis=1)

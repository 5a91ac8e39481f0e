"""Headless drawing of monocular 3D detections: projected boxes + a bird's-eye-view panel.

Pure numpy + OpenCV (no display, no matplotlib state), used by ``tools/demo.py`` and by the
``MonoDLEVisualizationHook`` behind ``tools/test.py --show-dir``.

Conventions: KITTI camera frame (x right, y down, z forward; metres), boxes
``[x, y, z, l, h, w, ry]`` with ``(x, y, z)`` the **bottom** centre (mmdet3d
``CameraInstance3DBoxes``), ``ry`` rotation about the camera y axis (radians; ``ry = 0`` faces
+x). Images are BGR uint8 (H, W, 3), as OpenCV / mmcv load them.
"""
from __future__ import annotations

from typing import Optional, Sequence

import cv2
import numpy as np

from ..structures.geometry import camera_box_corners, project_to_image

#: BGR colour per class label (Pedestrian, Car, Cyclist); others / unknown: grey.
CLASS_COLORS = ((0, 165, 255), (255, 128, 0), (255, 0, 255))
GT_COLOR = (0, 220, 0)
UNKNOWN_COLOR = (160, 160, 160)
# the 12 edges of a box whose corners are ordered bottom 0..3, top 4..7 (see box_corners)
_EDGES = ((0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4),
          (0, 4), (1, 5), (2, 6), (3, 7))
_FRONT = (0, 1, 5, 4)  # the face at +l/2 along the heading
MIN_DEPTH = 0.1  # metres: corners closer than this to the image plane are not projected
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


def project_corners(corners: np.ndarray, cam2img: np.ndarray) -> np.ndarray:
    """(N, 8, 3) camera points -> (N, 8, 2) pixels through P2 (divide by depth); NaN behind."""
    pts = corners.reshape(-1, 3)
    uv = np.full((len(pts), 2), np.nan)
    front = pts[:, 2] > MIN_DEPTH
    uv[front] = project_to_image(pts[front], cam2img)
    return uv.reshape(corners.shape[0], 8, 2)


def _color(label: int, colors: Sequence[tuple]) -> tuple:
    return tuple(colors[label]) if 0 <= label < len(colors) else UNKNOWN_COLOR


def draw_projected_boxes(img: np.ndarray, boxes: np.ndarray, cam2img: np.ndarray,
                         labels: Optional[np.ndarray] = None, scores: Optional[np.ndarray] = None,
                         color: Optional[tuple] = None, thickness: int = 2) -> np.ndarray:
    """Draw 3D boxes projected into ``img`` (a copy is returned).

    Args:
        img: (H, W, 3) BGR uint8 raw image.
        boxes: (N, 7) bottom-centre camera boxes.
        cam2img: 3x4 or 4x4 P2 of this image.
        labels: (N,) class labels (colour); scores: (N,) drawn next to each box.
        color: one BGR colour for all boxes (e.g. ground truth), overriding the labels.
    """
    out = img.copy()
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 7)
    uv = project_corners(box_corners(boxes), cam2img)
    for i in range(len(boxes)):
        c = color or _color(int(labels[i]) if labels is not None else -1, CLASS_COLORS)
        pts = uv[i]
        for a, b in _EDGES:
            if np.isfinite(pts[[a, b]]).all():
                cv2.line(out, tuple(np.round(pts[a]).astype(int)), tuple(np.round(pts[b])
                         .astype(int)), c, thickness, cv2.LINE_AA)
        front = pts[list(_FRONT)]
        if np.isfinite(front).all():  # cross on the front face shows the heading
            p = np.round(front).astype(int)
            cv2.line(out, tuple(p[0]), tuple(p[2]), c, 1, cv2.LINE_AA)
            cv2.line(out, tuple(p[1]), tuple(p[3]), c, 1, cv2.LINE_AA)
        if scores is not None and np.isfinite(pts[4]).all():
            org = tuple(np.round(pts[4]).astype(int) + np.array([0, -4]))
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

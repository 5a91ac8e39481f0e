"""Pictures for analysis: ground truth vs prediction (2D + 3D boxes + BEV), dense maps.

Boxes and the bird's-eye view reuse ``mono3d_drawing`` (what ``tools/demo.py`` and
``--show-dir`` draw). Maps use fixed-range OpenCV colour maps rather than mmengine's
``Visualizer.draw_featmap``, which min-max normalises every map and so hides absolute
heatmap scores and depths. Images are BGR uint8 (H, W, 3).
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import cv2
import numpy as np

from monodle_kitti.classes import MONODLE_CLASSES
from monodle_kitti.mono3d_drawing import (
    CLASS_COLORS,
    GT_COLOR,
    UNKNOWN_COLOR,
    draw_bev,
    draw_projected_boxes,
)

LAYOUTS = ('overlay', 'split')
MAP_KINDS = ('heatmap', 'depth', 'uncertainty', 'teacher')
DEPTH_RANGE = (0.0, 80.0)  # metres shown by the depth colour map


def bev_width(height: int, x_range=(-25.0, 25.0), z_range=(0.0, 70.0)) -> int:
    """Width in pixels of ``mono3d_drawing.draw_bev``'s panel for a given height."""
    return int(round((x_range[1] - x_range[0]) * height / (z_range[1] - z_range[0])))


def anno_to_boxes(anno: Dict[str, np.ndarray], classes: Sequence[str] = MONODLE_CLASSES,
                  score_thr: Optional[float] = None) -> Dict[str, np.ndarray]:
    """KITTI annotation (``kitti_io`` layout) -> ``boxes`` (N, 7) bottom-centre camera boxes
    ``x, y, z, l, h, w, ry``, ``bboxes`` (N, 4) pixels, ``labels`` (N,) index in ``classes``
    (-1 other names), ``scores`` (N,). DontCare lines and scores below ``score_thr`` dropped."""
    names = np.asarray(anno['name']).astype(str)
    keep = names != 'DontCare'
    if score_thr is not None:
        keep &= np.asarray(anno['score'], dtype=np.float64) >= score_thr
    n = int(keep.sum())
    loc = np.asarray(anno['location'], dtype=np.float64).reshape(-1, 3)[keep]
    dims = np.asarray(anno['dimensions'], dtype=np.float64).reshape(-1, 3)[keep]
    ry = np.asarray(anno['rotation_y'], dtype=np.float64).reshape(-1)[keep]
    return dict(boxes=np.concatenate([loc, dims, ry[:, None]], 1).reshape(n, 7),
                bboxes=np.asarray(anno['bbox'], dtype=np.float64).reshape(-1, 4)[keep],
                labels=np.array([classes.index(c) if c in classes else -1
                                 for c in names[keep]], dtype=np.int64),
                scores=np.asarray(anno['score'], dtype=np.float64).reshape(-1)[keep])


def draw_2d_boxes(img: np.ndarray, bboxes: np.ndarray, labels: Optional[np.ndarray] = None,
                  color: Optional[tuple] = None, thickness: int = 1) -> np.ndarray:
    """Axis-aligned 2D boxes (N, 4) ``x1, y1, x2, y2`` pixels, dashed look by thin lines."""
    out = img.copy()
    for i, b in enumerate(np.asarray(bboxes, dtype=np.float64).reshape(-1, 4)):
        if not np.isfinite(b).all():
            continue
        lab = int(labels[i]) if labels is not None else -1
        c = color or (CLASS_COLORS[lab] if 0 <= lab < len(CLASS_COLORS) else UNKNOWN_COLOR)
        p = np.round(b).astype(int)
        cv2.rectangle(out, (p[0], p[1]), (p[2], p[3]), c, thickness, cv2.LINE_AA)
    return out


def _title(img: np.ndarray, text: str) -> np.ndarray:
    """Write ``text`` in the top-left corner (in place); font size follows the image width."""
    scale = float(np.clip(img.shape[1] / 2000.0, 0.3, 0.6))
    pad = max(2, int(round(10 * scale)))
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    cv2.rectangle(img, (0, 0), (tw + 2 * pad, th + 2 * pad), (0, 0, 0), -1)
    cv2.putText(img, text, (pad, th + pad), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1,
                cv2.LINE_AA)
    return img


def draw_gt_vs_pred(img: np.ndarray, cam2img: np.ndarray, gt: Optional[Dict[str, np.ndarray]],
                    pred: Optional[Dict[str, np.ndarray]], layout: str = 'overlay',
                    show_2d: bool = True, show_3d: bool = True, thickness: int = 2,
                    title: str = '') -> np.ndarray:
    """Ground truth (green) and predictions (class colours) in the image and a BEV panel.

    Args:
        img: (H, W, 3) BGR raw image; cam2img: its P2 (3x4 or 4x4).
        gt, pred: ``anno_to_boxes`` dicts, or None.
        layout: 'overlay' (both in one row) or 'split' (ground truth row above the prediction
            row).
        show_2d / show_3d: draw the 2D boxes / the projected 3D boxes.

    Returns:
        BGR uint8 canvas of (H, W + bev_width(H)) for 'overlay', (2 H, W + bev_width(H)) for
        'split'.
    """
    if layout not in LAYOUTS:
        raise ValueError(f'layout {layout!r}: choose from {LAYOUTS}')
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f'draw_gt_vs_pred: expected an (H, W, 3) image, got {img.shape}')
    h = img.shape[0]
    empty = dict(boxes=np.zeros((0, 7)), bboxes=np.zeros((0, 4)), labels=np.zeros(0, int),
                 scores=np.zeros(0))
    gt, pred = gt or empty, pred or empty

    def paint(canvas, d, is_gt):
        if show_2d:
            canvas = draw_2d_boxes(canvas, d['bboxes'], None if is_gt else d['labels'],
                                   GT_COLOR if is_gt else None, 1)
        if show_3d:
            canvas = draw_projected_boxes(canvas, d['boxes'], cam2img,
                                          None if is_gt else d['labels'],
                                          None if is_gt else d['scores'],
                                          color=GT_COLOR if is_gt else None,
                                          thickness=1 if is_gt else thickness)
        return canvas

    if layout == 'overlay':
        canvas = paint(paint(img, gt, True), pred, False)
        if title:
            canvas = _title(canvas, title)
        bev = draw_bev(h, pred['boxes'], pred['labels'], gt['boxes'])
        return np.concatenate([canvas, bev], 1)
    top = _title(paint(img, gt, True), f'{title} ground truth'.strip())
    bottom = _title(paint(img, pred, False), f'{title} prediction'.strip())
    rows = [np.concatenate([top, draw_bev(h, np.zeros((0, 7)), None, gt['boxes'])], 1),
            np.concatenate([bottom, draw_bev(h, pred['boxes'], pred['labels'])], 1)]
    return np.concatenate(rows, 0)


def colorize(values: np.ndarray, vmin: float, vmax: float,
             cmap: int = cv2.COLORMAP_MAGMA, valid: Optional[np.ndarray] = None) -> np.ndarray:
    """(h, w) values -> (h, w, 3) BGR colours over the fixed range ``[vmin, vmax]``; invalid
    pixels (``valid`` False or non-finite) black."""
    v = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=vmin, posinf=vmax, neginf=vmin)
    u8 = np.clip((v - vmin) / max(vmax - vmin, 1e-12) * 255, 0, 255).astype(np.uint8)
    out = cv2.applyColorMap(u8, cmap)
    bad = ~np.isfinite(values)
    if valid is not None:
        bad |= ~np.asarray(valid, dtype=bool)
    out[bad] = 0
    return out


def _panel(img: np.ndarray, color_map: np.ndarray, alpha: float, text: str) -> np.ndarray:
    h, w = img.shape[:2]
    cm = cv2.resize(color_map, (w, h), interpolation=cv2.INTER_NEAREST)
    out = cm if alpha >= 1 else cv2.addWeighted(img, 1 - alpha, cm, alpha, 0)
    return _title(out.copy(), text)


def draw_heatmaps(img: np.ndarray, heatmap: np.ndarray,
                  classes: Sequence[str] = MONODLE_CLASSES, alpha: float = 0.6) -> np.ndarray:
    """One panel per class: the network-input image with its sigmoid heatmap (0..1, fixed
    scale) on top.

    Args:
        img: (H, W, 3) BGR network input; heatmap: (C, h, w) probabilities (stride-4 map).

    Returns:
        (C * H, W, 3) BGR.
    """
    panels = []
    for c in range(heatmap.shape[0]):
        name = classes[c] if c < len(classes) else str(c)
        panels.append(_panel(img, colorize(heatmap[c], 0.0, 1.0, cv2.COLORMAP_JET), alpha,
                             f'heatmap {name} (max {heatmap[c].max():.2f})'))
    return np.concatenate(panels, 0)


def draw_depth(img: np.ndarray, depth: np.ndarray, text: str = 'depth',
               valid: Optional[np.ndarray] = None,
               depth_range: tuple = DEPTH_RANGE) -> np.ndarray:
    """(H, W, 3) panel of a (h, w) depth map in metres, fixed colour range ``depth_range``."""
    return _panel(img, colorize(depth, *depth_range, valid=valid), 1.0,
                  f'{text} [{depth_range[0]:g}-{depth_range[1]:g} m]')


def draw_uncertainty(img: np.ndarray, log_var: np.ndarray) -> np.ndarray:
    """(H, W, 3) panel of the depth uncertainty ``sigma = exp(log_var / 2)`` (the Laplacian
    scale of MonoDLE's depth loss), colour range = the map's 2nd..98th percentile."""
    sigma = np.exp(0.5 * np.asarray(log_var, dtype=np.float64))
    lo, hi = np.percentile(sigma, [2, 98])
    return _panel(img, colorize(sigma, lo, max(hi, lo + 1e-6), cv2.COLORMAP_VIRIDIS), 1.0,
                  f'depth uncertainty sigma [{lo:.2g}-{hi:.2g}]')


def draw_teacher(img: np.ndarray, depth: np.ndarray, valid: np.ndarray,
                 depth_range: tuple = DEPTH_RANGE) -> np.ndarray:
    """Teacher depth (same colours as ``draw_depth``) above its valid mask: (2 H, W, 3)."""
    mask = np.where(np.asarray(valid, bool), 255, 0).astype(np.uint8)
    mask = cv2.cvtColor(mask, cv2.COLOR_GRAY2BGR)
    frac = float(np.asarray(valid, bool).mean()) if np.size(valid) else 0.0
    return np.concatenate([
        draw_depth(img, depth, 'teacher depth', valid, depth_range),
        _panel(img, mask, 1.0, f'teacher valid mask ({100 * frac:.1f}% valid)')], 0)

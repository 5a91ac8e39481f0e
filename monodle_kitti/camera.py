"""Camera geometry of the KITTI files (numpy only): P2 padding, the camera -> image map and the
corners of 3D boxes.

The home of these three functions; :mod:`monodle_plugin.structures.geometry` (the rest of the
camera geometry, with torch) re-exports them. Frames: camera = KITTI rectified camera (x right,
y down, z forward; metres); image = pixels ``(u, v)``.
"""
from __future__ import annotations

import numpy as np


def pad_cam2img(cam2img) -> np.ndarray:
    """Pad a KITTI projection matrix to 4x4.

    Args:
        cam2img: (3, 4) or (4, 4) array-like, P2 (rectified camera -> image pixels).

    Returns:
        (4, 4) float64 array: ``cam2img`` with the row ``[0, 0, 0, 1]`` appended when it was 3x4.
    """
    mat = np.asarray(cam2img, dtype=np.float64)
    if mat.shape == (4, 4):
        return mat.copy()
    if mat.shape != (3, 4):
        raise ValueError(f'cam2img must be 3x4 or 4x4, got shape {mat.shape}')
    return np.vstack([mat, [0.0, 0.0, 0.0, 1.0]])


def project_to_image(points: np.ndarray, cam2img: np.ndarray) -> np.ndarray:
    """Project camera-frame points through P2, dividing by the point depth ``z``.

    MonoDLE's ``Calibration.rect_to_img``: the divisor is the point's own ``z``, not the third
    row of ``P2 @ X`` (which adds ``P2[2, 3]``, a few millimetres);
    :func:`monodle_plugin.structures.geometry.image_to_camera` inverts it exactly.

    Args:
        points: (N, 3) camera frame, metres.
        cam2img: (3, 4) or (4, 4) projection matrix P2.

    Returns:
        (N, 2) float64 pixel coordinates ``(u, v)``; ``z == 0`` gives inf / NaN (never a silent
        finite value).
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    proj = np.asarray(cam2img, dtype=np.float64)[:3, :4]
    homo = np.concatenate([points, np.ones((len(points), 1))], axis=1)
    uvw = homo @ proj.T
    with np.errstate(divide='ignore', invalid='ignore'):
        return uvw[:, :2] / points[:, 2:3]


#: mmdet3d's unit-cube corner order (``CameraInstance3DBoxes.corners``): x0y0z0, x0y0z1,
#: x0y1z1, x0y1z0, x1y0z0, x1y0z1, x1y1z1, x1y1z0, shifted by the box origin (0.5, 1, 0.5)
#: (bottom centre): local x in [-l/2, l/2], y in [-h, 0], z in [-w/2, w/2].
_UNIT_CORNERS = np.array([[0, 0, 0], [0, 0, 1], [0, 1, 1], [0, 1, 0],
                          [1, 0, 0], [1, 0, 1], [1, 1, 1], [1, 1, 0]],
                         dtype=np.float64) - np.array([0.5, 1.0, 0.5])


def camera_box_corners(boxes) -> np.ndarray:
    """Corners of bottom-centre camera boxes: mmdet3d's ``CameraInstance3DBoxes.corners`` in
    numpy (the one implementation; a test compares it with mmdet3d's on KITTI boxes).

    Args:
        boxes: (N, 7) array-like ``[x, y, z, l, h, w, ry]``, metres / radians, ``(x, y, z)``
            the bottom centre in the KITTI camera frame, ``ry`` about the camera y axis.

    Returns:
        (N, 8, 3) float64 camera-frame corners in mmdet3d's order: ``x0y0z0, x0y0z1, x0y1z1,
        x0y1z0, x1y0z0, x1y0z1, x1y1z1, x1y1z0`` of the local box (``x1`` = +l/2, the front
        along the heading; ``y0`` = top, ``y1`` = bottom; ``z1`` = +w/2). The rotation is
        KITTI's: ``x' = cos(ry) dx + sin(ry) dz``, ``z' = -sin(ry) dx + cos(ry) dz``.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 7)
    local = boxes[:, None, 3:6] * _UNIT_CORNERS[None]  # (N, 8, 3): l, h, w scaled
    cos, sin = np.cos(boxes[:, 6:7]), np.sin(boxes[:, 6:7])  # (N, 1)
    corners = np.empty_like(local)
    corners[..., 0] = local[..., 0] * cos + local[..., 2] * sin
    corners[..., 1] = local[..., 1]
    corners[..., 2] = -local[..., 0] * sin + local[..., 2] * cos
    return corners + boxes[:, None, :3]

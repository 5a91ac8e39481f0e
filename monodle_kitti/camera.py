"""Camera projection of the KITTI files (numpy only): P2 padding and the camera -> image map.

The home of these two functions; :mod:`monodle_plugin.structures.geometry` (the rest of the
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

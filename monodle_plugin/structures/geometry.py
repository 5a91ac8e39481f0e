"""Small camera geometry used by the data pipeline, the head, the metric and the tools.

One home each: projection matrices, projection, angle wrapping, MonoDLE's depth decode and
the PIL pixel-centre affine convention live here and nowhere else.
"""
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

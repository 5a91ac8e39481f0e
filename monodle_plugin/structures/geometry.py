"""Small camera geometry used by the data pipeline, the head, the metric and the tools.

One home each: projection matrices, projection, angle wrapping, MonoDLE's depth decode and
the PIL pixel-centre affine convention live here and nowhere else. P2 padding, projection and
box corners (mmdet3d's ``CameraInstance3DBoxes.corners`` in numpy) live in the torch-free
:mod:`monodle_kitti.camera` and are re-exported here.

Frames: camera = KITTI rectified camera (x right, y down, z forward; metres); image = pixels
``(u, v)``. Functions taking ``np.ndarray | Tensor`` return the same kind.
"""
from __future__ import annotations

import math
from typing import TypeVar

import numpy as np
import torch
from torch import Tensor

# P2 padding, projection and box corners live in the torch-free package (tools/kitti_eval.py,
# tools/deployment/ort_infer.py use them)
from monodle_kitti.camera import camera_box_corners, pad_cam2img, project_to_image  # noqa: F401

ArrayT = TypeVar('ArrayT', np.ndarray, Tensor)

#: PIL's pixel-centre convention -> OpenCV's: conjugate an affine by this half-pixel shift.
_HALF_PIXEL = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
_HALF_PIXEL_INV = np.array([[1.0, 0.0, -0.5], [0.0, 1.0, -0.5], [0.0, 0.0, 1.0]])


def pil_to_cv2_affine(affine_mat: np.ndarray) -> np.ndarray:
    """(3, 3) PIL-convention affine -> (2, 3) OpenCV-convention affine (for ``cv2.warpAffine``).

    PIL's ``Image.transform(AFFINE)`` (which MonoDLE uses) maps continuous coordinates in which
    pixel ``i`` covers ``[i, i + 1)`` (centre ``i + 0.5``); OpenCV puts the centre at ``i``. The
    matrix is conjugated by that half-pixel shift, so image, depth maps and boxes land on the
    same grid.
    """
    return (_HALF_PIXEL_INV @ np.asarray(affine_mat, dtype=np.float64) @ _HALF_PIXEL)[:2]


def apply_affine(points: ArrayT, affine_mat: ArrayT) -> ArrayT:
    """(N, 2) points through the top two rows of a (3, 3) or (2, 3) affine: ``p A^T + t``.

    A tensor ``affine_mat`` of shape (B, 3, 3) maps the (B, K, 2) ``points`` of each image
    through its own matrix (the batched decoding of the ONNX graph).

    numpy input is computed in float64 (the data pipeline's numbers); a tensor keeps its dtype
    and device (``affine_mat`` is converted to them).
    """
    if isinstance(points, Tensor):
        mat = torch.as_tensor(affine_mat, dtype=points.dtype, device=points.device)
        if mat.dim() == 3:  # (B, 3, 3): one affine per image, points (B, K, 2)
            return points @ mat[:, :2, :2].transpose(1, 2) + mat[:, None, :2, 2]
        return points.reshape(-1, 2) @ mat[:2, :2].T + mat[:2, 2]
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    affine_mat = np.asarray(affine_mat, dtype=np.float64)
    return points @ affine_mat[:2, :2].T + affine_mat[:2, 2]


def camera_parameters(cam2img: np.ndarray | Tensor) -> tuple:
    """``(fu, fv, cu, cv, tx, ty)`` of a P2, with ``tx = P[0, 3] / -fu``, ``ty = P[1, 3] / -fv``
    (metres; MonoDLE's ``Calibration``).

    Args:
        cam2img: (3, 4) or (4, 4) array (one image: numpy float64 scalars are returned), or a
            (B, 3|4, 4) tensor (one P2 per image of a batch: (B, 1) tensors, which broadcast
            over the image's K detections; the ONNX graph's input).
    """
    if isinstance(cam2img, Tensor) and cam2img.dim() == 3:
        p = cam2img.unsqueeze(-1)  # (B, 4, 4, 1)
        fu, fv, cu, cv = p[:, 0, 0], p[:, 1, 1], p[:, 0, 2], p[:, 1, 2]
        return fu, fv, cu, cv, p[:, 0, 3] / (-fu), p[:, 1, 3] / (-fv)
    p = np.asarray(cam2img, dtype=np.float64)
    fu, fv, cu, cv = p[0, 0], p[1, 1], p[0, 2], p[1, 2]
    return fu, fv, cu, cv, p[0, 3] / (-fu), p[1, 3] / (-fv)


def image_to_camera(u: Tensor, v: Tensor, depth: Tensor, cam2img: np.ndarray | Tensor
                    ) -> tuple[Tensor, Tensor]:
    """Inverse of :func:`project_to_image` for pixels ``(u, v)`` at depth ``z`` (MonoDLE's
    ``Calibration.img_to_rect``): ``x = (u - cu) z / fu + tx``, ``y = (v - cv) z / fv + ty``.

    Args:
        u, v, depth: (N,) pixels and metres (any float dtype; the maths runs in it), or
            (B, K) with a batch of P2s.
        cam2img: (3, 4) or (4, 4) P2 of the image the pixels belong to, or (B, 3|4, 4)
            tensor, one per image (see :func:`camera_parameters`).

    Returns:
        (x, y) camera frame, metres, each shaped as ``u``.
    """
    if isinstance(cam2img, Tensor) and cam2img.dim() == 3:
        cam2img = cam2img.to(u.dtype)
    fu, fv, cu, cv, tx, ty = camera_parameters(cam2img)
    return (u - cu) * depth / fu + tx, (v - cv) * depth / fv + ty


def wrap_angle(angle: ArrayT, upper_only: bool = False) -> ArrayT:
    """MonoDLE's angle wrap: one ``2 pi`` step, so (-3 pi, 3 pi) -> [-pi, pi] (both ends kept).

    Args:
        angle: radians, numpy array or tensor (any shape).
        upper_only: only bring ``angle > pi`` down (MonoDLE's ``get_heading_angle``, whose
            input is ``>= -pi`` by construction); the lower side is left as it is.

    Returns:
        The wrapped angles, same kind, shape and dtype. For arbitrary angles into [-pi, pi) use
        mmdet3d's ``limit_period(angle, 0.5, 2 * pi)``.
    """
    lib = torch if isinstance(angle, Tensor) else np
    angle = lib.where(angle > math.pi, angle - 2 * math.pi, angle)
    if upper_only:
        return angle
    return lib.where(angle < -math.pi, angle + 2 * math.pi, angle)


def decode_depth(depth_logit: Tensor, eps: float = 1e-6) -> Tensor:
    """MonoDLE's depth decoding ``1 / (sigmoid(x) + eps) - 1`` of the raw depth logit ``x``.

    Returns metres (times the sample's crop scale during training, MonoDLE's target convention).
    """
    return 1.0 / (torch.sigmoid(depth_logit) + eps) - 1.0


def encode_depth(depth: float, eps: float = 1e-6) -> float:
    """The depth logit that :func:`decode_depth` maps to ``depth`` metres (> 0): its inverse,
    ``logit(1 / (depth + 1) - eps)``."""
    if not depth > 0:
        raise ValueError(f'encode_depth: depth must be > 0 metres, got {depth!r}')
    s = 1.0 / (depth + 1.0) - eps
    return math.log(s / (1.0 - s))

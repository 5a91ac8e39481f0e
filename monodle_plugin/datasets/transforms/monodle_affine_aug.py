"""MonoDLE's augmentation: random flip, random scale/shift crop, affine warp to a fixed size."""
from typing import Sequence, Tuple

import cv2
import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmdet3d.registry import TRANSFORMS
from mmdet3d.structures import CameraInstance3DBoxes

from ...structures.geometry import apply_affine, pil_to_cv2_affine, wrap_angle


def monodle_affine_matrix(center: np.ndarray, crop_size: np.ndarray,
                          output_size: Tuple[int, int]) -> np.ndarray:
    """Affine map of a crop onto the network input, computed as MonoDLE computes it.

    The crop of width ``crop_size[0]`` centred at ``center`` is scaled uniformly (the crop height
    plays no role, as in MonoDLE) so that its width fills ``output_size[0]``, with ``center``
    going to the output centre. Like MonoDLE, the matrix is solved by ``cv2.getAffineTransform``
    from three float32 point pairs, so the same inputs give bit-identical matrices.

    Args:
        center: (2,) crop centre, raw-image pixels (PIL's continuous convention).
        crop_size: (2,) crop width, height in raw-image pixels.
        output_size: (W, H) of the network input, pixels.

    Returns:
        (3, 3) float64 matrix mapping raw-image pixels to network-input pixels.
    """
    dst_w, dst_h = float(output_size[0]), float(output_size[1])

    def three_points(origin, width):
        pts = np.zeros((3, 2), dtype=np.float32)
        pts[0] = origin
        pts[1] = np.asarray(origin, dtype=np.float64) + np.array([0.0, -0.5 * width])
        d = pts[0] - pts[1]  # third point: pts[1] + d rotated by 90 degrees
        pts[2] = pts[1] + np.array([-d[1], d[0]], dtype=np.float32)
        return pts

    src = three_points(np.asarray(center, dtype=np.float64), float(crop_size[0]))
    dst = three_points(np.array([dst_w * 0.5, dst_h * 0.5]), dst_w)
    mat = np.eye(3)
    mat[:2] = cv2.getAffineTransform(src, dst)
    return mat


def warp_image_pil_convention(img: np.ndarray, affine_mat: np.ndarray,
                              output_size: Tuple[int, int], border_value: float = 0) -> np.ndarray:
    """``cv2.warpAffine`` (bilinear) with PIL's pixel-centre convention.

    PIL's ``Image.transform(AFFINE)``, which MonoDLE uses, maps continuous coordinates in which
    pixel ``i`` covers ``[i, i + 1)`` (centre ``i + 0.5``); OpenCV puts the centre at ``i``. The
    matrix is conjugated by that half-pixel shift (``geometry.pil_to_cv2_affine``) so both give
    the same image up to OpenCV's
    1/32-pixel interpolation grid and the one-pixel border (PIL clamps, OpenCV blends with 0).

    Args:
        img: (H, W, C) or (H, W) image, any dtype cv2 supports.
        affine_mat: (3, 3) raw-image -> output pixels, PIL convention.
        output_size: (W, H) of the output.
        border_value: fill value outside the source image.

    Returns:
        (H_out, W_out[, C]) warped image, same dtype.
    """
    size = (int(output_size[0]), int(output_size[1]))
    return cv2.warpAffine(img, pil_to_cv2_affine(affine_mat), size,
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=border_value)


@TRANSFORMS.register_module()
class MonoDLEAffineAug(BaseTransform):
    """MonoDLE's training augmentation and fixed-size warp, with the transform recorded.

    Random draws, in MonoDLE's order with ``np.random`` (so a given numpy seed gives MonoDLE's
    augmentation): ``random() < random_flip`` flip; ``random() < random_crop`` crop; on crop
    ``aug_scale = clip(randn() * scale + 1, 1 - scale, 1 + scale)``, then the centre shifts
    ``W * clip(randn() * shift, -2 shift, 2 shift)`` and the same for ``H``. The crop of width
    ``W * aug_scale`` around the centre is mapped onto ``output_size`` (uniform scale). The flip
    is folded into one matrix ``affine_mat`` (raw-image pixels -> network-input pixels, PIL's
    continuous convention where a flip is ``u -> W - u``). In ``test_mode`` nothing is drawn: no
    flip, centre ``(W/2, H/2)``, crop = whole image.

    Required keys: ``img`` (H, W, C), ``cam2img`` (4x4). Optional, transformed when present:
    ``gt_bboxes`` (N, 4) raw px -> network px (flip ``W - x``, affine of the two corners),
    ``centers_2d`` (N, 2) raw px -> network px, ``gt_alphas`` (pi - alpha, wrapped, on flip),
    ``gt_bboxes_3d`` (camera frame: ``x -> -x``, ``ry -> pi - ry`` wrapped, on flip). ``depths``
    are left unchanged (the head multiplies them by ``crop_scale``).

    Added / modified keys: ``img`` (H_out, W_out, C), ``img_shape`` (H_out, W_out), ``cam2img``
    (of the flipped image when flipped: ``P[0, 2] -> W - P[0, 2]``, ``P[0, 3] -> -P[0, 3]``),
    ``affine_mat`` / ``inv_affine_mat`` (3x3 float64, flip included), ``flip`` (bool),
    ``flip_direction``, ``crop_scale`` (float, 1.0 without crop), ``random_crop`` (bool).

    Args:
        output_size: network input (W, H) pixels; MonoDLE: (1280, 384).
        random_flip: flip probability; MonoDLE: 0.5.
        random_crop: crop probability; MonoDLE: 0.5.
        scale: std and clip bound of the crop scale; MonoDLE: 0.4.
        shift: std of the centre shift as a fraction of the image size (clipped at 2 std);
            MonoDLE: 0.1.
        test_mode: deterministic whole-image warp, no random draws.
        border_value: image fill outside the source.
    """

    def __init__(self,
                 output_size: Sequence[int] = (1280, 384),
                 random_flip: float = 0.5,
                 random_crop: float = 0.5,
                 scale: float = 0.4,
                 shift: float = 0.1,
                 test_mode: bool = False,
                 border_value: float = 0) -> None:
        if len(output_size) != 2:
            raise ValueError(f'output_size must be (W, H), got {output_size}')
        for name, p in (('random_flip', random_flip), ('random_crop', random_crop)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f'{name} must be a probability in [0, 1], got {p}')
        if not 0.0 <= scale < 1.0:
            raise ValueError(f'scale must be in [0, 1), got {scale}')
        self.output_size = (int(output_size[0]), int(output_size[1]))
        self.random_flip = random_flip
        self.random_crop = random_crop
        self.scale = scale
        self.shift = shift
        self.test_mode = test_mode
        self.border_value = border_value

    def _draw(self, img_size: np.ndarray) -> Tuple[bool, bool, float, np.ndarray, np.ndarray]:
        """(flip, crop, crop_scale, center, crop_size): MonoDLE's draws in MonoDLE's order."""
        center = img_size / 2
        crop_scale, crop_size = 1.0, img_size
        flip = crop = False
        if self.test_mode:
            return flip, crop, crop_scale, center, crop_size
        if np.random.random() < self.random_flip:
            flip = True
        if np.random.random() < self.random_crop:
            crop = True
            crop_scale = float(np.clip(np.random.randn() * self.scale + 1,
                                       1 - self.scale, 1 + self.scale))
            crop_size = img_size * crop_scale
            bound = 2 * self.shift
            center[0] += img_size[0] * np.clip(np.random.randn() * self.shift, -bound, bound)
            center[1] += img_size[1] * np.clip(np.random.randn() * self.shift, -bound, bound)
        return flip, crop, crop_scale, center, crop_size

    def transform(self, results: dict) -> dict:
        img = results['img']
        height, width = img.shape[:2]
        img_size = np.array([width, height])  # W, H as MonoDLE's PIL img.size
        flip, crop, crop_scale, center, crop_size = self._draw(img_size)

        affine_mat = monodle_affine_matrix(center, crop_size, self.output_size)
        if flip:
            flip_mat = np.array([[-1.0, 0.0, width], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
            affine_mat = affine_mat @ flip_mat
        results['img'] = warp_image_pil_convention(img, affine_mat, self.output_size,
                                                   self.border_value)
        results['img_shape'] = results['img'].shape[:2]

        if 'gt_bboxes' in results:
            boxes = np.asarray(results['gt_bboxes'], dtype=np.float32).reshape(-1, 4)
            # after a flip, corner (x2, y1) becomes the top-left one: (W - x2, y1)
            first = boxes[:, [2, 1]] if flip else boxes[:, [0, 1]]
            second = boxes[:, [0, 3]] if flip else boxes[:, [2, 3]]
            results['gt_bboxes'] = np.concatenate(
                [apply_affine(first, affine_mat), apply_affine(second, affine_mat)],
                axis=1).astype(np.float32)
        if 'centers_2d' in results:
            results['centers_2d'] = apply_affine(results['centers_2d'],
                                                 affine_mat).astype(np.float32)
        if flip and 'gt_alphas' in results:
            results['gt_alphas'] = wrap_angle(
                np.pi - np.asarray(results['gt_alphas'], dtype=np.float64)).astype(np.float32)
        if flip and 'gt_bboxes_3d' in results:
            results['gt_bboxes_3d'] = self._flip_boxes_3d(results['gt_bboxes_3d'])
        if flip:
            cam2img = np.array(results['cam2img'], dtype=np.float64)
            cam2img[0, 2] = width - cam2img[0, 2]
            cam2img[0, 3] = -cam2img[0, 3]
            results['cam2img'] = cam2img

        results['affine_mat'] = affine_mat
        results['inv_affine_mat'] = np.linalg.inv(affine_mat)
        results['flip'] = flip
        results['flip_direction'] = 'horizontal' if flip else None
        results['crop_scale'] = crop_scale
        results['random_crop'] = crop
        return results

    @staticmethod
    def _flip_boxes_3d(boxes: CameraInstance3DBoxes) -> CameraInstance3DBoxes:
        """Mirror camera-frame boxes: ``x -> -x``, ``ry -> pi - ry`` wrapped to [-pi, pi].

        (``CameraInstance3DBoxes.flip`` gives ``pi - ry`` unwrapped.)
        """
        tensor = boxes.tensor.clone()
        tensor[:, 0] = -tensor[:, 0]
        tensor[:, 6] = wrap_angle(torch.pi - tensor[:, 6].double()).to(tensor.dtype)
        return type(boxes)(tensor, box_dim=boxes.box_dim, with_yaw=boxes.with_yaw)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(output_size={self.output_size}, '
                f'random_flip={self.random_flip}, random_crop={self.random_crop}, '
                f'scale={self.scale}, shift={self.shift}, test_mode={self.test_mode})')

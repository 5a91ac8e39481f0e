"""Teacher depth loading (DA3 pseudo-labels or sparse LiDAR), aligned with the augmented image."""
from __future__ import annotations

import io
import os.path as osp
import warnings
import zipfile
from typing import Optional, Tuple

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmdet3d.registry import TRANSFORMS
from mmengine import fileio

from ...structures.geometry import pil_to_cv2_affine

_INTERPOLATIONS = {'nearest': cv2.INTER_NEAREST, 'bilinear': cv2.INTER_LINEAR}
_DOWNSAMPLE_MODES = ('mean', 'min', 'nearest')
_RESIZE_MODES = ('auto', 'never', 'force')
_ON_MISSING = ('error', 'skip')
# A validity-aware sample is valid only where at least this fraction of its bilinear weight
# comes from valid sources: the nearest source is then always valid (its weight is >= 1/4).
_MIN_VALID_WEIGHT = 0.25


def depth_validity(depth: np.ndarray, min_depth: float = 0.0,
                   max_depth: Optional[float] = None) -> np.ndarray:
    """Valid = finite and ``> min_depth`` (and ``<= max_depth`` when given). Bool, same shape."""
    with np.errstate(invalid='ignore'):
        valid = np.isfinite(depth) & (depth > min_depth)
        if max_depth is not None:
            valid &= depth <= max_depth
    return valid


def resample_depth(depth: np.ndarray, valid: np.ndarray, out_size: Tuple[int, int],
                   interpolation: str = 'nearest',
                   affine_cv: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Resize (``affine_cv`` None) or affine-warp a depth map without mixing invalid pixels.

    ``'nearest'`` copies the nearest source pixel and its validity. ``'bilinear'`` is a
    normalised (validity-weighted) bilinear interpolation: ``sum(w_k v_k d_k) / sum(w_k v_k)``
    over the 4 neighbours, valid where ``sum(w_k v_k) >= 1/4``; invalid sources get weight 0,
    so a valid output is never a blend with an invalid pixel. Outside the source: invalid.

    Args:
        depth: (H, W) metres; valid pixels must hold values > 0 (any value where invalid).
        valid: (H, W) bool.
        out_size: (W_out, H_out) pixels.
        interpolation: 'nearest' or 'bilinear'.
        affine_cv: (2, 3) OpenCV-convention source -> output matrix, or None to resize.

    Returns:
        depth (H_out, W_out) float32 (0 where invalid), valid (H_out, W_out) bool.
    """
    out_w, out_h = int(out_size[0]), int(out_size[1])
    masked = np.array(depth, dtype=np.float32)  # a copy: invalid pixels (NaN, inf...) -> 0
    masked[~valid] = 0
    if affine_cv is None:
        src_h, src_w = depth.shape
        # cv2.resize maps pixel centres as (x + 0.5) * scale - 0.5, the same half-pixel
        # convention as the warp; an explicit affine keeps both paths identical.
        sx, sy = out_w / src_w, out_h / src_h
        affine_cv = np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5]])
    affine_cv = np.asarray(affine_cv, dtype=np.float64)
    if interpolation == 'nearest':
        # one channel is enough: valid pixels are > 0, invalid ones and the border are 0
        warped = cv2.warpAffine(masked, affine_cv, (out_w, out_h), flags=cv2.INTER_NEAREST,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return warped, warped > 0
    stacked = cv2.merge([masked, valid.astype(np.float32)])
    warped = cv2.warpAffine(stacked, affine_cv, (out_w, out_h),
                            flags=_INTERPOLATIONS[interpolation],
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    num, den = warped[..., 0], warped[..., 1]
    out_valid = den >= _MIN_VALID_WEIGHT
    out_depth = np.where(out_valid, num / np.maximum(den, _MIN_VALID_WEIGHT), 0)
    return out_depth.astype(np.float32), out_valid


def downsample_depth(depth: np.ndarray, valid: np.ndarray, stride: int, mode: str = 'mean',
                     min_valid_count: int = 1) -> Tuple[np.ndarray, np.ndarray]:
    """Reduce (H, W) maps to (H / stride, W / stride) over stride x stride blocks.

    Output cell ``(i, j)`` covers input pixels ``[s i, s i + s) x [s j, s j + s)``, the cell the
    head's stride-``s`` targets use. Only valid pixels take part: ``'mean'`` averages them,
    ``'min'`` keeps the nearest surface (useful for sparse LiDAR at object boundaries),
    ``'nearest'`` takes pixel ``(s i + s // 2, s j + s // 2)`` alone. A cell is valid when it
    has at least ``min_valid_count`` valid pixels (``'nearest'``: when its pixel is valid).
    """
    h, w = depth.shape
    if h % stride or w % stride:
        raise ValueError(f'depth map {h}x{w} is not divisible by the stride {stride}')
    masked = np.where(valid, depth, 0).astype(np.float32)
    if mode == 'nearest' or stride == 1:
        c = stride // 2
        return masked[c::stride, c::stride].copy(), valid[c::stride, c::stride].copy()
    out_hw = (w // stride, h // stride)
    if mode == 'mean':
        # INTER_AREA with an integer factor is the block mean (cv2: much faster than numpy)
        valid_mean = cv2.resize(valid.astype(np.float32), out_hw, interpolation=cv2.INTER_AREA)
        depth_mean = cv2.resize(masked, out_hw, interpolation=cv2.INTER_AREA)
        count = np.rint(valid_mean * stride * stride)
        out_valid = count >= max(1, min_valid_count)
        out = depth_mean / np.maximum(valid_mean, 0.5 / (stride * stride))
    else:  # 'min'
        blocks_valid = valid.reshape(h // stride, stride, w // stride, stride)
        out_valid = blocks_valid.sum(axis=(1, 3)) >= max(1, min_valid_count)
        out = np.where(valid, depth, np.inf).reshape(blocks_valid.shape).min(axis=(1, 3))
    return np.where(out_valid, out, 0).astype(np.float32), out_valid


@TRANSFORMS.register_module()
class LoadDA3Depth(BaseTransform):
    """Load a teacher depth map, warp it like the image and reduce it to the head's stride.

    Reads ``<depth_dir>/<sample_id>.npz`` (key ``depth``, float32 metres). Accepted maps:

    - raw image size (H x W), dense (DA3 files of
      ``tools/dataset_converters/generate_da3_depth.py``) or sparse (LiDAR, 0 = no
      measurement, e.g. ``kitti_mini/lidar_depth``);
    - DA3's processing resolution (e.g. 504 x 154 for KITTI, as written by the reference
      system's tool, with extra ``intrinsics`` / ``extrinsics`` keys that are ignored): same
      aspect ratio up to DA3's rounding of each side to a multiple of 14 px, resized to the raw
      image size first, validity-aware (``resize_interpolation``). ``resize='never'`` refuses
      any other size, ``resize='force'`` also resizes maps of a different aspect ratio.

    Invalid pixels: 0, negative, NaN, inf, and ``> max_depth`` when set (DA3's outdoor models
    saturate near 80 m and sky is unreliable). They never blend into valid ones: warping and
    resizing are nearest or validity-normalised bilinear (:func:`resample_depth`).

    Must run after ``MonoDLEAffineAug``: uses ``ori_shape`` (raw H, W), ``affine_mat`` (raw ->
    network-input pixels, flip included, PIL convention), ``img_shape`` and ``crop_scale``.
    The depth is multiplied by ``crop_scale`` (``scale_by_crop=True``) because MonoDLE's depth
    branch learns ``z * crop_scale`` (a crop that zooms out by ``s`` makes objects look ``s``
    times farther); turning it off gives the teacher in true metres, which then disagrees with
    the depth targets of cropped samples.

    Adds ``gt_depth_map`` (1, H_in / stride, W_in / stride) float32 (0 where invalid),
    ``gt_depth_valid`` (same shape, bool) and ``gt_depth_on_missing`` (``on_missing``);
    ``PackMonoDLEInputs`` packs them into ``data_sample.gt_depth`` (the last as its metainfo
    ``on_missing``). A file without any valid pixel is warned about once per file; a batch
    without any valid pixel stops training (``check_teacher_validity``), or only warns with
    ``on_missing='skip'``.

    Args:
        depth_dir: folder of the ``.npz`` files, absolute or relative to ``data_root``.
        data_root: dataset root. None: derived from ``img_path``
            (``<data_root>/<training|testing>/image_2/<id>.png``), which follows ``data_root``
            overrides of the dataset automatically.
        key: array name inside the ``.npz``.
        stride: output stride of the head.
        interpolation: 'nearest' (default) or 'bilinear' (validity-aware) for the affine warp.
        resize_interpolation: same choice for the processing-resolution -> raw resize;
            'bilinear' by default (a DA3 pixel covers ~2.5 raw pixels).
        downsample: 'mean' (default), 'min' or 'nearest' reduction to the stride
            (:func:`downsample_depth`).
        min_valid_count: valid pixels a stride cell needs (1 keeps sparse LiDAR usable).
        min_depth: values ``<= min_depth`` are invalid (metres, before the crop scale).
        max_depth: values above are invalid (metres, before the crop scale); None: no cap.
        scale_by_crop: multiply by ``crop_scale`` (see above).
        resize: 'auto', 'never' or 'force' (see above).
        aspect_tolerance: relative aspect-ratio difference accepted by ``resize='auto'``.
        on_missing: 'error' (default: FileNotFoundError naming the file) or 'skip' (an
            all-invalid map; one warning per worker process).
        backend_args: mmengine file backend arguments.
        cache: keep every file's map (at the raw image size, before the warp) in memory (this
            process; read-only arrays) and read each file once, as
            ``LoadKittiMonoImage(cache=True)`` does for images (``distill.cache``).
    """

    def __init__(self,
                 depth_dir: str = 'DA3_depth_results',
                 data_root: Optional[str] = None,
                 key: str = 'depth',
                 stride: int = 4,
                 interpolation: str = 'nearest',
                 resize_interpolation: str = 'bilinear',
                 downsample: str = 'mean',
                 min_valid_count: int = 1,
                 min_depth: float = 0.0,
                 max_depth: Optional[float] = None,
                 scale_by_crop: bool = True,
                 resize: str = 'auto',
                 aspect_tolerance: float = 0.05,
                 on_missing: str = 'error',
                 backend_args: Optional[dict] = None,
                 cache: bool = False) -> None:
        for name, value, allowed in (('interpolation', interpolation, tuple(_INTERPOLATIONS)),
                                     ('resize_interpolation', resize_interpolation,
                                      tuple(_INTERPOLATIONS)),
                                     ('downsample', downsample, _DOWNSAMPLE_MODES),
                                     ('resize', resize, _RESIZE_MODES),
                                     ('on_missing', on_missing, _ON_MISSING)):
            if value not in allowed:
                raise ValueError(f'LoadDA3Depth: {name} must be one of {allowed}, got {value!r}')
        for name, value in (('scale_by_crop', scale_by_crop), ('cache', cache)):
            if not isinstance(value, bool):  # 'false' would read as True
                raise TypeError(f'LoadDA3Depth: {name} must be True or False, got {value!r}')
        if stride < 1:
            raise ValueError(f'LoadDA3Depth: stride must be >= 1, got {stride}')
        if min_depth < 0:
            raise ValueError(f'LoadDA3Depth: min_depth must be >= 0 (depth is positive), got '
                             f'{min_depth}')
        if max_depth is not None and max_depth <= min_depth:
            raise ValueError(f'LoadDA3Depth: max_depth {max_depth} <= min_depth {min_depth}')
        self.depth_dir = depth_dir
        self.data_root = data_root
        self.key = key
        self.stride = int(stride)
        self.interpolation = interpolation
        self.resize_interpolation = resize_interpolation
        self.downsample = downsample
        self.min_valid_count = int(min_valid_count)
        self.min_depth = float(min_depth)
        self.max_depth = None if max_depth is None else float(max_depth)
        self.scale_by_crop = scale_by_crop
        self.resize = resize
        self.aspect_tolerance = float(aspect_tolerance)
        self.on_missing = on_missing
        self.backend_args = backend_args
        self.cache = cache
        self._maps: dict = {}  # path -> read-only (depth, valid) at the raw image size
        self._warned_missing = False
        self._warned_invalid: set = set()

    # ------------------------------------------------------------------ paths and reading
    def depth_path(self, results: dict) -> str:
        """``<depth_dir>/<sample_id>.npz`` for this sample."""
        sample_id = results.get('sample_id')
        img_path = results.get('img_path')
        if sample_id is None:
            if img_path is None:
                raise KeyError('LoadDA3Depth needs results["sample_id"] or results["img_path"]')
            sample_id = osp.splitext(osp.basename(img_path))[0]
        if osp.isabs(self.depth_dir):
            root = self.depth_dir
        elif self.data_root is not None:
            root = osp.join(self.data_root, self.depth_dir)
        else:
            image_dir = osp.dirname(img_path or '')
            if osp.basename(image_dir) != 'image_2':
                raise ValueError(
                    f'LoadDA3Depth: cannot derive data_root from img_path {img_path!r} (expected '
                    f'<data_root>/<training|testing>/image_2/<id>.png); set data_root or an '
                    f'absolute depth_dir')
            root = osp.join(osp.dirname(osp.dirname(image_dir)), self.depth_dir)
        return osp.join(root, f'{sample_id}.npz')

    def read_depth(self, path: str) -> np.ndarray:
        """The (H, W) float32 array stored under ``key`` in ``path`` (clear errors otherwise)."""
        try:
            raw = fileio.get(path, backend_args=self.backend_args)
            archive = np.load(io.BytesIO(raw), allow_pickle=False)
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise ValueError('it holds a single .npy array, not an .npz archive')
            with archive:
                if self.key not in archive.files:
                    raise KeyError(f'LoadDA3Depth: {path} has no key {self.key!r} '
                                   f'(keys: {sorted(archive.files)})')
                depth = np.asarray(archive[self.key])
        except (zipfile.BadZipFile, EOFError, ValueError, OSError) as err:
            raise ValueError(f'LoadDA3Depth: cannot read depth file {path}: {err}') from err
        if depth.ndim == 3 and 1 in (depth.shape[0], depth.shape[-1]):
            depth = depth.reshape(depth.shape[:2] if depth.shape[-1] == 1 else depth.shape[1:])
        if depth.ndim != 2 or not np.issubdtype(depth.dtype, np.number):
            raise ValueError(f'LoadDA3Depth: {path}[{self.key!r}] must be a 2D numeric (H, W) '
                             f'array, got shape {depth.shape} dtype {depth.dtype}')
        return depth.astype(np.float32, copy=False)

    def check_size(self, hw: Tuple[int, int], raw_hw: Tuple[int, int], path: str) -> None:
        """``ValueError`` unless a (H, W) depth map can serve an image of ``raw_hw`` (same size,
        or resized as :attr:`resize` allows)."""
        if tuple(hw) == tuple(raw_hw):
            return
        h, w = hw
        raw_h, raw_w = raw_hw
        aspect_diff = abs((w / h) / (raw_w / raw_h) - 1.0)
        if self.resize == 'never' or (self.resize == 'auto'
                                      and aspect_diff > self.aspect_tolerance):
            hint = ("resize='force' resizes it anyway" if self.resize == 'auto'
                    else "resize='auto' accepts the same aspect ratio")
            raise ValueError(
                f'LoadDA3Depth: depth map {path} is {h}x{w} (HxW) but the image is '
                f'{raw_h}x{raw_w}; aspect ratios differ by {100 * aspect_diff:.1f}% ({hint})')

    def to_raw_size(self, depth: np.ndarray, valid: np.ndarray, raw_hw: Tuple[int, int],
                     path: str) -> Tuple[np.ndarray, np.ndarray]:
        """Resize a map of another size (DA3 processing resolution) to the raw image size."""
        if depth.shape == tuple(raw_hw):
            return depth, valid
        self.check_size(depth.shape, raw_hw, path)
        raw_h, raw_w = raw_hw
        return resample_depth(depth, valid, (raw_w, raw_h), self.resize_interpolation)

    # ------------------------------------------------------------------ transform
    def transform(self, results: dict) -> dict:
        for key in ('affine_mat', 'img_shape', 'ori_shape'):
            if key not in results:
                raise KeyError(f'LoadDA3Depth needs results[{key!r}]: put it after '
                               f'MonoDLEAffineAug in the pipeline')
        in_h, in_w = results['img_shape'][:2]
        out_hw = (in_h // self.stride, in_w // self.stride)
        path = self.depth_path(results)
        results['gt_depth_on_missing'] = self.on_missing
        if path in self._maps:
            return self._warp(results, *self._maps[path])
        if not fileio.exists(path, backend_args=self.backend_args):
            if self.on_missing == 'error':
                raise FileNotFoundError(
                    f'LoadDA3Depth: depth file {path} not found (generate it with '
                    f"tools/dataset_converters/generate_da3_depth.py, or set on_missing='skip')")
            if not self._warned_missing:
                warnings.warn(f'LoadDA3Depth: depth file {path} not found; this and further '
                              f'missing files give all-invalid maps (warned once)', UserWarning,
                              stacklevel=2)
                self._warned_missing = True
            results['gt_depth_map'] = np.zeros((1, *out_hw), dtype=np.float32)
            results['gt_depth_valid'] = np.zeros((1, *out_hw), dtype=bool)
            return results

        depth = self.read_depth(path)
        valid = depth_validity(depth, self.min_depth, self.max_depth)
        if not valid.any() and path not in self._warned_invalid:
            self._warned_invalid.add(path)  # once per file (and worker process)
            warnings.warn(f'LoadDA3Depth: depth file {path} has no valid pixel (all NaN, inf, '
                          f'<= {self.min_depth} or > max_depth={self.max_depth}): no '
                          'distillation on this frame; check it with '
                          'tools/misc/check_depth_labels.py', UserWarning, stacklevel=2)
        depth, valid = self.to_raw_size(depth, valid, tuple(results['ori_shape'][:2]), path)
        if self.cache:
            depth.setflags(write=False)
            valid.setflags(write=False)
            self._maps[path] = (depth, valid)
        return self._warp(results, depth, valid)

    def _warp(self, results: dict, depth: np.ndarray, valid: np.ndarray) -> dict:
        """Raw-size (H, W) map -> ``gt_depth_map`` / ``gt_depth_valid`` at the head's stride."""
        in_h, in_w = results['img_shape'][:2]
        depth, valid = resample_depth(depth, valid, (in_w, in_h), self.interpolation,
                                      pil_to_cv2_affine(results['affine_mat']))
        depth, valid = downsample_depth(depth, valid, self.stride, self.downsample,
                                        self.min_valid_count)
        if self.scale_by_crop:
            depth = depth * np.float32(results.get('crop_scale', 1.0))
        results['gt_depth_map'] = depth[None].astype(np.float32)
        results['gt_depth_valid'] = valid[None]
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(depth_dir={self.depth_dir!r}, key={self.key!r}, '
                f'stride={self.stride}, interpolation={self.interpolation!r}, '
                f'downsample={self.downsample!r}, max_depth={self.max_depth}, '
                f'scale_by_crop={self.scale_by_crop}, resize={self.resize!r}, '
                f'on_missing={self.on_missing!r})')

"""Loading of the KITTI left colour image with its calibration, and of the annotations."""
from typing import Optional

import numpy as np
from mmcv.transforms import LoadImageFromFile
from mmdet3d.datasets.transforms import LoadAnnotations3D
from mmdet3d.registry import TRANSFORMS

from ...structures.geometry import pad_cam2img
from ..kitti_io import read_calib


@TRANSFORMS.register_module()
class LoadKittiMonoImage(LoadImageFromFile):
    """Load ``results['img_path']`` (BGR uint8, H x W x 3) and the frame's P2.

    mmcv's loader, plus: ``cam2img`` (4x4 float64 array; from ``results['cam2img']`` when the
    dataset gave it, else read from ``results['calib_path']``), ``ori_cam2img`` (a copy, the raw
    P2 kept through flips) and an ``OSError`` naming the file when the image cannot be read or
    decoded (mmcv only asserts). mmdet3d's ``LoadImageFromFileMono3D`` expects the multi-camera
    ``images`` dict of info files, which the raw-layout dataset does not build.

    Adds: ``img``, ``img_shape``, ``ori_shape`` (raw H, W), ``cam2img``, ``ori_cam2img``.
    An image already decoded (``results['img']``, BGR uint8 (H, W, 3): a video frame of
    :class:`~monodle_plugin.apis.MonoDLEInferencer`) is used as is instead of reading the file.

    Args:
        cache: keep every decoded image in memory (this process; read-only arrays, so a later
            transform that would write into one fails loudly) and decode each file once:
            PNG decoding is about 7 ms of a 1242 x 375 KITTI frame. For small sets trained
            with ``num_workers=0`` or ``persistent_workers=True`` (each worker holds its own
            copy; workers re-created every epoch start empty): 1.4 MB per KITTI frame.
        **kwargs: ``mmcv.transforms.LoadImageFromFile``'s arguments.
    """

    def __init__(self, cache: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        if not isinstance(cache, bool):  # 'false' would turn caching on
            raise TypeError(f'LoadKittiMonoImage: cache must be True or False, got {cache!r}')
        self.cache = cache
        self._decoded: dict = {}  # img_path -> read-only decoded image

    def transform(self, results: dict) -> Optional[dict]:
        filename = results['img_path']
        try:
            if isinstance(results.get('img'), np.ndarray):  # decoded by the caller
                img = results['img']
                out = dict(results, img=img.astype(np.float32) if self.to_float32 else img,
                           img_shape=img.shape[:2], ori_shape=img.shape[:2])
            elif filename in self._decoded:
                img = self._decoded[filename]
                out = dict(results, img=img, img_shape=img.shape[:2], ori_shape=img.shape[:2])
            else:
                out = super().transform(results)
                if self.cache and out is not None:
                    out['img'].setflags(write=False)
                    self._decoded[filename] = out['img']
        except AssertionError:
            raise OSError(f'{filename}: image could not be decoded (corrupt or not an image)') \
                from None
        except Exception as e:  # noqa: BLE001 - re-raised with the file name
            raise OSError(f'{filename}: image could not be read ({type(e).__name__}: {e})') \
                from e
        if out is None:  # ignore_empty=True
            return None
        cam2img = pad_cam2img(out['cam2img'] if 'cam2img' in out
                              else read_calib(out['calib_path'])['cam2img'])
        out['cam2img'] = cam2img
        out['ori_cam2img'] = cam2img.copy()
        return out


@TRANSFORMS.register_module()
class LoadMonoDLEAnnotations(LoadAnnotations3D):
    """mmdet3d's annotation loader, plus MonoDLE's per-object ``gt_alphas`` and ``gt_difficulty``.

    Copies from ``results['ann_info']`` (built by :class:`MonoDLEKittiDataset`):
    ``gt_bboxes`` (N, 4) raw pixels, ``gt_bboxes_labels``, ``gt_bboxes_3d``, ``gt_labels_3d``,
    ``centers_2d`` (N, 2) raw pixels, ``depths`` (N,) metres, ``gt_alphas`` (N,) radians,
    ``gt_difficulty`` (N,) MonoDLE level; with ``with_names`` also ``gt_names`` (N,) str (for a
    head writelist with names outside the classes, e.g. MonoDLE's Van / Truck / DontCare;
    pack them with ``PackMonoDLEInputs(keys=[..., 'gt_names'])``).
    """

    def __init__(self, with_alpha: bool = True, with_difficulty: bool = True,
                 with_names: bool = False, **kwargs) -> None:
        kwargs.setdefault('with_bbox_3d', True)
        kwargs.setdefault('with_label_3d', True)
        kwargs.setdefault('with_bbox', True)
        kwargs.setdefault('with_label', True)
        kwargs.setdefault('with_bbox_depth', True)
        super().__init__(**kwargs)
        self.with_alpha = with_alpha
        self.with_difficulty = with_difficulty
        self.with_names = with_names

    def transform(self, results: dict) -> dict:
        results = super().transform(results)
        if self.with_alpha:
            results['gt_alphas'] = results['ann_info']['gt_alphas']
        if self.with_difficulty:
            results['gt_difficulty'] = results['ann_info']['gt_difficulty']
        if self.with_names:
            results['gt_names'] = results['ann_info']['gt_names']
        return results

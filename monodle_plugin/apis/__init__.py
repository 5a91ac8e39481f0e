"""Inference: :class:`MonoDLEInferencer` (any camera, images / folders / globs / videos, a
checkpoint alone is enough) and the lower-level helpers of ``tools/demo.py``."""
from monodle_kitti.frames import list_sources
from monodle_kitti.intrinsics import FORMS, Intrinsics, IntrinsicsError

from .inference import (
    build_detector,
    calib_path_for,
    detect_image,
    init_detector,
    kitti_sibling,
    list_images,
)
from .inferencer import MonoDLEInferencer

__all__ = ['FORMS', 'Intrinsics', 'IntrinsicsError', 'MonoDLEInferencer', 'build_detector',
           'calib_path_for', 'detect_image', 'init_detector', 'kitti_sibling', 'list_images',
           'list_sources']

"""Inference helpers for images with a KITTI calibration (``tools/demo.py``)."""
from .inference import build_detector, calib_path_for, detect_image, kitti_sibling, list_images

__all__ = ['build_detector', 'calib_path_for', 'detect_image', 'kitti_sibling', 'list_images']

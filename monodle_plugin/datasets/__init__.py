"""Datasets and data transforms."""
from . import transforms  # noqa: F401
from .kitti_io import KittiFormatError
from .kitti_mono3d_dataset import MonoDLEKittiDataset

__all__ = ['KittiFormatError', 'MonoDLEKittiDataset']

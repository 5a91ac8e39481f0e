"""Moved to :mod:`monodle_kitti.rotated_iou` (torch-free): the same module object."""
import sys

import monodle_kitti.rotated_iou

sys.modules[__name__] = monodle_kitti.rotated_iou

"""Moved to :mod:`monodle_kitti.kitti_matching` (torch-free): the same module object."""
import sys

import monodle_kitti.kitti_matching

sys.modules[__name__] = monodle_kitti.kitti_matching

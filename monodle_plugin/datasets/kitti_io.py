"""Moved to :mod:`monodle_kitti.kitti_io` (torch-free): the same module object."""
import sys

import monodle_kitti.kitti_io

sys.modules[__name__] = monodle_kitti.kitti_io

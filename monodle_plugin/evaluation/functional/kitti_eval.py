"""Moved to :mod:`monodle_kitti.kitti_eval` (torch-free): the same module object."""
import sys

import monodle_kitti.kitti_eval

sys.modules[__name__] = monodle_kitti.kitti_eval

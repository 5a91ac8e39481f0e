"""Moved to :mod:`monodle_kitti.box_overlaps` (torch-free): the same module object."""
import sys

import monodle_kitti.box_overlaps

sys.modules[__name__] = monodle_kitti.box_overlaps

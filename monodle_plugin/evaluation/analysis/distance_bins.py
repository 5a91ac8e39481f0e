"""Moved to :mod:`monodle_kitti.distance_bins` (torch-free): the same module object."""
import sys

import monodle_kitti.distance_bins

sys.modules[__name__] = monodle_kitti.distance_bins

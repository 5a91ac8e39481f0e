"""Moved to :mod:`monodle_kitti.classes` (torch-free): the same module object."""
import sys

import monodle_kitti.classes

sys.modules[__name__] = monodle_kitti.classes

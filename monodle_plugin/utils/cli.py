"""Moved to :mod:`monodle_kitti.cli` (torch-free): the same module object."""
import sys

import monodle_kitti.cli

sys.modules[__name__] = monodle_kitti.cli

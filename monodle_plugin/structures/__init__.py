"""Plain data structures and geometry shared by every part of the package (numpy / torch only).

One home per idea: the class order (:mod:`.classes`) and small camera geometry
(:mod:`.geometry`). Nothing here registers components.
"""
from .classes import KITTI_CLASSES, MONODLE_CLASSES
from .geometry import pad_cam2img

__all__ = ['KITTI_CLASSES', 'MONODLE_CLASSES', 'pad_cam2img']

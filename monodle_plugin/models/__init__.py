# task_modules registers MonoDLEBBoxCoder in TASK_UTILS; it is not in __all__ (not a MODELS class)
from . import backbones, dense_heads, detectors, losses, necks, task_modules  # noqa: F401
from .backbones import *  # noqa: F401,F403
from .dense_heads import *  # noqa: F401,F403
from .detectors import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .necks import *  # noqa: F401,F403

__all__ = (backbones.__all__ + dense_heads.__all__ + detectors.__all__ + losses.__all__
           + necks.__all__)

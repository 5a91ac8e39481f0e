"""MonoDLE as an OpenMMLab / MMDetection3D plugin.

Importing this package registers every component into mmdet3d's registries
(``MODELS``, ``TRANSFORMS``, ``DATASETS``, ``METRICS``, ``HOOKS``, ``PARAM_SCHEDULERS``).
Importing it twice is harmless: Python caches the modules, so registration runs once.
"""
from .utils.env_check import check_environment

check_environment()

from . import datasets, engine, evaluation, models  # noqa: E402,F401
from .version import __version__  # noqa: E402

__all__ = ['__version__', 'check_environment']

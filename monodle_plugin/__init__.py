"""MonoDLE as an OpenMMLab / MMDetection3D plugin.

Importing this package registers every component into mmdet3d's registries
(``MODELS``, ``TASK_UTILS``, ``TRANSFORMS``, ``DATASETS``, ``METRICS``, ``HOOKS``,
``PARAM_SCHEDULERS``) and does nothing else: no environment check, no change of
``os.environ``. Importing it twice is harmless: Python caches the modules, so registration
runs once. The entry points (``tools/*.py``, ``make env``) run the one-line environment check
(:func:`monodle_plugin.utils.env_check.check_environment`); when the import itself fails on a
broken stack, the error says which piece is wrong and how to fix it.

Importing any module of this package runs this ``__init__`` first, so code that must not import
torch (KITTI I/O, the CPU evaluation, ``run_cli``: ``tools/kitti_eval.py``,
``tools/deployment/ort_infer.py``) lives in the sibling package ``monodle_kitti``; its old names
here (``monodle_plugin.datasets.kitti_io``, ``monodle_plugin.evaluation.functional.kitti_eval``,
...) are the same module objects.
"""
try:
    from . import datasets, engine, evaluation, models  # noqa: F401
    from . import apis  # noqa: F401,I001  (MonoDLEInferencer into INFERENCERS; needs the above)
except ImportError as err:  # a broken stack: name the wrong piece instead of a deep traceback
    from .utils.env_check import raise_if_environment_broken
    raise_if_environment_broken(err)
    raise
from .version import __version__  # noqa: E402

__all__ = ['__version__']

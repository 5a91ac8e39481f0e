"""One-line checks of the OpenMMLab stack this plugin is tested against.

A wrong environment (mmcv built without its ops, numpy 2, mmdet3d missing, version clash)
fails with one line that names the wrong piece and the fix, instead of an obscure error deep
inside mmdet3d. The entry points (``tools/train.py``, ``test.py``, ``demo.py``, ...) call
:func:`check_environment` first; ``python -m monodle_plugin.utils.env_check`` (``make env``)
prints the versions. ``import monodle_plugin`` does not run the check (import registers
components and nothing else); only when that import fails does it add the check's findings
(:func:`raise_if_environment_broken`).
"""
from __future__ import annotations

import importlib
import importlib.util
import os
from typing import Optional, Tuple

from monodle_kitti.cli import BrokenEnvironmentError  # a user error of the tools: one line

_FIX = 'run `make env` (or tools/env/setup_env.sh) to install the tested matrix'
#: what mmcv.ops.get_compiling_cuda_version() returns for ops compiled without CUDA
NO_CUDA = 'not available'


def _version_tuple(version: str) -> tuple:
    parts = []
    for piece in version.split('+')[0].split('.'):
        digits = ''.join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def environment_problems() -> list[str]:
    """Return a list of one-line problems with the environment (empty if all is well)."""
    problems = []
    for name in ('torch', 'numpy', 'mmengine', 'mmcv', 'mmdet', 'mmdet3d'):
        if importlib.util.find_spec(name) is None:
            problems.append(f'{name} is not installed; {_FIX}')
    if problems:
        return problems
    import numpy
    if _version_tuple(numpy.__version__) >= (2, ):
        problems.append(f'numpy {numpy.__version__} is installed but mmdet3d 1.4 / '
                        f'nuscenes-devkit need numpy<2; {_FIX}')
    import mmcv
    if not ((2, 0) <= _version_tuple(mmcv.__version__) < (2, 2)):
        problems.append(f'mmcv {mmcv.__version__} is installed but mmdet3d 1.4 needs '
                        f'mmcv>=2.0,<2.2 (tested: 2.1.0); {_FIX}')
    elif importlib.util.find_spec('mmcv._ext') is None:
        problems.append('mmcv is installed without its compiled ops (mmcv._ext missing: '
                        f'mmcv-lite or MMCV_WITH_OPS=0 build); {_FIX}')
    return problems


def check_environment() -> None:
    """Raise ``ImportError`` with one clear line if the environment is wrong."""
    problems = environment_problems()
    if problems:
        raise BrokenEnvironmentError('monodle_plugin: ' + ' | '.join(problems))


def raise_if_environment_broken(err: BaseException) -> None:
    """Raise the one-line environment error, chained to ``err``, if the stack is wrong.

    Called by ``monodle_plugin/__init__.py`` when importing the components failed; returns
    (so the caller re-raises ``err``) when the environment looks right and the failing import
    is one of this package's own modules (a bug: its traceback matters). An installed
    third-party package that fails to import (a broken build, an ABI clash) is named.
    """
    problems = environment_problems()
    if problems:
        raise BrokenEnvironmentError('monodle_plugin: ' + ' | '.join(problems)) from err
    where = _failing_package(err)
    if where is not None and where not in ('monodle_plugin', 'monodle_kitti'):
        raise BrokenEnvironmentError(
            f'monodle_plugin: the installed {where} cannot be imported ({type(err).__name__}: '
            f'{err}); {_FIX}') from err


def _failing_package(err: BaseException) -> Optional[str]:
    """Top-level package of the innermost source file in ``err``'s traceback: the highest
    folder above it that holds an ``__init__.py`` (the file's own name for a lone module;
    None when no frame is a file)."""
    import traceback
    for frame in reversed(traceback.extract_tb(err.__traceback__)):
        if not os.path.isfile(frame.filename):  # <frozen importlib._bootstrap>
            continue
        folder = os.path.dirname(frame.filename)
        top = os.path.splitext(os.path.basename(frame.filename))[0]
        while os.path.isfile(os.path.join(folder, '__init__.py')):
            folder, top = os.path.dirname(folder), os.path.basename(folder)
        return top
    return None


def mmcv_cuda_ops(force_cuda: bool) -> Tuple[str, Optional[str]]:
    """Whether mmcv's compiled ops include CUDA: a report line and, if any, a problem.

    mmcv's ops run on GPU tensors only when compiled with CUDA (``FORCE_CUDA=1 make env``);
    in this package only ``--sync_bn mmcv`` (mmcv's SyncBatchNorm) needs that. Ops without CUDA
    are reported (not an error) when CUDA is available at run time, and are a problem when
    ``force_cuda`` (``FORCE_CUDA=1`` in the environment of ``make env``) asked for them.

    Args:
        force_cuda: the CUDA ops were asked for.

    Returns:
        ``(line, problem)``: the line printed by :func:`main`; ``problem`` is None or one line.
    """
    import torch
    from mmcv.ops import get_compiling_cuda_version
    compiled = get_compiling_cuda_version()
    if compiled != NO_CUDA:
        return f'{"mmcv ops":12s} compiled with CUDA {compiled}', None
    if force_cuda:
        return (f'{"mmcv ops":12s} CPU only',
                'FORCE_CUDA=1 but mmcv\'s ops were compiled without CUDA '
                f'(mmcv.ops.get_compiling_cuda_version(): {NO_CUDA}); FORCE_CUDA=1 make env '
                'installs them')
    if torch.cuda.is_available():
        return (f'{"mmcv ops":12s} CPU only, although CUDA is available (this package needs '
                "mmcv's CUDA ops only for --sync_bn mmcv: FORCE_CUDA=1 make env)", None)
    return f'{"mmcv ops":12s} CPU only', None


def main() -> None:
    """Print the versions of the stack, or the problems and exit 1.

    With ``FORCE_CUDA=1`` in the environment, mmcv's ops without CUDA are a problem
    (:func:`mmcv_cuda_ops`).
    """
    found = environment_problems()
    if not found:
        ops_line, problem = mmcv_cuda_ops(os.environ.get('FORCE_CUDA') == '1')
        found = [problem] if problem else []
    if found:
        print('\n'.join(found))
        raise SystemExit(1)
    for mod in ('torch', 'numpy', 'mmengine', 'mmcv', 'mmdet', 'mmdet3d', 'ultralytics'):
        module = importlib.import_module(mod)
        print(f'{mod:12s} {module.__version__}')
    print(ops_line)
    print('environment OK')


if __name__ == '__main__':
    main()

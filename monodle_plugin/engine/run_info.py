"""Start-up record of a training run: effective batch / lr, backend, SyncBN, versions, seed, git.

Logged through the Runner's logger (so it lands in ``<work_dir>/<timestamp>/<timestamp>.log``)
and written to ``<work_dir>/<timestamp>/run_info.json``. AP on KITTI varies by about +-1 between
identical runs; this record is what makes two runs comparable.
"""
from __future__ import annotations

import json
import os.path as osp
import subprocess
from typing import Optional

from mmengine.dist import is_main_process


def _git_describe(path: str) -> Optional[str]:
    try:
        out = subprocess.run(['git', '-C', path, 'rev-parse', '--short', 'HEAD'],
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def collect_run_info(runner, plan=None, backend: Optional[str] = None) -> dict:
    """Dict of what determines the run's numbers besides the config itself."""
    import mmcv
    import mmdet
    import mmdet3d
    import mmengine
    import numpy
    import torch

    import monodle_plugin
    repo = osp.dirname(osp.dirname(osp.abspath(monodle_plugin.__file__)))
    randomness = dict(runner.cfg.get('randomness', {}) or {})
    info = dict(
        monodle_plugin=monodle_plugin.__version__, git_commit=_git_describe(repo),
        torch=torch.__version__, cuda=torch.version.cuda if torch.cuda.is_available() else None,
        mmengine=mmengine.__version__, mmcv=mmcv.__version__, mmdet=mmdet.__version__,
        mmdet3d=mmdet3d.__version__, numpy=numpy.__version__,
        world_size=runner.world_size, dist_backend=backend,
        sync_bn=runner.cfg.get('sync_bn', None), seed=runner.seed,
        deterministic=randomness.get('deterministic', False))
    if plan is not None:
        info.update(total_batch=plan.total, per_process_batch=plan.per_gpu,
                    reference_total_batch=plan.reference_total,
                    base_batch_size=plan.base_batch_size, config_lr=plan.config_lr,
                    effective_lr=plan.lr, lr_scaled=plan.scale_lr)
    return info


def batchnorm_note(runner, plan) -> Optional[str]:
    """The line saying where BatchNorm statistics come from, when that is the per-process
    batch of a multi-process run (no ``sync_bn``, a BatchNorm in train mode); else None."""
    if plan is None or runner.world_size <= 1 or runner.cfg.get('sync_bn', None):
        return None
    from mmengine.model import is_model_wrapper

    from ..models.utils.freezing import has_batchnorm_in_train_mode
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    if not has_batchnorm_in_train_mode(model):
        return None
    return (f'BatchNorm statistics come from each process\'s batch of {plan.per_gpu} image(s), '
            f'not from the total batch of {plan.total}: --sync_bn torch (or mmcv; config key '
            f'sync_bn) computes them over all {runner.world_size} processes.')


def log_run_info(runner, plan=None, backend: Optional[str] = None) -> dict:
    """Log the batch / lr line (and :func:`batchnorm_note`) and the run record; write
    ``run_info.json`` (rank 0)."""
    info = collect_run_info(runner, plan, backend)
    if plan is not None:
        runner.logger.info(plan.describe())
    note = batchnorm_note(runner, plan)
    if note is not None:
        runner.logger.info(note)
    runner.logger.info('Run info: ' + ', '.join(f'{k}={v}' for k, v in info.items()))
    if is_main_process():
        with open(osp.join(runner.log_dir, 'run_info.json'), 'w') as f:
            json.dump(info, f, indent=2)
    return info

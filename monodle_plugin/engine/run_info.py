"""Start-up record of a training run: effective batch / lr, backend, versions, seed, git.

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
        world_size=runner.world_size, dist_backend=backend, seed=runner.seed,
        deterministic=randomness.get('deterministic', False))
    if plan is not None:
        info.update(total_batch=plan.total, per_process_batch=plan.per_gpu,
                    reference_total_batch=plan.reference_total,
                    base_batch_size=plan.base_batch_size, config_lr=plan.config_lr,
                    effective_lr=plan.lr, lr_scaled=plan.scale_lr)
    return info


def log_run_info(runner, plan=None, backend: Optional[str] = None) -> dict:
    """Log the batch / lr line and the run record; write ``run_info.json`` (rank 0)."""
    info = collect_run_info(runner, plan, backend)
    if plan is not None:
        runner.logger.info(plan.describe())
    runner.logger.info('Run info: ' + ', '.join(f'{k}={v}' for k, v in info.items()))
    if is_main_process():
        with open(osp.join(runner.log_dir, 'run_info.json'), 'w') as f:
            json.dump(info, f, indent=2)
    return info

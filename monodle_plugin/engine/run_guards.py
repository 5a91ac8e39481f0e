"""What ``MonoDLERunner`` checks and adds besides the batch rule and the distillation switches,
under any tool (ours, mmdet3d's stock ``tools/train.py`` / ``tools/test.py``):

- :func:`guard_config`, on the config before anything is built: a top-level config variable
  changed after the file was read (``--cfg-options data_root=...``) is an error naming the
  keys to set (:func:`monodle_plugin.utils.config_checks.check_top_level_overrides`);
- :func:`own_run_folder`, around the runner's construction: two runs started at once into one
  work dir get two run folders (mmengine names the folder by the second it starts in; two
  runs in the same second shared one: one log with both runs, one run's checkpoint beside
  the other's config);
- :func:`guard_runner`, on the built runner: ``FiniteLossHook`` (a NaN / infinite loss stops
  training before a checkpoint is written) and ``ResumeCheckHook`` (``--resume`` into another
  model or another total batch / lr is refused; the batch plan is saved in checkpoints).
"""
from __future__ import annotations

import contextlib
import os
import os.path as osp
import time
from typing import Iterator

from ..utils.config_checks import check_top_level_overrides

#: lock file in the work dir, held while a run creates its run folder
START_LOCK = '.run_start.lock'
#: environment variables holding the process rank, per launcher (rank 0 names the run folder)
_RANK_VARS = ('RANK', 'SLURM_PROCID', 'OMPI_COMM_WORLD_RANK')


def guard_config(cfg) -> None:
    """Checks of ``cfg`` (an mmengine ``Config``, read only) before the runner is built."""
    check_top_level_overrides(cfg)


def _launcher_rank(launcher: str) -> int:
    if launcher == 'none':
        return 0
    for var in _RANK_VARS:
        if os.environ.get(var, '').isdigit():
            return int(os.environ[var])
    return 0


@contextlib.contextmanager
def own_run_folder(work_dir: str, launcher: str = 'none', poll_s: float = 0.05) -> Iterator[None]:
    """Hold ``<work_dir>/.run_start.lock`` (``fcntl.flock``) while the runner is built, after
    waiting for a second whose run folder ``<work_dir>/<YYYYmmdd_HHMMSS>`` does not exist yet.

    mmengine's Runner creates ``<work_dir>/<timestamp>`` (second resolution), truncates the log
    and dumps the config there while it is built: a second run started in the same second
    (another terminal, a job array) used the same folder. Under this lock a run starts building
    only in a second no other run has a folder for, and other runs wait until its folder
    exists, so every run gets its own. Rank 0 only (its timestamp names the folder of all
    ranks); released when the block ends, on an error too (and by the OS if the process dies).
    """
    if _launcher_rank(launcher) != 0:
        yield
        return
    import fcntl
    os.makedirs(work_dir, exist_ok=True)
    with open(osp.join(work_dir, START_LOCK), 'a') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            while osp.exists(osp.join(work_dir, time.strftime('%Y%m%d_%H%M%S'))):
                time.sleep(poll_s)  # a run of this second exists: wait for the next second
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def guard_runner(runner) -> None:
    """Register the guard hooks on ``runner`` unless the config already has them."""
    from .hooks import FiniteLossHook, ResumeCheckHook
    for hook in (FiniteLossHook, ResumeCheckHook):
        if not any(isinstance(h, hook) for h in runner.hooks):
            runner.register_hook(hook())


__all__ = ['START_LOCK', 'guard_config', 'guard_runner', 'own_run_folder']

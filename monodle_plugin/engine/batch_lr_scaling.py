"""The batch-size / learning-rate rule of the training tools (design.md, "Configs").

Configs carry the reference **total** batch (``total_batch_size = 16``) and the lr tuned for it
(``optim_wrapper.optimizer.lr``), plus ``auto_scale_lr = dict(enable=False, base_batch_size=16)``.
On ``W`` processes the per-process batch is ``total_batch_size // W`` unless the user sets
``train_dataloader.batch_size`` explicitly; when the effective total ``per_gpu * W`` differs
from ``base_batch_size`` the lr is scaled linearly (mmengine's ``auto_scale_lr``):

    lr = lr_config * (per_gpu * W) / base_batch_size

Same total batch -> same lr, and (with the head's global-count loss normalisation) the same
gradients as one process on the whole batch. This module only computes and describes the plan;
``tools/train.py`` applies it to the config before the Runner is built.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional


@dataclass
class BatchPlan:
    """Effective batch and lr of one training run.

    Attributes:
        world_size: number of training processes (GPUs).
        per_gpu: samples per process and iteration (``train_dataloader.batch_size``).
        reference_total: the config's ``total_batch_size`` (None if the config has none).
        base_batch_size: the total batch the config lr was tuned for.
        config_lr: ``optim_wrapper.optimizer.lr`` as written in the config.
        scale_lr: whether the lr is scaled linearly (auto_scale_lr enabled).
        batch_from_user: True when the per-process batch came from the user, not the rule.
    """

    world_size: int
    per_gpu: int
    reference_total: Optional[int]
    base_batch_size: Optional[int]
    config_lr: Optional[float]
    scale_lr: bool
    batch_from_user: bool

    @property
    def total(self) -> int:
        """Effective total batch per optimiser step (all processes)."""
        return self.per_gpu * self.world_size

    @property
    def lr_ratio(self) -> float:
        """Linear-scaling factor applied to the config lr (1.0 when not scaled)."""
        if not self.scale_lr or not self.base_batch_size:
            return 1.0
        return self.total / self.base_batch_size

    @property
    def lr(self) -> Optional[float]:
        """Effective base lr (before the schedule's warm-up / decay)."""
        return None if self.config_lr is None else self.config_lr * self.lr_ratio

    def describe(self) -> str:
        """One log line stating the effective total batch and lr, and where they come from."""
        source = ('train_dataloader.batch_size set by the user' if self.batch_from_user else
                  f'total_batch_size {self.reference_total} // {self.world_size} processes'
                  if self.reference_total is not None else
                  'train_dataloader.batch_size of the config (no total_batch_size)')
        text = (f'Effective total batch {self.total} = {self.world_size} process(es) x '
                f'{self.per_gpu} per process ({source}); ')
        if self.config_lr is None:
            return text + 'lr: not found in optim_wrapper.optimizer.'
        if self.scale_lr:
            text += (f'lr {self.lr:.6g} = config lr {self.config_lr:.6g} x {self.total}/'
                     f'{self.base_batch_size} (linear scaling, auto_scale_lr enabled)')
        else:
            text += f'lr {self.lr:.6g} (config lr, not scaled'
            if self.base_batch_size and self.total != self.base_batch_size:
                text += (f'; WARNING: the config lr is tuned for a total batch of '
                         f'{self.base_batch_size}, linear scaling would give '
                         f'{self.config_lr * self.total / self.base_batch_size:.6g}')
            text += ')'
        return text + '.'


def world_size_from_env(launcher: str) -> int:
    """Number of processes the launcher started, read before ``init_process_group``.

    Args:
        launcher: ``'none'``, ``'pytorch'`` (torchrun: ``WORLD_SIZE``), ``'slurm'``
            (``SLURM_NTASKS``) or ``'mpi'`` (``OMPI_COMM_WORLD_SIZE``).
    """
    if launcher == 'none':
        return 1
    var = {'pytorch': 'WORLD_SIZE', 'slurm': 'SLURM_NTASKS', 'mpi': 'OMPI_COMM_WORLD_SIZE'}
    if launcher not in var:
        raise ValueError(f'unknown launcher {launcher!r}; expected one of none, '
                         f'{", ".join(var)}')
    value = os.environ.get(var[launcher])
    if value is None:
        raise RuntimeError(f'--launcher {launcher} but the environment variable {var[launcher]} '
                           f'is not set: start the script with torchrun / srun / mpirun '
                           f'(e.g. tools/dist_train.sh CONFIG GPUS)')
    return int(value)


def plan_batch(cfg, world_size: int, batch_from_user: bool, scale_lr: Optional[bool] = None
               ) -> BatchPlan:
    """Work out the per-process batch and whether the lr is scaled, for ``cfg``.

    Args:
        cfg: an mmengine ``Config`` (read only).
        world_size: number of processes.
        batch_from_user: True when the user set ``train_dataloader.batch_size`` (then it is
            kept as the per-process batch).
        scale_lr: True forces linear scaling (``--auto-scale-lr``), False forbids it
            (``--no-scale-lr``), None scales exactly when the effective total differs from
            ``auto_scale_lr.base_batch_size`` (or when the config enables it itself).

    Raises:
        ValueError: more processes than the reference total batch, or a non-positive batch.
    """
    if world_size < 1:
        raise ValueError(f'world size must be >= 1, got {world_size}')
    reference_total = cfg.get('total_batch_size', None)
    if batch_from_user or reference_total is None:
        per_gpu = int(cfg.train_dataloader.batch_size)
    else:
        reference_total = int(reference_total)
        per_gpu = reference_total // world_size
        if per_gpu < 1:
            raise ValueError(f'total_batch_size {reference_total} is smaller than the number of '
                             f'processes {world_size}: set train_dataloader.batch_size '
                             f'(per process) or a larger total_batch_size via --cfg-options')
    if per_gpu < 1:
        raise ValueError(f'train_dataloader.batch_size must be >= 1, got {per_gpu}')

    auto_cfg = cfg.get('auto_scale_lr', None) or {}
    base = auto_cfg.get('base_batch_size', reference_total)
    config_enabled = bool(auto_cfg.get('enable', False))
    optimizer = cfg.get('optim_wrapper', {}).get('optimizer', {}) or {}
    config_lr = optimizer.get('lr', None)
    if scale_lr is None:
        scale_lr = config_enabled or (base is not None and per_gpu * world_size != int(base))
    if scale_lr and base is None:
        raise ValueError('lr scaling requested but the config has neither '
                         'auto_scale_lr.base_batch_size nor total_batch_size')
    return BatchPlan(world_size=world_size, per_gpu=per_gpu,
                     reference_total=None if reference_total is None else int(reference_total),
                     base_batch_size=None if base is None else int(base),
                     config_lr=None if config_lr is None else float(config_lr),
                     scale_lr=bool(scale_lr), batch_from_user=batch_from_user)


def apply_batch_plan(cfg, plan: BatchPlan) -> None:
    """Write ``plan`` into ``cfg``: per-process batch and mmengine's ``auto_scale_lr``.

    mmengine's Runner then scales every param group's lr by ``world_size * batch_size /
    base_batch_size`` (``Runner.scale_lr``), i.e. exactly ``plan.lr_ratio``.
    """
    cfg.train_dataloader.batch_size = plan.per_gpu
    if plan.scale_lr:
        cfg.auto_scale_lr = dict(enable=True, base_batch_size=plan.base_batch_size)
    elif cfg.get('auto_scale_lr', None) is not None:
        cfg.auto_scale_lr.enable = False

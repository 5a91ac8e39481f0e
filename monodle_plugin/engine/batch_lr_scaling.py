"""The batch-size / learning-rate rule (design.md, "Batch and lr"), applied by MonoDLERunner.

Configs carry the reference **total** batch (``total_batch_size = 16``), the lr tuned for it
(``optim_wrapper.optimizer.lr``), ``train_dataloader.batch_size='auto'`` and
``auto_scale_lr = dict(enable=True, base_batch_size=16)``. On ``W`` processes the per-process
batch is ``total_batch_size // W`` unless ``train_dataloader.batch_size`` is an integer (then
it is the per-process batch), and mmengine scales the lr linearly:

    lr = lr_config * (per_gpu * W) / base_batch_size

Same total batch -> same lr, and (with the head's global-count loss normalisation) the same
gradients as one process on the whole batch. This module computes and describes the plan;
``MonoDLERunner.from_cfg`` applies it before the Runner is built, whatever tool builds it.
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
        batch_from_user: True when the per-process batch was an integer in the config (or
            ``--cfg-options``), not ``'auto'``.
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
        source = ('train_dataloader.batch_size set per process' if self.batch_from_user else
                  f'total_batch_size {self.reference_total} // {self.world_size} processes'
                  if self.reference_total is not None else
                  'train_dataloader.batch_size of the config')
        text = (f'Effective total batch {self.total} = {self.world_size} process(es) x '
                f'{self.per_gpu} per process ({source}); ')
        if self.config_lr is None:
            return text + 'lr: not found in optim_wrapper.optimizer.'
        if self.scale_lr:
            text += (f'lr {self.lr:.6g} = config lr {self.config_lr:.6g} x {self.total}/'
                     f'{self.base_batch_size} (linear scaling, auto_scale_lr enabled)')
        else:
            text += f'lr {self.lr:.6g} (config lr, not scaled: auto_scale_lr.enable is off'
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


def plan_batch(cfg, world_size: int) -> BatchPlan:
    """Work out the per-process batch and whether the lr is scaled, for ``cfg``.

    ``train_dataloader.batch_size='auto'`` (the configs' default) means
    ``total_batch_size // world_size``; an integer is the per-process batch, kept as given.
    The lr is scaled exactly when ``auto_scale_lr.enable`` is set (mmengine's rule; the
    configs enable it with ``base_batch_size=16``, which is x1 for the recipe's total 16).

    Args:
        cfg: an mmengine ``Config`` (read only).
        world_size: number of processes.

    Raises:
        ValueError: more processes than the total batch, a total the processes do not divide
            (``'auto'``), a non-positive or non-integer batch, ``'auto'`` without
            ``total_batch_size``, scaling without ``base_batch_size``, a ``base_batch_size``
            that is not a positive integer.
    """
    if world_size < 1:
        raise ValueError(f'world size must be >= 1, got {world_size}')
    reference_total = cfg.get('total_batch_size', None)
    if reference_total is not None and (isinstance(reference_total, bool) or
                                        not isinstance(reference_total, int)):
        raise ValueError(f'total_batch_size must be an integer, got {reference_total!r}')
    requested = cfg.train_dataloader.get('batch_size', None)
    batch_from_user = requested != 'auto'
    if not batch_from_user:
        if reference_total is None:
            raise ValueError("train_dataloader.batch_size='auto' needs a top-level "
                             'total_batch_size (the total over all processes)')
        per_gpu = reference_total // world_size
        if per_gpu < 1:
            raise ValueError(f'total_batch_size {reference_total} is smaller than the number of '
                             f'processes {world_size}: set train_dataloader.batch_size '
                             f'(per process) or a larger total_batch_size via --cfg-options')
        if reference_total % world_size:
            raise ValueError(indivisible_total_message(cfg, reference_total, world_size))
    elif isinstance(requested, bool) or not isinstance(requested, int):
        raise ValueError("train_dataloader.batch_size must be 'auto' (total_batch_size // "
                         f'world size) or an integer per-process batch, got {requested!r}')
    else:
        per_gpu = requested
    if per_gpu < 1:
        raise ValueError(f'train_dataloader.batch_size must be >= 1, got {per_gpu}')

    auto_cfg = cfg.get('auto_scale_lr', None) or {}
    base = auto_cfg.get('base_batch_size', None)
    scale_lr = bool(auto_cfg.get('enable', False))
    optimizer = cfg.get('optim_wrapper', {}).get('optimizer', {}) or {}
    config_lr = optimizer.get('lr', None)
    if scale_lr and base is None:
        raise ValueError('auto_scale_lr.enable is set but auto_scale_lr.base_batch_size is not')
    if base is not None and (isinstance(base, bool) or not isinstance(base, int) or base < 1):
        # mmengine's Runner.scale_lr divides by it: 0 was a ZeroDivisionError, a negative
        # number a negative lr, a string a TypeError without the key's name
        raise ValueError(_bad_base_batch_message(cfg, base))
    return BatchPlan(world_size=world_size, per_gpu=per_gpu,
                     reference_total=reference_total,
                     base_batch_size=None if base is None else int(base),
                     config_lr=None if config_lr is None else float(config_lr),
                     scale_lr=scale_lr, batch_from_user=batch_from_user)


def _bad_base_batch_message(cfg, base) -> str:
    """One line for an ``auto_scale_lr.base_batch_size`` that is not a positive integer, with
    the config file's own value as the fix."""
    source = getattr(cfg, 'filename', None)
    good = 16  # the MonoDLE recipe's
    if source and os.path.isfile(source):
        from mmengine.config import Config
        try:
            value = (Config.fromfile(source).get('auto_scale_lr', None) or {}).get(
                'base_batch_size', None)
        except Exception:  # the file's own problems are reported elsewhere
            value = None
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            good = value
    return (f'{source or "the config"}: auto_scale_lr.base_batch_size must be a positive '
            f'integer (the total batch the config lr was tuned for), got {base!r}: set '
            f'--cfg-options auto_scale_lr.base_batch_size={good} (the config file\'s value), or '
            'auto_scale_lr.enable=False to keep the config lr unscaled')


def indivisible_total_message(cfg, total: int, world_size: int) -> str:
    """Why ``total`` cannot be split over ``world_size`` processes, and the ways out: the
    nearest totals the processes divide, the process counts that divide ``total``, and the
    per-process batch that accepts the other total (docs/en/training_testing.md: the same total
    on any GPU count)."""
    source = getattr(cfg, 'filename', None) or 'the config'
    low, high = (total // world_size) * world_size, -(-total // world_size) * world_size
    totals = ' or '.join(str(t) for t in sorted({low, high}) if t >= world_size)
    counts = [n for n in range(1, total + 1) if total % n == 0 and n != world_size]
    near = sorted(counts, key=lambda n: (abs(n - world_size), n))[:3]
    return (f'{source}: total_batch_size {total} is not divisible by the {world_size} '
            f'processes: each would take {total // world_size} and the run would train at a '
            f'total of {low}, not {total}; use a total they divide (--cfg-options '
            f'total_batch_size={totals}) or {" / ".join(map(str, sorted(near)))} processes, '
            f'or accept a total of {low} with --cfg-options '
            f'train_dataloader.batch_size={total // world_size} (per process; the lr follows '
            'auto_scale_lr)')


def apply_batch_plan(cfg, plan: BatchPlan) -> None:
    """Write ``plan``'s per-process batch into ``cfg.train_dataloader.batch_size``.

    mmengine's Runner then scales every param group's lr by ``world_size * batch_size /
    base_batch_size`` when ``auto_scale_lr.enable`` (``Runner.scale_lr``): ``plan.lr_ratio``.
    """
    cfg.train_dataloader.batch_size = plan.per_gpu

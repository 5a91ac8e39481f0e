"""FiniteLossHook: stop training at the first non-finite loss, before a checkpoint is written.

A NaN or infinite loss (a diverging lr, an ``inf`` switch, a broken label or depth file in the
batch) makes every weight NaN at the optimiser step; mmengine would go on for hours and save
all-NaN checkpoints. This hook reads the logged loss terms after each iteration (they are on
the host for the logger anyway) and raises :class:`NonFiniteLossError` naming the epoch,
iteration, the non-finite terms, every term's value and the frames of the batch. It runs
before ``LoggerHook`` and the checkpoint hook, so the NaN state is never saved; the last saved
checkpoint holds the weights of the last finite epoch. Under DDP the ranks agree through one
1-element all-reduce (a NaN on one rank stops them all).

``MonoDLERunner`` registers it under any tool (see :func:`monodle_plugin.engine.run_guards.
guard_runner`); other runners add ``dict(type='FiniteLossHook')`` to ``custom_hooks``.
"""
from __future__ import annotations

import math
import os.path as osp
from typing import Optional

import torch
import torch.distributed as dist
from mmdet3d.registry import HOOKS
from mmengine.dist import get_world_size
from mmengine.hooks import Hook

from ...utils.cli import UserError


class NonFiniteLossError(UserError):
    """A training loss became NaN / infinite (one line: where, which terms, which frames)."""


def _frames(data_batch) -> list[str]:
    """File names of the batch's images (``img_path`` of the data samples), else sample ids."""
    out = []
    for i, ds in enumerate((data_batch or {}).get('data_samples') or []):
        meta = getattr(ds, 'metainfo', {}) or {}
        path = meta.get('img_path')
        out.append(osp.basename(path) if path else str(meta.get('sample_idx', i)))
    return out


@HOOKS.register_module()
class FiniteLossHook(Hook):
    """Raise :class:`NonFiniteLossError` after the first iteration with a non-finite loss.

    Args:
        check_every: check every N iterations (1: each; a check reads a few scalars that the
            logger reads anyway, so it costs nothing measurable).
    """

    # after RuntimeInfoHook (VERY_HIGH) and GlobalLossLogHook (HIGHEST), before LoggerHook
    # (BELOW_NORMAL) and the checkpoint hook (VERY_LOW)
    priority = 'ABOVE_NORMAL'

    def __init__(self, check_every: int = 1) -> None:
        if int(check_every) < 1:
            raise ValueError(f'FiniteLossHook: check_every must be >= 1, got {check_every!r}')
        self.check_every = int(check_every)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        if not outputs or (runner.iter + 1) % self.check_every:
            return
        values = {k: float(v.detach().float().mean()) if isinstance(v, torch.Tensor)
                  else float(v) for k, v in outputs.items()
                  if isinstance(v, (torch.Tensor, float, int)) and 'loss' in k}
        bad = [k for k, v in values.items() if not math.isfinite(v)]
        if get_world_size() > 1:  # every rank stops together
            device = torch.device('cuda', torch.cuda.current_device()) \
                if dist.get_backend() == 'nccl' else torch.device('cpu')
            flag = torch.tensor([float(bool(bad))], device=device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            if flag.item() and not bad:
                raise NonFiniteLossError(
                    f'training stopped at epoch {runner.epoch + 1}, iteration {runner.iter + 1}: '
                    'another process had a non-finite loss (see its log); nothing was saved '
                    'for this iteration')
        if not bad:
            return
        terms = ', '.join(f'{k}={v:.4g}' for k, v in values.items())
        frames = _frames(data_batch)
        raise NonFiniteLossError(
            f'training stopped at epoch {runner.epoch + 1}, iteration {runner.iter + 1} '
            f'(batch {batch_idx + 1}): non-finite loss in {", ".join(bad)} ({terms}); frames '
            f'of the batch: {", ".join(frames[:8]) or "?"}. Nothing was saved for this state '
            f'(the last checkpoint in {runner.work_dir} is from before it). Check the lr and '
            'the loss weights / distill switches, and these frames\' labels and depth files '
            '(tools/misc/check_kitti_layout.py, tools/misc/check_depth_labels.py)')


__all__ = ['FiniteLossHook', 'NonFiniteLossError']

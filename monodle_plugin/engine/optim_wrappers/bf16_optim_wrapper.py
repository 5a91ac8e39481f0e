"""Mixed precision for ``tools/train.py --amp``: fp16 + loss scaling on CUDA, bf16 on CPU.

mmengine's ``AmpOptimWrapper`` (autocast + ``GradScaler``) refuses to start without a GPU. On
a CPU, autocast runs in bfloat16 only, and bfloat16 has float32's exponent range, so gradients
cannot underflow and no loss scaling is needed: :class:`BF16OptimWrapper` is mmengine's
``OptimWrapper`` whose ``optim_context`` (the forward and the losses) runs under
``torch.autocast(device_type, dtype=torch.bfloat16)``; backward and the optimizer step are
plain float32 (weights, gradients and Adam moments stay float32, as with ``AmpOptimWrapper``).
"""
from __future__ import annotations

import logging
from contextlib import contextmanager

import torch
from mmengine.logging import print_log
from mmengine.optim import OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS
from torch import nn


@OPTIM_WRAPPERS.register_module()
class BF16OptimWrapper(OptimWrapper):
    """``OptimWrapper`` with the forward under bfloat16 autocast, no loss scaling.

    Args:
        device_type: autocast device, ``'cpu'`` (default) or ``'cuda'`` (bf16-capable GPUs).
        **kwargs: ``OptimWrapper``'s (``optimizer``, ``clip_grad``, ``accumulative_counts``).
    """

    def __init__(self, device_type: str = 'cpu', **kwargs) -> None:
        super().__init__(**kwargs)
        if device_type not in ('cpu', 'cuda'):
            raise ValueError(f"BF16OptimWrapper: device_type must be 'cpu' or 'cuda', got "
                             f'{device_type!r}')
        self.device_type = device_type

    @contextmanager
    def optim_context(self, model: nn.Module):
        """mmengine's context (gradient accumulation) plus bfloat16 autocast."""
        with super().optim_context(model), torch.autocast(device_type=self.device_type,
                                                          dtype=torch.bfloat16):
            yield


def apply_amp(cfg, cuda: bool | None = None) -> str:
    """What ``tools/train.py --amp`` does to ``cfg.optim_wrapper`` (changed in place).

    - CUDA: mmengine's ``AmpOptimWrapper``, float16 autocast with dynamic loss scaling (what
      mmdet3d's ``--amp`` sets);
    - no CUDA: :class:`BF16OptimWrapper`, bfloat16 autocast on the CPU, no loss scaling.

    An ``optim_wrapper`` already of one of these types is kept (a warning is logged).

    Args:
        cfg: the config (mmengine ``Config``).
        cuda: whether training runs on CUDA (default ``torch.cuda.is_available()``).

    Returns:
        a one-line description of what was set (logged by the tool).

    Raises:
        ValueError: ``optim_wrapper.type`` is neither ``OptimWrapper`` nor an AMP wrapper.
    """
    if cuda is None:
        cuda = torch.cuda.is_available()
    wrapper = cfg.optim_wrapper
    kind = wrapper.get('type', 'OptimWrapper')
    if kind in ('AmpOptimWrapper', 'BF16OptimWrapper'):
        print_log(f'--amp: the config already uses {kind}; kept as it is', logger='current',
                  level=logging.WARNING)
        return f'{kind} from the config'
    if kind != 'OptimWrapper':
        raise ValueError(f'--amp needs optim_wrapper.type OptimWrapper (it becomes '
                         f'AmpOptimWrapper on CUDA, BF16OptimWrapper on CPU), got {kind}')
    if cuda:
        wrapper.type = 'AmpOptimWrapper'
        wrapper.dtype = 'float16'
        wrapper.loss_scale = 'dynamic'
        return 'AmpOptimWrapper: float16 autocast on CUDA, dynamic loss scaling'
    wrapper.type = 'BF16OptimWrapper'
    wrapper.device_type = 'cpu'
    return 'BF16OptimWrapper: bfloat16 autocast on the CPU, no loss scaling'


__all__ = ['BF16OptimWrapper', 'apply_amp']

"""Frozen modules: every BatchNorm type, and the ``freeze_backbone`` modes.

mmengine's ``convert_sync_batchnorm`` (``--sync_bn torch`` / ``mmcv``, cfg ``sync_bn``) replaces
BatchNorm layers after the model is built. torch's ``SyncBatchNorm`` is a ``_BatchNorm``;
mmcv's ``mmcv.ops.SyncBatchNorm`` is not, so an ``isinstance(m, _BatchNorm)`` test misses it and
a "frozen" BatchNorm would go back to train mode (running statistics updated from the data).
"""
from __future__ import annotations

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


def batchnorm_types() -> tuple[type, ...]:
    """torch's BatchNorm classes (SyncBatchNorm included) and mmcv's SyncBatchNorm when
    mmcv's compiled ops are installed."""
    try:
        from mmcv.ops import SyncBatchNorm as MMCVSyncBatchNorm
    except ImportError:  # mmcv without compiled ops: no mmcv SyncBatchNorm can exist
        return (_BatchNorm,)
    return (_BatchNorm, MMCVSyncBatchNorm)


def has_batchnorm_in_train_mode(module: nn.Module) -> bool:
    """True when a BatchNorm layer (any type) of ``module`` is in train mode, i.e. a training
    step updates its running statistics from the batch."""
    types = batchnorm_types()
    return any(isinstance(m, types) and m.training for m in module.modules())


def freeze(module: nn.Module, mode: bool | str) -> None:
    """Apply a ``freeze_backbone`` mode to ``module``'s parameters (call once, after building).

    Args:
        module: the backbone.
        mode: True or ``'weights'``: no parameter requires a gradient (no gradient is computed
            for it nor all-reduced by DDP); False: every parameter requires one.
    """
    check_freeze_mode(mode, type(module).__name__)
    for p in module.parameters():
        p.requires_grad_(mode is False)


def keep_batchnorm_eval(module: nn.Module, mode: bool | str) -> None:
    """With ``mode`` True, put every BatchNorm layer of ``module`` (torch, torch Sync, mmcv Sync)
    in eval mode: running statistics fixed. Call from ``train()``, after ``super().train()``."""
    if mode is True:
        types = batchnorm_types()
        for m in module.modules():
            if isinstance(m, types):
                m.eval()


def check_freeze_mode(mode: bool | str, owner: str) -> None:
    """``ValueError`` unless ``mode`` is True, False or ``'weights'``."""
    if not (mode is True or mode is False or mode == 'weights'):  # 0 / 1 are not booleans
        raise ValueError(f"{owner}: freeze_backbone must be True, False or 'weights', got "
                         f'{mode!r}')

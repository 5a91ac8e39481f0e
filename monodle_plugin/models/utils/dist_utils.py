"""Helpers that make count-normalised losses exact under DDP.

A loss ``sum_i l_i / n`` computed per rank with a local count ``n`` and then averaged by DDP
differs from the single-process loss when ranks see different numbers of objects. Dividing
the local sum by the *global* count and multiplying by the world size makes DDP's gradient
average equal to the single-process gradient on the same total batch, exactly.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
import torch.distributed as dist
from torch import Tensor

_LOCAL_COUNTS = False  # see local_count_normalization(); diagnostics only


@contextlib.contextmanager
def local_count_normalization() -> Iterator[None]:
    """Diagnostics only: normalise by per-rank counts, as naive DDP code does.

    Inside the context :func:`global_sum` returns the local value and :func:`get_world_size`
    returns 1, so every loss becomes ``local_sum / local_count`` and DDP averages those per-rank
    means (the seed's "< 0.1 %" discrepancy). ``tools/dp_ddp_equivalence.py --simulate`` uses it
    to show the difference that global counts remove. Never use it for training.
    """
    global _LOCAL_COUNTS
    previous, _LOCAL_COUNTS = _LOCAL_COUNTS, True
    try:
        yield
    finally:
        _LOCAL_COUNTS = previous


def get_world_size() -> int:
    """Number of processes of the default group (1 when not distributed).

    This is the world size as the loss normalisation sees it (1 inside
    :func:`local_count_normalization`).
    """
    if not _LOCAL_COUNTS and dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


def global_sum(value: Tensor) -> Tensor:
    """Sum of ``value`` over all ranks, without gradient (a detached copy).

    Integer, boolean and half-precision values are summed as float32 (counts exact up to
    2**24); float32 / float64 values keep their dtype.
    """
    value = value.detach().clone()
    if not value.is_floating_point() or value.dtype in (torch.float16, torch.bfloat16):
        value = value.float()
    if get_world_size() > 1:
        if dist.get_backend() == 'nccl' and value.device.type != 'cuda':
            # NCCL reduces CUDA tensors only; counts built with torch.tensor(...) live on the CPU
            on_gpu = value.cuda()
            dist.all_reduce(on_gpu, op=dist.ReduceOp.SUM)
            return on_gpu.to(value.device)
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value


def global_normalizer(local_count: Tensor | float, min_value: float = 0.0) -> Tensor:
    """Return ``global_count / world_size`` (clamped below by ``min_value / world_size``).

    Divide a per-rank *sum* of losses by this value: under DDP's gradient averaging the
    result equals ``global_sum / global_count`` computed by one process over the whole batch.
    """
    if not isinstance(local_count, Tensor):
        local_count = torch.tensor(float(local_count))
    world = get_world_size()
    total = global_sum(local_count)
    return total.clamp(min=min_value) / world

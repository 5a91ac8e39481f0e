"""Helpers that make count-normalised losses exact under DDP.

A loss ``sum_i l_i / n`` computed per rank with a local count ``n`` and then averaged by DDP
differs from the single-process loss when ranks see different numbers of objects. Dividing
the local sum by the *global* count and multiplying by the world size makes DDP's gradient
average equal to the single-process gradient on the same total batch, exactly.

The head gathers every normaliser of an iteration (object counts, positives, the dim-aware
weight's sums, the distillation weights) and sums them over the ranks in ONE collective
(:func:`reduce_stats`); each loss then receives its global values (``global_stats``). Used on
its own, a loss reduces its own statistics with :func:`global_sum`.

Callers reach :func:`get_world_size` / :func:`global_sum` through this module
(``dist_utils.get_world_size()``), so that :func:`local_count_normalization` can stand in for
them in diagnostics without any switch on the training path.
"""
from __future__ import annotations

import contextlib
import sys
from typing import Iterator, Sequence
from unittest import mock

import torch
import torch.distributed as dist
from torch import Tensor


def get_world_size() -> int:
    """Number of processes of the default group (1 when not distributed)."""
    if dist.is_available() and dist.is_initialized():
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


def reduce_stats(stats: Sequence[Tensor]) -> list[Tensor]:
    """Sum several 1-D statistics vectors over all ranks with a single collective.

    Args:
        stats: 1-D tensors on one device (their values are detached).

    Returns:
        The global sums, one tensor per input, each in its input's floating dtype (integer and
        half-precision inputs come back as float32, as from :func:`global_sum`).
    """
    if not stats:
        return []
    dtypes = [s.dtype if s.is_floating_point() and s.dtype not in (torch.float16, torch.bfloat16)
              else torch.float32 for s in stats]
    common = dtypes[0]
    for dtype in dtypes[1:]:
        common = torch.promote_types(common, dtype)
    total = global_sum(torch.cat([s.detach().reshape(-1).to(common) for s in stats]))
    return [part.to(dtype) for part, dtype in
            zip(total.split([s.numel() for s in stats]), dtypes)]


def global_normalizer(local_count: Tensor | float, min_value: float = 0.0) -> Tensor:
    """Return ``global_count / world_size`` (clamped below by ``min_value / world_size``).

    Divide a per-rank *sum* of losses by this value: under DDP's gradient averaging the
    result equals ``global_sum / global_count`` computed by one process over the whole batch.
    """
    if not isinstance(local_count, Tensor):
        local_count = torch.tensor(float(local_count))
    total = global_sum(local_count)
    return total.clamp(min=min_value) / get_world_size()


@contextlib.contextmanager
def local_count_normalization() -> Iterator[None]:
    """Diagnostics only: normalise by per-rank counts, as naive DDP code does.

    Inside the context this module's :func:`get_world_size` returns 1 (so :func:`global_sum`
    returns the local value), every loss becomes ``local_sum / local_count`` and DDP averages
    those per-rank means (the seed's "< 0.1 %" discrepancy). ``tools/dp_ddp_equivalence.py
    --simulate`` uses it to show the difference that global counts remove. It replaces the
    function for the duration (nothing on the training path checks a switch); never train in it.
    """
    with mock.patch.object(sys.modules[__name__], 'get_world_size', return_value=1):
        yield

"""Helpers that make count-normalised losses exact under DDP.

A loss ``sum_i l_i / n`` computed per rank with a local count ``n`` and then averaged by DDP
differs from the single-process loss when ranks see different numbers of objects. Dividing
the local sum by the *global* count and multiplying by the world size makes DDP's gradient
average equal to the single-process gradient on the same total batch, exactly.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor


def get_world_size() -> int:
    """Number of processes of the default group (1 when not distributed)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


def global_sum(value: Tensor) -> Tensor:
    """Sum of ``value`` over all ranks, without gradient (a detached copy)."""
    value = value.detach().clone().float()
    if get_world_size() > 1:
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

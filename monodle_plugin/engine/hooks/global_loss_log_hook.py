"""GlobalLossLogHook: log the loss of the whole batch under DDP, not rank 0's share.

With global-count normalisation (``models/utils/dist_utils.py``) each rank's loss is
``local_sum * world_size / global_count``; their mean over ranks is exactly the single-process
loss of the total batch, while rank 0's value alone (what mmengine logs) fluctuates with the
number of objects rank 0 happened to get. This hook replaces every logged tensor by its mean
over ranks before ``RuntimeInfoHook`` stores it, so 1-GPU and N-GPU logs are comparable. It does
not touch the gradients (they are already exact); single-process runs are unchanged.
``tools/train.py`` registers it by itself when training on more than one process; other entry
points add ``dict(type='GlobalLossLogHook')`` to ``custom_hooks``.
"""
from __future__ import annotations

import zlib
from typing import Optional

import torch
import torch.distributed as dist
from mmdet3d.registry import HOOKS
from mmengine.dist import get_world_size
from mmengine.hooks import Hook


@HOOKS.register_module()
class GlobalLossLogHook(Hook):
    """Average the logged losses over DDP ranks (one small all-reduce per iteration)."""

    priority = 'HIGHEST'  # before RuntimeInfoHook (VERY_HIGH) copies outputs to the MessageHub

    def __init__(self) -> None:
        self._warned = False

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        world = get_world_size()
        if world == 1 or not outputs:
            return
        keys = sorted(k for k, v in outputs.items() if isinstance(v, torch.Tensor))
        if not keys:
            return
        device = outputs[keys[0]].device
        if dist.get_backend() == 'nccl' and device.type != 'cuda':
            device = torch.device('cuda', torch.cuda.current_device())
        # the ranks must log the same keys, else the reduction below would mix them up
        signature = zlib.crc32(','.join(keys).encode())
        check = torch.tensor([signature, -signature], dtype=torch.float64, device=device)
        dist.all_reduce(check, op=dist.ReduceOp.MIN)
        if check[0].item() != signature or -check[1].item() != signature:
            if not self._warned:
                runner.logger.warning('GlobalLossLogHook: the ranks log different losses; '
                                      'logging rank 0 values only.')
                self._warned = True
            return
        values = torch.stack([outputs[k].detach().to(device, torch.float64).reshape(())
                              for k in keys])
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
        values /= world
        for key, value in zip(keys, values):
            outputs[key] = value.to(outputs[key].device, outputs[key].dtype)

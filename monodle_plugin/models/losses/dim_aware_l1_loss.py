"""Dimension-aware L1 loss for 3D box sizes (MonoDLE, CVPR'21, Sec. 4.3)."""
from __future__ import annotations

import torch
from mmdet3d.registry import MODELS
from torch import Tensor, nn

from ..utils import dist_utils
from ..utils.precision import loss_precision


@MODELS.register_module()
class DimAwareL1Loss(nn.Module):
    """``mean(|p - t| / dim) * w`` with ``w = sum|p - t| / sum(|p - t| / dim)`` (no gradient).

    The compensation weight ``w`` makes the loss magnitude equal the plain L1 loss while the
    gradient of each element is scaled by ``1 / dim``. Both sums and the element count are
    taken over all ranks so that DDP reproduces the single-process gradients exactly.

    Args:
        loss_weight: multiplier of the result. Defaults to 1.
    """

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    @torch.no_grad()
    def local_stats(self, pred: Tensor, target: Tensor, dimension: Tensor) -> Tensor:
        """(3,) this rank's ``sum|p - t|``, ``sum(|p - t| / dim)`` and element count."""
        pred, target = loss_precision(pred), loss_precision(target)
        dimension = loss_precision(dimension)
        l1 = (pred - target).abs()
        return torch.stack([l1.sum(), (l1 / dimension).sum(), l1.new_tensor(float(l1.numel()))])

    def forward(self, pred: Tensor, target: Tensor, dimension: Tensor,
                global_stats: Tensor | None = None) -> Tensor:
        """Compute the loss.

        Args:
            pred: (M, 3) predicted sizes (or residuals to the class mean size), metres.
            target: (M, 3) targets, same convention as ``pred``.
            dimension: (M, 3) per-element divisor (MonoDLE passes the target itself).
            global_stats: (3,) :meth:`local_stats` summed over all ranks (the head reduces
                every normaliser in one collective); None: reduced here.

        Returns:
            Scalar loss (0 when there is no object on any rank); float32 for float16 /
            bfloat16 inputs.
        """
        pred, target = loss_precision(pred), loss_precision(target)
        dimension = loss_precision(dimension.detach())
        if global_stats is None:
            global_stats = dist_utils.global_sum(self.local_stats(pred, target, dimension))
        total_l1, total_scaled, count = global_stats.detach()
        # compensation weight; 1 when every error is 0 (selected without a host sync)
        weight = torch.where(total_scaled != 0, total_l1 / total_scaled,
                             torch.ones_like(total_l1))
        loss = (pred - target).abs() / dimension
        loss = loss.sum() * weight / (count.clamp(min=1.0) / dist_utils.get_world_size())
        return loss * self.loss_weight

"""Dimension-aware L1 loss for 3D box sizes (MonoDLE, CVPR'21, Sec. 4.3)."""
from __future__ import annotations

import torch
from mmdet3d.registry import MODELS
from torch import Tensor, nn

from ..utils.dist_utils import get_world_size, global_sum


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

    def forward(self, pred: Tensor, target: Tensor, dimension: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            pred: (M, 3) predicted sizes (or residuals to the class mean size), metres.
            target: (M, 3) targets, same convention as ``pred``.
            dimension: (M, 3) per-element divisor (MonoDLE passes the target itself).

        Returns:
            Scalar loss (0 when there is no object on any rank).
        """
        dimension = dimension.detach()
        l1 = (pred - target).abs()
        loss = l1 / dimension
        with torch.no_grad():
            # one all-reduce for the compensation weight's two sums and the element count
            total_l1, total_scaled, count = global_sum(torch.stack(
                [l1.sum(), loss.sum(), l1.new_tensor(float(loss.numel()))]))
            weight = total_l1 / total_scaled if total_scaled.item() != 0 else total_l1.new_ones(())
        loss = loss.sum() * weight / (count.clamp(min=1.0) / get_world_size())
        return loss * self.loss_weight

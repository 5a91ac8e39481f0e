"""CornerNet's penalty-reduced focal loss on Gaussian heatmaps (as MonoDLE uses it)."""
from __future__ import annotations

import torch
from mmdet3d.registry import MODELS
from torch import Tensor, nn

from ..utils.dist_utils import get_world_size, global_sum


@MODELS.register_module()
class CornerNetFocalLoss(nn.Module):
    """Penalty-reduced pixel-wise focal loss (CornerNet, ECCV'18), normalised like MonoDLE.

    ``loss = -(sum_pos log(p) (1-p)^gamma + sum_neg log(1-p) p^gamma (1-y)^beta) / num_pos``
    where positives are the pixels whose target equals exactly 1. With no positive anywhere
    the negative sum is returned un-normalised (MonoDLE's behaviour).

    mmdet's ``GaussianFocalLoss`` normalises by a caller-given factor and treats an empty
    batch differently; this class keeps MonoDLE's rule and counts positives over all ranks,
    so that DDP gradients equal the single-process gradients on the same total batch.

    Args:
        gamma: focusing exponent. Defaults to 2.
        beta: exponent of the penalty reduction ``(1 - y)^beta``. Defaults to 4.
        loss_weight: multiplier of the result. Defaults to 1.
    """

    def __init__(self, gamma: float = 2.0, beta: float = 4.0, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.gamma = gamma
        self.beta = beta
        self.loss_weight = loss_weight

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            pred: (B, C, h, w) probabilities, already clamped away from 0 and 1.
            target: (B, C, h, w) Gaussian heatmap target in [0, 1].

        Returns:
            Scalar loss times ``loss_weight``.
        """
        pos = target.eq(1).to(pred.dtype)
        neg = target.lt(1).to(pred.dtype)
        neg_weights = torch.pow(1 - target, self.beta)
        pos_loss = (torch.log(pred) * torch.pow(1 - pred, self.gamma) * pos).sum()
        neg_loss = (torch.log(1 - pred) * torch.pow(pred, self.gamma) * neg * neg_weights).sum()
        num_pos = global_sum(pos.sum())
        world = get_world_size()
        if num_pos.item() == 0:
            # un-normalised sum; x world so that DDP's mean over ranks gives the global sum
            loss = -neg_loss * world
        else:
            loss = -(pos_loss + neg_loss) / (num_pos / world)
        return loss * self.loss_weight

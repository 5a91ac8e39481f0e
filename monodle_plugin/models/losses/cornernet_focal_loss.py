"""CornerNet's penalty-reduced focal loss on Gaussian heatmaps (as MonoDLE uses it)."""
from __future__ import annotations

import torch
from mmdet3d.registry import MODELS
from torch import Tensor, nn

from ..utils import dist_utils
from ..utils.precision import loss_precision


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

    def local_stats(self, pred: Tensor, target: Tensor) -> Tensor:
        """(1,) this rank's number of positive pixels (``target == 1``), for ``global_stats``."""
        return target.eq(1).to(loss_precision(pred).dtype).sum().reshape(1)

    def forward(self, pred: Tensor, target: Tensor,
                global_stats: Tensor | None = None) -> Tensor:
        """Compute the loss.

        Args:
            pred: (B, C, h, w) probabilities, already clamped away from 0 and 1.
            target: (B, C, h, w) Gaussian heatmap target in [0, 1].
            global_stats: (1,) :meth:`local_stats` summed over all ranks (the head reduces
                every normaliser in one collective); None: reduced here.

        Returns:
            Scalar loss times ``loss_weight`` (float32 for float16 / bfloat16 inputs).
        """
        pred, target = loss_precision(pred), loss_precision(target)
        if global_stats is None:
            global_stats = dist_utils.global_sum(self.local_stats(pred, target))
        pos = target.eq(1).to(pred.dtype)
        neg = target.lt(1).to(pred.dtype)
        neg_weights = torch.pow(1 - target, self.beta)
        pos_loss = (torch.log(pred) * torch.pow(1 - pred, self.gamma) * pos).sum()
        neg_loss = (torch.log(1 - pred) * torch.pow(pred, self.gamma) * neg * neg_weights).sum()
        # no positive anywhere: pos_loss is 0 and the un-normalised sum is returned, x world so
        # that DDP's mean over ranks gives the global sum (no host sync to branch on it)
        norm = global_stats[0].clamp(min=1) / dist_utils.get_world_size()
        return -(pos_loss + neg_loss) / norm * self.loss_weight

"""Multi-bin heading loss: bin classification + residual of the ground-truth bin."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from mmdet3d.registry import MODELS
from torch import Tensor, nn

from ..utils import dist_utils
from ..utils.precision import loss_precision


@MODELS.register_module()
class MultiBinHeadingLoss(nn.Module):
    """Cross-entropy over ``num_bins`` angle bins + L1 on the residual of the target bin.

    Both terms are means over objects (MonoDLE's ``compute_heading_loss``), normalised by
    the object count of all ranks; with no object the loss is 0 (MonoDLE would give NaN).

    Args:
        num_bins: number of bins; the prediction has ``2 * num_bins`` channels (logits, then
            residuals in radians). Defaults to 12.
        loss_weight: multiplier of the result. Defaults to 1.
    """

    def __init__(self, num_bins: int = 12, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.num_bins = num_bins
        self.loss_weight = loss_weight

    def local_stats(self, pred: Tensor, target_bin: Tensor, target_res: Tensor) -> Tensor:
        """(1,) this rank's object count, for ``global_stats``."""
        return torch.full((1, ), float(pred.shape[0]), device=pred.device)

    def forward(self, pred: Tensor, target_bin: Tensor, target_res: Tensor,
                global_stats: Tensor | None = None) -> Tensor:
        """Compute the loss.

        Args:
            pred: (M, 2 * num_bins) raw heading outputs.
            target_bin: (M,) int64 bin index.
            target_res: (M,) residual angle in radians.
            global_stats: (1,) :meth:`local_stats` summed over all ranks; None: reduced here.

        Returns:
            Scalar loss (float32 for float16 / bfloat16 inputs).
        """
        pred, target_res = loss_precision(pred), loss_precision(target_res)
        if pred.shape[-1] != 2 * self.num_bins:
            raise ValueError(f'MultiBinHeadingLoss: pred has {pred.shape[-1]} channels, '
                             f'expected {2 * self.num_bins}')
        if global_stats is None:
            global_stats = dist_utils.global_sum(self.local_stats(pred, target_bin, target_res))
        norm = global_stats[0].clamp(min=1.0) / dist_utils.get_world_size()
        cls_loss = F.cross_entropy(pred[:, :self.num_bins], target_bin, reduction='sum') / norm
        res = pred[:, self.num_bins:].gather(1, target_bin.view(-1, 1)).view(-1)
        reg_loss = F.l1_loss(res, target_res, reduction='sum') / norm
        return (cls_loss + reg_loss) * self.loss_weight

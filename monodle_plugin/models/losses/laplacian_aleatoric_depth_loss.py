"""Laplacian aleatoric uncertainty loss for depth (MonoPair / MonoDLE)."""
from __future__ import annotations

import math

import torch
from mmdet3d.registry import MODELS
from torch import Tensor, nn

from ..utils import dist_utils
from ..utils.precision import loss_precision


@MODELS.register_module()
class LaplacianAleatoricDepthLoss(nn.Module):
    """``sqrt(2) * exp(-s) * |d - d*| + s`` averaged over objects.

    MonoDLE writes the constant as 1.4142; ``sqrt2`` keeps that literal by default so that
    the loss equals the official value bit for bit.

    Args:
        sqrt2: the constant multiplying the L1 term. Defaults to 1.4142 (MonoDLE's literal).
        loss_weight: multiplier of the result. Defaults to 1.
    """

    def __init__(self, sqrt2: float = 1.4142, loss_weight: float = 1.0) -> None:
        super().__init__()
        if not math.isclose(sqrt2, math.sqrt(2.0), rel_tol=1e-3):
            raise ValueError(f'LaplacianAleatoricDepthLoss: sqrt2={sqrt2} is not ~sqrt(2)')
        self.sqrt2 = sqrt2
        self.loss_weight = loss_weight

    def local_stats(self, depth: Tensor, log_variance: Tensor, target: Tensor) -> Tensor:
        """(1,) this rank's object count, for ``global_stats``."""
        return torch.full((1, ), float(depth.numel()), device=depth.device)

    def forward(self, depth: Tensor, log_variance: Tensor, target: Tensor,
                global_stats: Tensor | None = None) -> Tensor:
        """Compute the loss.

        Args:
            depth: (M,) decoded depth predictions, metres.
            log_variance: (M,) predicted log-variance ``s``.
            target: (M,) depth targets, metres.
            global_stats: (1,) :meth:`local_stats` summed over all ranks; None: reduced here.

        Returns:
            Scalar: sum over objects divided by the object count of all ranks (0 when none);
            float32 for float16 / bfloat16 inputs.
        """
        depth, log_variance = loss_precision(depth), loss_precision(log_variance)
        target = loss_precision(target)
        if global_stats is None:
            global_stats = dist_utils.global_sum(self.local_stats(depth, log_variance, target))
        loss = self.sqrt2 * (-log_variance).exp() * (depth - target).abs() + log_variance
        norm = global_stats[0].clamp(min=1.0) / dist_utils.get_world_size()
        return loss.sum() / norm * self.loss_weight

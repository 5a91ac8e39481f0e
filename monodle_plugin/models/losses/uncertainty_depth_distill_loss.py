"""Uncertainty-guided dense depth distillation (Kendall & Gal's heteroscedastic loss).

The seed system's ``kendall_uncertainty_distill_loss`` with its foreground weights (MonoDDLE
commit ca005eb, ``lib/losses/uncertainty_loss.py`` and ``compute_uncertainty_depth_distill_loss``
in ``lib/losses/centernet_loss.py``): the head predicts a dense log-variance ``s = log sigma^2``
next to the depth, and pixels where the teacher disagrees with the image get a larger variance,
which lowers their weight in the distillation.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from mmdet3d.registry import MODELS
from torch import Tensor

from ...structures.geometry import decode_depth
from ..utils import dist_utils
from .depth_distill_loss import DepthDistillLoss


@MODELS.register_module()
class UncertaintyDepthDistillLoss(DepthDistillLoss):
    """Kendall-style heteroscedastic depth distillation (``loss_depth_distill`` with
    ``distill.use_uncertainty=True``).

    Per pixel, with the student depth ``d = 1 / (sigmoid(x) + 1e-6) - 1`` (metres x crop scale)
    of the depth logit ``x``, the teacher ``d*`` and the predicted log-variance ``s``::

        l = 0.5 * exp(-s) * (d - d*)^2 + 0.5 * s
        L = sum(w * l) / max(sum(w), 1)

    ``w`` are :class:`DepthDistillLoss`'s foreground weights (default the seed's soft heatmap
    weight ``1 + (foreground_weight - 1) * max_c heatmap_target``), 0 where the teacher is
    invalid. ``max(sum(w), 1)`` is the seed's ``weight.sum().clamp(min=1.0)``; here ``sum(w)``
    is the **global** sum over DDP ranks (one all-reduce), so DDP's gradient average equals the
    single-process gradient on the whole batch exactly, like the other losses. ``s`` is not
    clamped (the seed does not). An all-invalid batch gives exactly 0, still connected to the
    graph. The result is multiplied by ``loss_weight`` (``distill.lambda``).

    Needs the head's ``dense_depth_uncertainty`` output (``needs_uncertainty``): the head passes
    it as the second argument and refuses a configuration without the branch.

    Args:
        foreground: 'heatmap' (default, the seed's), 'box' or 'none'; see
            :class:`DepthDistillLoss`.
        foreground_weight: weight of foreground pixels (``distill.foreground_weight``).
        loss_weight: lambda (``distill.lambda``); ``DistillWeightHook`` may change it.
        eps: epsilon of the depth decoding.
    """

    #: the head passes its dense log-variance output (second argument)
    needs_uncertainty = True

    def __init__(self,
                 foreground: str = 'heatmap',
                 foreground_weight: float = 5.0,
                 loss_weight: float = 0.5,
                 eps: float = 1e-6) -> None:
        super().__init__(loss_type='l1', foreground=foreground,
                         foreground_weight=foreground_weight, loss_weight=loss_weight, eps=eps)
        self.loss_type = 'kendall'

    def _weights(self, depth_logit: Tensor, log_variance: Tensor, teacher: Tensor,
                 valid: Tensor, heatmap_target: Optional[Tensor],
                 boxes_2d: Optional[Sequence[Tensor]]) -> tuple[Tensor, Tensor, Tensor]:
        """Checked inputs -> (safe teacher, validity, pixel weights) in the compute dtype."""
        if depth_logit.dim() != 4 or depth_logit.shape[1] != 1:
            raise ValueError(f'depth_logit must be (B, 1, h, w), got {tuple(depth_logit.shape)}')
        for name, t in (('log_variance', log_variance), ('teacher', teacher), ('valid', valid)):
            if t.shape != depth_logit.shape:
                raise ValueError(f'{name} {tuple(t.shape)} must match depth_logit '
                                 f'{tuple(depth_logit.shape)}')
        dtype = self._dtype(depth_logit, log_variance)
        teacher = teacher.detach().to(dtype)
        # An invalid teacher pixel never takes part, whatever its value (0, NaN, inf).
        valid = valid.to(torch.bool) & torch.isfinite(teacher) & (teacher > 0)
        weight = self.pixel_weights(valid, heatmap_target, boxes_2d).to(dtype)
        return torch.where(valid, teacher, torch.ones_like(teacher)), valid, weight

    @staticmethod
    def _dtype(depth_logit: Tensor, log_variance: Tensor) -> torch.dtype:
        """float32, or float64 when the inputs are float64."""
        return torch.promote_types(torch.promote_types(depth_logit.dtype, log_variance.dtype),
                                   torch.float32)

    @torch.no_grad()
    def local_stats(self,
                    depth_logit: Tensor,
                    log_variance: Tensor,
                    teacher: Tensor,
                    valid: Tensor,
                    heatmap_target: Optional[Tensor] = None,
                    boxes_2d: Optional[Sequence[Tensor]] = None) -> Tensor:
        """This rank's (1,) weight sum, for ``global_stats`` (the head reduces every
        normaliser of an iteration in one collective)."""
        _, _, weight = self._weights(depth_logit, log_variance, teacher, valid, heatmap_target,
                                     boxes_2d)
        return weight.sum().reshape(1)

    def forward(self,  # type: ignore[override]
                depth_logit: Tensor,
                log_variance: Tensor,
                teacher: Tensor,
                valid: Tensor,
                heatmap_target: Optional[Tensor] = None,
                boxes_2d: Optional[Sequence[Tensor]] = None,
                global_stats: Optional[Tensor] = None) -> Tensor:
        """Compute ``loss_weight * L``.

        Args:
            depth_logit: (B, 1, h, w) raw (pre-activation) depth logit of the head, stride 4.
            log_variance: (B, 1, h, w) predicted ``log sigma^2`` of the student depth
                (the head's ``dense_depth_uncertainty`` output; metres^2 inside the log).
            teacher: (B, 1, h, w) teacher depth, metres x crop scale, any value where invalid.
            valid: (B, 1, h, w) bool, teacher validity.
            heatmap_target: (B, C, h, w) Gaussian heatmap target ('heatmap' foreground).
            boxes_2d: per image (n_i, 4) 2D boxes on the output grid ('box' foreground).
            global_stats: :meth:`local_stats` summed over all ranks; None: reduced here.

        Returns:
            Scalar tensor.
        """
        safe_teacher, _, weight = self._weights(depth_logit, log_variance, teacher, valid,
                                                heatmap_target, boxes_2d)
        dtype = weight.dtype
        student = decode_depth(depth_logit.to(dtype), self.eps)
        log_var = log_variance.to(dtype)
        per_pixel = 0.5 * torch.exp(-log_var) * (student - safe_teacher) ** 2 + 0.5 * log_var
        # invalid pixels: weight 0 and a finite value (where(), not 0 * inf)
        per_pixel = torch.where(weight > 0, per_pixel, torch.zeros_like(per_pixel))
        local_sum = (weight * per_pixel).sum()
        if global_stats is None:
            global_stats = dist_utils.global_sum(weight.sum().reshape(1))
        # the seed's weight.sum().clamp(min=1.0), on the global sum
        norm = global_stats[0].to(dtype).clamp(min=1.0) / dist_utils.get_world_size()
        return self.loss_weight * (local_sum / norm)

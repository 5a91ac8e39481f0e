"""Dense depth distillation loss: the depth branch's decoded map against a teacher depth map.

``L_total = L_base + lambda * L_distill``. The student is MonoDLE's decoded depth
``d = 1 / (sigmoid(x) + 1e-6) - 1`` of the raw depth logit ``x`` over the whole stride-4 output
map (not only at object centres); the teacher ``d*`` is the Depth Anything 3 (or LiDAR) map that
``LoadDA3Depth`` warped with the image and brought to the same stride, in metres multiplied by the
sample's crop scale (MonoDLE's depth-target convention). Pixels whose teacher is invalid are
excluded everywhere.
"""
from __future__ import annotations

import warnings
from typing import Optional, Sequence

import torch
from mmdet3d.registry import MODELS
from torch import Tensor, nn

from ...structures.geometry import decode_depth
from ..utils import dist_utils

_FOREGROUND_MODES = ('heatmap', 'box', 'none')
_LOSS_TYPES = ('l1', 'silog')
_TINY = 1e-12  # guards divisions by a sum of weights that is 0 only when nothing is valid


def box_foreground_mask(boxes_2d: Sequence[Tensor], shape: Sequence[int],
                        device: torch.device | str = 'cpu') -> Tensor:
    """Mark output cells whose centre lies inside any 2D box of its image.

    Args:
        boxes_2d: per image an (n_i, 4) tensor ``x1, y1, x2, y2`` on the output grid (stride-4
            pixels, corner convention: cell ``(i, j)`` spans ``[j, j + 1) x [i, i + 1)``).
        shape: ``(B, 1, h, w)`` of the map.

    Returns:
        (B, 1, h, w) bool: True where the cell centre ``(j + 0.5, i + 0.5)`` is inside a box
        (borders included).
    """
    b, _, h, w = shape
    if len(boxes_2d) != b:
        raise ValueError(f'boxes_2d has {len(boxes_2d)} entries for a batch of {b} images')
    xs = torch.arange(w, device=device, dtype=torch.float32) + 0.5
    ys = torch.arange(h, device=device, dtype=torch.float32) + 0.5
    mask = torch.zeros((b, 1, h, w), dtype=torch.bool, device=device)
    for i, boxes in enumerate(boxes_2d):
        if boxes is None or boxes.numel() == 0:
            continue
        boxes = boxes.detach().to(device=device, dtype=torch.float32).reshape(-1, 4)
        in_x = (xs[None] >= boxes[:, 0:1]) & (xs[None] <= boxes[:, 2:3])  # (n, w)
        in_y = (ys[None] >= boxes[:, 1:2]) & (ys[None] <= boxes[:, 3:4])  # (n, h)
        mask[i, 0] = (in_y[:, :, None] & in_x[:, None, :]).any(dim=0)
    return mask


def teacher_valid_stats(valid: Tensor) -> Tensor:
    """``[valid pixels, all pixels]`` of a (B, 1, h, w) bool teacher mask (float32, this
    rank); the head sums it over ranks with its other normalisers (one collective)."""
    return torch.stack([valid.sum().float(),
                        torch.tensor(float(valid.numel()), device=valid.device)])


def check_teacher_validity(frac: Tensor | float, data_samples: Sequence) -> None:
    """Stop when a batch had no valid teacher pixel (``frac == 0``); reads ``frac`` (a sync).

    The head logs ``distill_valid_frac`` (global over ranks, so every rank decides the same;
    not a loss: mmengine sums only keys containing "loss"); ``DistillWeightHook`` calls this
    after each iteration. Raises a ``ValueError`` naming the samples, or only warns when every
    sample's ``LoadDA3Depth`` has ``on_missing='skip'`` (``gt_depth.metainfo['on_missing']``).
    """
    if float(frac) != 0.0:
        return
    ids = [ds.metainfo.get('sample_idx', i) for i, ds in enumerate(data_samples)]
    modes = {ds.gt_depth.metainfo.get('on_missing', 'error') for ds in data_samples
             if 'gt_depth' in ds}
    msg = (f'depth distillation: no valid teacher depth pixel in the whole batch (samples '
           f'{ids}): the teacher maps are missing, all NaN / non-positive or above max_depth; '
           'run tools/misc/check_depth_labels.py on the depth folder')
    if modes == {'skip'}:
        warnings.warn(msg + " (on_missing='skip': training goes on)", UserWarning, stacklevel=2)
    else:
        raise ValueError(msg + ", or set on_missing='skip' in LoadDA3Depth to go on with a "
                         'warning')


def valid_fraction(stats: Tensor) -> Tensor:
    """``valid / all`` of :func:`teacher_valid_stats` summed over ranks (no host sync)."""
    return (stats[0] / stats[1].clamp(min=1)).detach()


@MODELS.register_module()
class DepthDistillLoss(nn.Module):
    """Foreground-weighted dense depth distillation (``loss_depth_distill``).

    Per-pixel weight ``w`` (zero where the teacher is invalid):

    - ``foreground='heatmap'`` (default, the reference system's choice): soft weight
      ``w = 1 + (foreground_weight - 1) * max_c heatmap_target``, with the head's Gaussian
      heatmap target (1 at object centres, decaying to 0).
    - ``foreground='box'``: ``w = foreground_weight`` for cells whose centre is inside a
      ground-truth 2D box on the output grid (``boxes_2d``), 1 elsewhere.
    - ``foreground='none'``: ``w = 1``.

    ``loss_type='l1'``: ``sum(w * |d - d*|) / sum(w)``, the weighted mean normalised by the sum
    of weights. The sum of weights is the **global** one across DDP ranks, so that DDP's
    gradient average equals the single-process gradient on the whole batch exactly.

    ``loss_type='silog'``: scale-invariant log loss with ``g = log(max(d, clamp_min)) -
    log(d*)`` pooled over all valid pixels of the batch,
    ``sqrt(E[g^2] - variance_factor * E[g]^2 + 1e-8)``. By default (``silog_weighted=False``,
    ``variance_factor=0.5``, ``clamp_min=1e-3``, the reference system's behaviour) ``E`` is the
    plain mean over valid pixels and the foreground weight is not used; with
    ``silog_weighted=True`` ``E`` is the ``w``-weighted mean (``sum(w g) / sum(w)``). The
    classic Eigen et al. variant uses ``variance_factor=0.85``. Under DDP the three sums
    (``sum w``, ``sum w g``, ``sum w g^2``) are all-reduced so the loss value is the one of the
    whole global batch; the gradient is made exact by a first-order surrogate (see
    :func:`silog_surrogate`): every rank returns the global value and DDP's average of the
    rank gradients equals the single-process gradient (up to float rounding). Not exact: only
    the gradient is, not higher derivatives; the all-reduce is a collective, so every rank must
    call the loss in the same iterations (the head does: same pipeline, same ``loss_weight``).
    With 'l1' each rank logs its share (their mean is the global loss); with 'silog' each rank
    logs the global value.

    The result is multiplied by ``loss_weight`` (the distillation lambda); an all-invalid batch
    gives exactly 0 (still connected to the graph, no NaN).

    Args:
        loss_type: 'l1' or 'silog'.
        foreground: 'heatmap', 'box' or 'none' (see above).
        foreground_weight: weight of foreground pixels (``distill.foreground_weight``).
        loss_weight: lambda (``distill.lambda``); ``DistillWeightHook`` may change it.
        variance_factor: silog's ``lambda`` in ``E[g^2] - lambda E[g]^2``.
        silog_weighted: use the foreground weights inside silog's means.
        clamp_min: lower clamp of the student depth before the log (silog only), metres.
        eps: epsilon of the depth decoding.
    """

    def __init__(self,
                 loss_type: str = 'l1',
                 foreground: str = 'heatmap',
                 foreground_weight: float = 5.0,
                 loss_weight: float = 0.5,
                 variance_factor: float = 0.5,
                 silog_weighted: bool = False,
                 clamp_min: float = 1e-3,
                 eps: float = 1e-6) -> None:
        super().__init__()
        if loss_type not in _LOSS_TYPES:
            raise ValueError(f'loss_type must be one of {_LOSS_TYPES}, got {loss_type!r}')
        if foreground not in _FOREGROUND_MODES:
            raise ValueError(f'foreground must be one of {_FOREGROUND_MODES}, got {foreground!r}')
        if foreground_weight < 0:
            raise ValueError(f'foreground_weight must be >= 0, got {foreground_weight}')
        if not 0.0 <= variance_factor <= 1.0:
            raise ValueError(f'variance_factor must be in [0, 1], got {variance_factor}')
        self.loss_type = loss_type
        self.foreground = foreground
        self.foreground_weight = float(foreground_weight)
        self.loss_weight = float(loss_weight)
        self.variance_factor = float(variance_factor)
        self.silog_weighted = silog_weighted
        self.clamp_min = float(clamp_min)
        self.eps = float(eps)

    def pixel_weights(self, valid: Tensor, heatmap_target: Optional[Tensor] = None,
                      boxes_2d: Optional[Sequence[Tensor]] = None) -> Tensor:
        """(B, 1, h, w) float weights, 0 where ``valid`` is False."""
        valid_f = valid.to(torch.float32)
        if self.foreground == 'none' or self.foreground_weight == 1.0:
            return valid_f
        if self.foreground == 'heatmap':
            if heatmap_target is None:
                raise ValueError("DepthDistillLoss(foreground='heatmap') needs heatmap_target")
            if heatmap_target.shape[-2:] != valid.shape[-2:]:
                raise ValueError(f'heatmap_target {tuple(heatmap_target.shape)} and teacher '
                                 f'{tuple(valid.shape)} differ in size')
            fg = heatmap_target.detach().to(torch.float32).amax(dim=1, keepdim=True)
            weight = 1.0 + (self.foreground_weight - 1.0) * fg
        else:
            if boxes_2d is None:
                raise ValueError("DepthDistillLoss(foreground='box') needs boxes_2d")
            inside = box_foreground_mask(boxes_2d, valid.shape, valid.device)
            weight = torch.where(inside, self.foreground_weight, 1.0)
        return weight * valid_f

    def _prepare(self, depth_logit: Tensor, teacher: Tensor, valid: Tensor,
                 heatmap_target: Optional[Tensor], boxes_2d: Optional[Sequence[Tensor]]
                 ) -> tuple[Tensor, Tensor, Tensor]:
        """Checked inputs -> (student depth, teacher with 1 where invalid, pixel weights)."""
        if depth_logit.dim() != 4 or depth_logit.shape[1] != 1:
            raise ValueError(f'depth_logit must be (B, 1, h, w), got {tuple(depth_logit.shape)}')
        if teacher.shape != depth_logit.shape or valid.shape != depth_logit.shape:
            raise ValueError(f'teacher {tuple(teacher.shape)} / valid {tuple(valid.shape)} must '
                             f'match depth_logit {tuple(depth_logit.shape)}')
        teacher = teacher.detach().to(torch.float32)
        # An invalid teacher pixel never takes part, whatever its value (0, NaN, inf).
        valid = valid.to(torch.bool) & torch.isfinite(teacher) & (teacher > 0)
        if self.loss_type == 'silog' and not self.silog_weighted:
            weight = valid.to(torch.float32)  # the reference: plain mean over valid pixels
        else:
            weight = self.pixel_weights(valid, heatmap_target, boxes_2d)
        student = decode_depth(depth_logit.float(), self.eps)
        safe_teacher = torch.where(valid, teacher, torch.ones_like(teacher))
        return student, safe_teacher, weight

    def _silog_sums(self, student: Tensor, teacher: Tensor, weight: Tensor) -> Tensor:
        """(3,) ``sum w``, ``sum w g``, ``sum w g^2`` with ``g = log d - log d*``."""
        g = torch.log(student.clamp(min=self.clamp_min)) - torch.log(teacher)
        g = torch.where(weight > 0, g, torch.zeros_like(g))
        return torch.stack([weight.sum(), (weight * g).sum(), (weight * g * g).sum()])

    @torch.no_grad()
    def local_stats(self,
                    depth_logit: Tensor,
                    teacher: Tensor,
                    valid: Tensor,
                    heatmap_target: Optional[Tensor] = None,
                    boxes_2d: Optional[Sequence[Tensor]] = None) -> Tensor:
        """This rank's statistics for ``global_stats``: 'l1' (1,) the weight sum; 'silog' (3,)
        ``sum w``, ``sum w g``, ``sum w g^2``."""
        student, teacher, weight = self._prepare(depth_logit, teacher, valid, heatmap_target,
                                                 boxes_2d)
        if self.loss_type == 'l1':
            return weight.sum().reshape(1)
        return self._silog_sums(student, teacher, weight)

    def forward(self,
                depth_logit: Tensor,
                teacher: Tensor,
                valid: Tensor,
                heatmap_target: Optional[Tensor] = None,
                boxes_2d: Optional[Sequence[Tensor]] = None,
                global_stats: Optional[Tensor] = None) -> Tensor:
        """Compute ``loss_weight * L_distill``.

        Args:
            depth_logit: (B, 1, h, w) raw (pre-activation) depth logit of the head, stride 4.
            teacher: (B, 1, h, w) teacher depth, metres x crop scale, any value where invalid.
            valid: (B, 1, h, w) bool, teacher validity.
            heatmap_target: (B, C, h, w) Gaussian heatmap target ('heatmap' foreground).
            boxes_2d: per image (n_i, 4) 2D boxes on the output grid ('box' foreground).
            global_stats: :meth:`local_stats` summed over all ranks (the head reduces every
                normaliser in one collective); None: reduced here.

        Returns:
            Scalar tensor.
        """
        student, safe_teacher, weight = self._prepare(depth_logit, teacher, valid,
                                                      heatmap_target, boxes_2d)
        if self.loss_type == 'l1':
            local_sum = (weight * (student - safe_teacher).abs()).sum()
            if global_stats is None:
                global_stats = dist_utils.global_sum(weight.sum().reshape(1))
            # All weights 0 on every rank -> local_sum is exactly 0 and so is the loss.
            norm = (global_stats[0].clamp(min=0) / dist_utils.get_world_size()).clamp(min=_TINY)
            loss = local_sum / norm
        else:
            sums = self._silog_sums(student, safe_teacher, weight)
            totals = dist_utils.global_sum(sums) if global_stats is None else global_stats
            world = dist_utils.get_world_size()
            any_valid = (totals[0] > 0).to(sums.dtype)
            if world == 1:
                loss = silog_from_sums(sums, self.variance_factor)
            else:
                loss = silog_surrogate(sums, totals, self.variance_factor, world)
            loss = loss * any_valid
        return self.loss_weight * loss


def silog_from_sums(sums: Tensor, variance_factor: float) -> Tensor:
    """``sqrt(E[g^2] - f E[g]^2 + 1e-8)`` from ``sums = (sum w, sum w g, sum w g^2)``."""
    total_w = sums[0].clamp(min=_TINY)  # all-invalid: means are 0, the caller zeroes the loss
    mean_g = sums[1] / total_w
    mean_g2 = sums[2] / total_w
    return torch.sqrt((mean_g2 - variance_factor * mean_g * mean_g).clamp(min=0) + 1e-8)


def silog_surrogate(local_sums: Tensor, global_sums: Tensor, variance_factor: float,
                    world_size: int) -> Tensor:
    """Per-rank silog whose value is the global loss and whose DDP-averaged gradient is exact.

    With global sums ``W, S1, S2`` (constants) and ``L = silog_from_sums(W, S1, S2)``,
    ``dL = (dS2 / W - 2 f S1 dS1 / W^2) / (2 L)`` and ``dS = sum_r dS_r``. Each rank returns
    ``L + world * (dS2_r / W - 2 f S1 dS1_r / W^2) / (2 L)`` where ``dS_r`` is its local sum minus
    its detached value (0 in value, carries the gradient). DDP divides the summed gradients by
    ``world``, which gives exactly ``dL``. The weights are constants (teacher validity and
    targets), so ``sum w`` carries no gradient.
    """
    w_tot = global_sums[0].detach().clamp(min=_TINY)
    s1_tot = global_sums[1].detach()
    value = silog_from_sums(global_sums.detach(), variance_factor)
    d_s1 = local_sums[1] - local_sums[1].detach()
    d_s2 = local_sums[2] - local_sums[2].detach()
    grad_part = (d_s2 / w_tot - 2.0 * variance_factor * s1_tot * d_s1 / (w_tot * w_tot)) / (
        2.0 * value)
    return value + world_size * grad_part

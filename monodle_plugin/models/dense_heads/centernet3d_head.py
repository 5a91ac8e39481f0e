"""MonoDLE's CenterNet-style monocular 3D head: seven dense branches at stride 4.

The head owns the branches, the loss calls and the distillation call; target encoding and
decoding live in its box coder (:class:`MonoDLEBBoxCoder`, ``bbox_coder``), as mmdet3d's SMOKE
head does with ``SMOKECoder``. Targets, losses and decoding follow the official MonoDLE
implementation (xinzhuma/monodle) number for number; deviations are limited to degenerate
batches (no object -> 0 instead of NaN) and to DDP normalisation (global counts, so DDP equals
single-process training; all normalisers of an iteration go through one collective).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from mmdet3d.models.dense_heads.base_mono3d_dense_head import BaseMono3DDenseHead
from mmdet3d.registry import MODELS, TASK_UTILS
from mmengine.structures import InstanceData
from torch import Tensor, nn

from ...structures.geometry import encode_depth
from ..losses.depth_distill_loss import teacher_valid_stats, valid_fraction
from ..task_modules.coders.monodle_bbox_coder import gather_at
from ..utils import dist_utils
from ..utils.precision import loss_precision

BRANCHES = ('heatmap', 'offset_2d', 'size_2d', 'depth', 'offset_3d', 'size_3d', 'heading')
#: MonoDLE's losses, all with weight 1 (lib/losses/centernet_loss.py)
DEFAULT_LOSSES = dict(
    heatmap=dict(type='CornerNetFocalLoss', loss_weight=1.0),
    offset_2d=dict(type='mmdet.L1Loss', loss_weight=1.0),
    size_2d=dict(type='mmdet.L1Loss', loss_weight=1.0),
    depth=dict(type='LaplacianAleatoricDepthLoss', loss_weight=1.0),
    offset_3d=dict(type='mmdet.L1Loss', loss_weight=1.0),
    size_3d=dict(type='DimAwareL1Loss', loss_weight=1.0),
    heading=dict(type='MultiBinHeadingLoss', loss_weight=1.0))
#: the head's submodules whose parameters each loss term trains. A term that is switched off
#: (``loss_depth_distill`` with weight 0, e.g. by ``DistillWeightHook``) is not computed; the
#: parameters that only it trains then get an exact zero gradient instead (``0 * sum``), so that
#: DDP (``find_unused_parameters=False``) sees every parameter in every iteration. A subclass
#: that adds a branch and its term adds the pair here.
TERM_MODULES = dict(heatmap=('heatmap', ), offset_2d=('offset_2d', ), size_2d=('size_2d', ),
                    depth=('depth', ), offset_3d=('offset_3d', ), size_3d=('size_3d', ),
                    heading=('heading', ),
                    depth_distill=('depth', 'dense_depth_uncertainty'))
#: decoding settings of a head built without ``test_cfg`` (or with some keys left out); the
#: configs set them in ``model.bbox_head.test_cfg``, which is the one source of the detection
#: threshold ``score_thr`` (the drawing tools follow it:
#: :func:`~monodle_plugin.models.detectors.monodle.drawing_score_thr`)
DEFAULT_TEST_CFG = dict(topk=50, score_thr=0.2, nms_kernel=3, decode_mode='official')


@MODELS.register_module()
class CenterNet3DHead(BaseMono3DDenseHead):
    """MonoDLE head: heatmap, offset_2d, size_2d, depth, offset_3d, size_3d, heading.

    Each branch is ``Conv3x3(in, feat) -> ReLU -> Conv1x1(feat, out)``; parameter names
    (``heatmap.0.weight`` ...) equal MonoDLE's. With ``fuse_branches`` the seven 3x3
    convolutions run as one convolution over their concatenated weights (same numbers, same
    state dict). On CPU the fused path measured *slower* than seven separate convolutions and
    holds a 7 x ``feat_channels`` intermediate, so it is off by default; ``channels_last`` is
    what speeds the head up.

    Targets: when every data sample carries ``monodle_targets`` (``EncodeMonoDLETargets`` in
    the training pipeline, as in every training config of the package), the head stacks those
    (already on the device: the data preprocessor moved them with the batch) and reads nothing
    back to the host; otherwise (a user's own pipeline without that step) it encodes the
    ground truth itself with its ``bbox_coder`` (on the host, then copied to the device). Both
    give the same numbers; the packed targets must come from a coder with the head's settings
    and for the head's output size (checked, an error names what differs).

    Switched-off losses: ``loss_depth_distill`` with weight 0 (``DistillWeightHook``'s
    ``off_after_epoch``, a warm-up starting at 0) is not computed and needs no teacher depth;
    it is logged as 0 and gives the parameters only it trains (:data:`TERM_MODULES`: the dense
    uncertainty branch) an exact zero gradient, so that DDP without ``find_unused_parameters``
    keeps running.

    Losses: every loss that needs a global normaliser has ``local_stats(*args)`` and takes
    ``global_stats``; :meth:`loss_by_feat` sums all of them over the DDP ranks in one collective.
    Losses without ``local_stats`` on gathered objects (``mmdet.L1Loss``...) get
    ``avg_factor`` = global element count / world size. To add a branch, extend
    ``out_channels`` / :data:`BRANCHES` handling in a subclass and add its term in
    :meth:`loss_terms` (and its modules in :data:`TERM_MODULES`).

    Args:
        num_classes: heatmap channels. Defaults to 3 (Pedestrian, Car, Cyclist).
        in_channels: channels of the stride-4 feature map. Defaults to 64.
        feat_channels: hidden channels of every branch (MonoDLE ``head_conv``). Defaults to 256.
        bbox_coder: :class:`MonoDLEBBoxCoder` config (``TASK_UTILS``): writelist, depth range,
            heading bins, mean sizes, stride... ``num_classes`` defaults to the head's.
        heatmap_bias: initial bias of the heatmap output. Defaults to -2.19.
        init_std: std of the normal init of the other branches. Defaults to 0.001.
        depth_init: initial decoded depth in metres of the depth branch: the bias of its
            depth-logit output is set to the logit that ``decode_depth`` maps to this depth
            (the log-variance channel keeps bias 0). None keeps MonoDLE's bias 0, i.e. every
            pixel starts at 1 m and the depth has to climb to ~20-40 m first. Defaults to None.
        fuse_branches: run the seven 3x3 convolutions as one. Defaults to False (see above).
        use_distill_uncertainty: add the seed system's dense depth-uncertainty branch
            ``dense_depth_uncertainty`` (``Conv3x3(in, feat) -> ReLU -> Conv1x1(feat, 1)``, normal
            init ``init_std``, bias 0: log-variance ~ 0 at start), output
            ``dense_depth_uncertainty`` (B, 1, h, w) = ``log sigma^2`` of the dense depth, used by
            ``UncertaintyDepthDistillLoss`` (the seed's ``model.use_distill_uncertainty``; set
            by the ``distill.use_uncertainty`` switch). Defaults to False. Decoding ignores it.
        loss_*: loss configs (``MODELS``), None for :data:`DEFAULT_LOSSES`;
            ``loss_depth_distill=None`` disables distillation.
        test_cfg: ``topk``, ``score_thr`` (heatmap score of a kept peak; also the default
            threshold of the drawn boxes), ``nms_kernel``, ``decode_mode`` ('official': scale
            by raw-image size / feature size as MonoDLE's tester does; 'affine': exact inverse
            of ``metainfo['inv_affine_mat']``); keys left out: :data:`DEFAULT_TEST_CFG`.
    """

    def __init__(self,
                 num_classes: int = 3,
                 in_channels: int = 64,
                 feat_channels: int = 256,
                 bbox_coder: dict | None = None,
                 heatmap_bias: float = -2.19,
                 init_std: float = 0.001,
                 depth_init: float | None = None,
                 fuse_branches: bool = False,
                 use_distill_uncertainty: bool = False,
                 loss_heatmap: dict | None = None,
                 loss_offset_2d: dict | None = None,
                 loss_size_2d: dict | None = None,
                 loss_depth: dict | None = None,
                 loss_offset_3d: dict | None = None,
                 loss_size_3d: dict | None = None,
                 loss_heading: dict | None = None,
                 loss_depth_distill: dict | None = None,
                 train_cfg: dict | None = None,
                 test_cfg: dict | None = None,
                 init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg=init_cfg)
        coder_cfg = dict(type='MonoDLEBBoxCoder')
        coder_cfg.update(bbox_coder or {})
        coder_cfg.setdefault('num_classes', num_classes)
        self.bbox_coder = TASK_UTILS.build(coder_cfg)
        if self.bbox_coder.num_classes != num_classes:
            raise ValueError(f'CenterNet3DHead: num_classes={num_classes} but bbox_coder.'
                             f'num_classes={self.bbox_coder.num_classes}')
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.feat_channels = feat_channels
        self.fuse_branches = fuse_branches
        self.train_cfg = train_cfg
        self.test_cfg = dict(DEFAULT_TEST_CFG)
        self.test_cfg.update(test_cfg or {})
        if self.test_cfg['decode_mode'] not in ('official', 'affine'):
            raise ValueError("CenterNet3DHead: test_cfg.decode_mode must be 'official' or "
                             f"'affine', got {self.test_cfg['decode_mode']!r}")
        self.out_channels = dict(heatmap=num_classes, offset_2d=2, size_2d=2, depth=2,
                                 offset_3d=2, size_3d=3,
                                 heading=2 * self.bbox_coder.num_heading_bins)
        for name in BRANCHES:
            branch = nn.Sequential(
                nn.Conv2d(in_channels, feat_channels, 3, padding=1, bias=True),
                nn.ReLU(inplace=True),
                nn.Conv2d(feat_channels, self.out_channels[name], 1, bias=True))
            if name == 'heatmap':
                branch[-1].bias.data.fill_(heatmap_bias)
            else:
                for m in branch.modules():
                    if isinstance(m, nn.Conv2d):
                        nn.init.normal_(m.weight, std=init_std)
                        nn.init.constant_(m.bias, 0)
            if name == 'depth' and depth_init is not None:
                branch[-1].bias.data[0] = encode_depth(depth_init, self.bbox_coder.depth_eps)
            self.add_module(name, branch)
        self.use_distill_uncertainty = bool(use_distill_uncertainty)
        if self.use_distill_uncertainty:
            self.dense_depth_uncertainty = nn.Sequential(
                nn.Conv2d(in_channels, feat_channels, 3, padding=1, bias=True),
                nn.ReLU(inplace=True),
                nn.Conv2d(feat_channels, 1, 1, bias=True))
            for m in self.dense_depth_uncertainty.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.normal_(m.weight, std=init_std)
                    nn.init.constant_(m.bias, 0)
        given = dict(heatmap=loss_heatmap, offset_2d=loss_offset_2d, size_2d=loss_size_2d,
                     depth=loss_depth, offset_3d=loss_offset_3d, size_3d=loss_size_3d,
                     heading=loss_heading)
        for name in BRANCHES:
            self.add_module(f'loss_{name}', MODELS.build(given[name] or DEFAULT_LOSSES[name]))
        self.loss_depth_distill = (MODELS.build(loss_depth_distill)
                                   if loss_depth_distill is not None else None)
        if (getattr(self.loss_depth_distill, 'needs_uncertainty', False)
                and not self.use_distill_uncertainty):
            raise ValueError(
                f'CenterNet3DHead: loss_depth_distill={type(self.loss_depth_distill).__name__} '
                'needs the dense depth-uncertainty branch: set model.bbox_head.'
                'use_distill_uncertainty=True (the distill.use_uncertainty switch does it)')

    def init_weights(self) -> None:
        """MonoDLE's initialisation is applied at construction; only ``init_cfg`` runs here."""
        if self.init_cfg:
            super().init_weights()

    # ------------------------------------------------------------------ forward
    def forward(self, feats: Tensor | Sequence[Tensor]) -> dict[str, Tensor]:
        """Stride-4 features (B, in_channels, h, w) (or a 1-sequence of them) -> raw maps.

        Returns:
            dict: ``heatmap`` (B, num_classes, h, w), ``offset_2d`` (B, 2, h, w),
            ``size_2d`` (B, 2, ..), ``depth`` (B, 2: depth logit, log-variance),
            ``offset_3d`` (B, 2), ``size_3d`` (B, 3), ``heading`` (B, 2 * bins),
            all pre-activation; with ``use_distill_uncertainty`` also
            ``dense_depth_uncertainty`` (B, 1, h, w), the log-variance of the dense depth.
        """
        x = feats if isinstance(feats, Tensor) else feats[0]
        outs = self._forward_branches(x)
        if self.use_distill_uncertainty:
            outs['dense_depth_uncertainty'] = self.dense_depth_uncertainty(x)
        return outs

    def _forward_branches(self, x: Tensor) -> dict[str, Tensor]:
        """The seven MonoDLE branches (separate or fused 3x3 convolutions)."""
        if not self.fuse_branches:
            return {name: getattr(self, name)(x) for name in BRANCHES}
        first = [getattr(self, name)[0] for name in BRANCHES]
        weight = torch.cat([m.weight for m in first])
        bias = torch.cat([m.bias for m in first])
        if x.is_contiguous(memory_format=torch.channels_last):
            weight = weight.contiguous(memory_format=torch.channels_last)
        hidden = F.relu(F.conv2d(x, weight, bias, padding=1), inplace=True)
        outs = {}
        for name, part in zip(BRANCHES, hidden.split(self.feat_channels, dim=1)):
            outs[name] = getattr(self, name)[2](part)
        return outs

    # ------------------------------------------------------------------ targets
    def get_targets(self, batch_gt_instances_3d: list[InstanceData],
                    batch_gt_instances: list[InstanceData], batch_img_metas: list[dict],
                    feat_hw: tuple[int, int], device: torch.device | str = 'cpu'
                    ) -> dict[str, Tensor]:
        """Batched MonoDLE targets (:meth:`MonoDLEBBoxCoder.encode`) as tensors on ``device``:
        maps (B, C, h, w), slots (B, max_objs, ...)."""
        targets = self.bbox_coder.encode_batch(batch_gt_instances_3d, batch_gt_instances,
                                               batch_img_metas, feat_hw)
        return {key: torch.from_numpy(value).to(device) for key, value in targets.items()}

    # ------------------------------------------------------------------ losses
    def loss(self, x: Tensor | Sequence[Tensor], batch_data_samples: list,
             **kwargs) -> dict[str, Tensor]:
        """Forward + losses; see ``loss_by_feat``."""
        outs = self(x)
        return self.loss_by_feat(outs, batch_data_samples)

    def loss_terms(self, outs: dict[str, Tensor], targets: dict[str, Tensor],
                   select: dict[str, Tensor], batch_data_samples: list
                   ) -> dict[str, tuple[nn.Module, tuple, dict]]:
        """Every loss of the iteration as ``name -> (loss module, args, kwargs)``, not yet run.

        Args:
            outs: raw maps of :meth:`forward`.
            targets: the batched targets on the maps' device (as :meth:`get_targets`).
            select: ``'2d'`` / ``'3d'``: flat (B * max_objs) indices of the slots with 2D / 3D
                targets, ``'num_2d'``: list of the per-image 2D counts (host integers: no
                device sync).
            batch_data_samples: the samples (teacher depth for distillation).

        Every prediction is cast to float32 (:func:`loss_precision`) before the depth decoding
        and the losses: under autocast (``--amp``) the maps arrive in float16 / bfloat16; a
        float32 run is unchanged (the cast is a no-op).
        """
        def gathered(name: str, key: str) -> Tensor:
            pred = loss_precision(gather_at(outs[name], targets['indices']))
            return pred.reshape(-1, pred.shape[-1]).index_select(0, select[key])

        def target(name: str, key: str) -> Tensor:
            value = targets[name]
            return value.reshape(-1, *value.shape[2:]).index_select(0, select[key])

        prob = outs['heatmap'].float().sigmoid().clamp(min=1e-4, max=1 - 1e-4)
        depth = gathered('depth', '3d')
        size_target = target('size_3d', '3d')
        terms = dict(
            heatmap=(self.loss_heatmap, (prob, targets['heatmap']), {}),
            offset_2d=(self.loss_offset_2d, (gathered('offset_2d', '2d'),
                                             target('offset_2d', '2d')), {}),
            size_2d=(self.loss_size_2d, (gathered('size_2d', '2d'), target('size_2d', '2d')), {}),
            offset_3d=(self.loss_offset_3d, (gathered('offset_3d', '3d'),
                                             target('offset_3d', '3d')), {}),
            depth=(self.loss_depth, (self.bbox_coder.decode_depth(depth[:, 0]), depth[:, 1],
                                     target('depth', '3d')[:, 0]), {}),
            size_3d=(self.loss_size_3d, (gathered('size_3d', '3d'), size_target, size_target),
                     {}),
            heading=(self.loss_heading, (gathered('heading', '2d'),
                                         target('heading_bin', '2d')[:, 0],
                                         target('heading_res', '2d')[:, 0]), {}))
        distill = self.loss_depth_distill
        if distill is not None and getattr(distill, 'loss_weight', 1.0) != 0:
            terms['depth_distill'] = (distill, *self._distill_inputs(
                outs, targets, select, batch_data_samples))
        return terms

    def _distill_inputs(self, outs: dict[str, Tensor], targets: dict[str, Tensor],
                        select: dict, batch_data_samples: list) -> tuple[tuple, dict]:
        """(args, kwargs) of ``loss_depth_distill``; a forgotten ``LoadDA3Depth`` is an error."""
        distill = self.loss_depth_distill
        lacking = [ds.metainfo.get('sample_idx', i) for i, ds in enumerate(batch_data_samples)
                   if 'gt_depth' not in ds]
        if lacking:
            raise ValueError(
                'CenterNet3DHead: loss_depth_distill is configured (loss_weight '
                f'{distill.loss_weight}) but samples {lacking} carry no teacher depth: add '
                "dict(type='LoadDA3Depth', ...) after MonoDLEAffineAug in the training "
                'pipeline, or set the loss_weight / distill lambda to 0')
        heatmap = outs['heatmap']
        teacher = torch.stack([ds.gt_depth.depth for ds in batch_data_samples])
        valid = torch.stack([ds.gt_depth.valid for ds in batch_data_samples])
        if tuple(teacher.shape[-2:]) != tuple(heatmap.shape[-2:]):
            raise ValueError(f'CenterNet3DHead: teacher depth {tuple(teacher.shape)} '
                             f'does not match the head output {tuple(heatmap.shape[-2:])}')
        boxes = targets['boxes_2d'].reshape(-1, 4).index_select(0, select['2d'])
        boxes = list(boxes.split(select['num_2d']))
        student = (loss_precision(outs['depth'][:, 0:1]), )  # float32 under autocast too
        if getattr(distill, 'needs_uncertainty', False):  # the branch exists (checked at build)
            student += (loss_precision(outs['dense_depth_uncertainty']), )
        if teacher.device != heatmap.device:  # on the device already after the preprocessor
            teacher, valid = teacher.to(heatmap.device), valid.to(heatmap.device)
        return ((*student, teacher, valid),
                dict(heatmap_target=targets['heatmap'], boxes_2d=boxes))

    def loss_by_feat(self, outs: dict[str, Tensor], batch_data_samples: list
                     ) -> dict[str, Tensor]:
        """MonoDLE's seven losses (+ ``loss_depth_distill`` when configured).

        Targets come packed with the samples (``EncodeMonoDLETargets``) or are encoded here
        (see the class docstring). The normalisers of all losses (object counts, positives,
        the dim-aware weight's sums, the distillation weights) are summed over the DDP ranks in
        one collective (:func:`dist_utils.reduce_stats`); with packed targets nothing is read
        back to the host. A distillation loss with weight 0 is logged as 0 (see the class
        docstring).
        """
        heatmap = outs['heatmap']
        device = heatmap.device
        feat_hw = tuple(heatmap.shape[-2:])
        packed = self.packed_targets(batch_data_samples, feat_hw, device)
        if packed is None:
            targets, select = self.encode_targets(batch_data_samples, feat_hw, device)
        else:
            targets, select = packed
        terms = self.loss_terms(outs, targets, select, batch_data_samples)
        local = {}
        for name, (module, args, kwargs) in terms.items():
            if hasattr(module, 'local_stats'):
                local[name] = module.local_stats(*args, **kwargs)
            elif name != 'depth_distill':  # mmdet losses on gathered objects: element count
                local[name] = torch.full((1, ), float(args[0].numel()), device=device)
        if 'depth_distill' in terms:  # valid teacher pixels, in the same collective
            local['distill_valid'] = teacher_valid_stats(terms['depth_distill'][1][2])
        totals = dict(zip(local, dist_utils.reduce_stats(list(local.values()))))
        world = dist_utils.get_world_size()
        losses = {}
        if 'distill_valid' in totals:
            # logged, not a loss; DistillWeightHook stops a batch without any valid pixel
            losses['distill_valid_frac'] = valid_fraction(totals['distill_valid'])
        for name, (module, args, kwargs) in terms.items():
            if hasattr(module, 'local_stats'):
                kwargs = dict(kwargs, global_stats=totals[name])
            elif name in totals:
                kwargs = dict(kwargs, avg_factor=totals[name][0] / world)
            losses[f'loss_{name}'] = module(*args, **kwargs)
        for name in self.switched_off_terms():
            losses[f'loss_{name}'] = self._zero_loss(name, terms, device)
        return losses

    def switched_off_terms(self) -> list[str]:
        """Terms configured but not computed in this iteration: ``depth_distill`` while its
        ``loss_weight`` is 0."""
        distill = self.loss_depth_distill
        if distill is not None and getattr(distill, 'loss_weight', 1.0) == 0:
            return ['depth_distill']
        return []

    def _zero_loss(self, name: str, terms: dict, device: torch.device) -> Tensor:
        """0, connected to the parameters that only the switched-off term ``name`` trains.

        Their gradient is exactly 0 (not None): DDP with ``find_unused_parameters=False``
        needs a gradient of every parameter in every iteration. The cost is one sum per such
        parameter (no backward through the branch).
        """
        used = {module for other in terms for module in TERM_MODULES.get(other, ())}
        params = [p for module in TERM_MODULES.get(name, ()) if module not in used
                  and isinstance(getattr(self, module, None), nn.Module)
                  for p in getattr(self, module).parameters() if p.requires_grad]
        zero = torch.zeros((), device=device)
        if not params:
            return zero
        # + 0.0: a positive zero in the log whatever the sign of the sum
        return zero + torch.stack([p.sum() for p in params]).sum() * 0.0

    def encode_targets(self, batch_data_samples: list, feat_hw: tuple[int, int],
                       device: torch.device) -> tuple[dict[str, Tensor], dict]:
        """Encode the samples' ground truth here (``bbox_coder.encode_batch``, on the host).

        Returns:
            ``(targets, select)`` as :meth:`loss_terms` takes them.
        """
        encoded = self.bbox_coder.encode_batch(
            [ds.gt_instances_3d for ds in batch_data_samples],
            [ds.gt_instances for ds in batch_data_samples],
            [ds.metainfo for ds in batch_data_samples], feat_hw)
        select = {key: torch.from_numpy(np.flatnonzero(encoded[f'mask_{key}'])).to(device)
                  for key in ('2d', '3d')}
        select['num_2d'] = encoded['mask_2d'].sum(1).tolist()
        targets = {key: torch.from_numpy(value).to(device) for key, value in encoded.items()}
        return targets, select

    def packed_targets(self, batch_data_samples: list, feat_hw: tuple[int, int],
                       device: torch.device) -> tuple[dict[str, Tensor], dict] | None:
        """The targets ``EncodeMonoDLETargets`` packed into every sample, batched on ``device``.

        Stacks the per-sample arrays to (B, ...) and concatenates the per-sample slot indices
        with batch offsets (slot j of image i -> ``i * max_objs + j``): the same tensors
        :meth:`encode_targets` gives, with no device -> host read (counts are tensor shapes).

        Returns:
            ``(targets, select)`` as :meth:`loss_terms` takes them, or None when a sample has
            no packed targets.

        Raises:
            ValueError: the packed targets were encoded with other coder settings than
                ``bbox_coder``'s, or for another output size than ``feat_hw``.
        """
        if not batch_data_samples or not all('monodle_targets' in ds
                                             for ds in batch_data_samples):
            return None
        parts = [ds.monodle_targets for ds in batch_data_samples]
        mine = self.bbox_coder.encoding_settings()
        for ds, part in zip(batch_data_samples, parts):
            theirs = part.metainfo.get('coder', None) or {}
            if theirs != mine:
                keys = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
                raise ValueError(
                    'CenterNet3DHead: sample '
                    f"{ds.metainfo.get('sample_idx', ds.metainfo.get('img_path', '?'))} carries "
                    'targets of EncodeMonoDLETargets encoded with other settings than '
                    f'model.bbox_head.bbox_coder ({", ".join(keys)}): leave that step\'s '
                    'bbox_coder unset (MonoDLERunner copies the head\'s) or set the same values')
            if tuple(part.heatmap.shape[-2:]) != feat_hw:
                raise ValueError(
                    'CenterNet3DHead: EncodeMonoDLETargets encoded a '
                    f'{tuple(part.heatmap.shape[-2:])} target grid (image size / down_ratio) but '
                    f'the head outputs {feat_hw}: make the network input (MonoDLEAffineAug '
                    'output_size) divisible by the data preprocessor\'s pad_size_divisor, or '
                    'remove EncodeMonoDLETargets from the training pipeline')

        def on_device(tensor: Tensor) -> Tensor:
            return tensor if tensor.device == device else tensor.to(device)

        slots = self.bbox_coder.max_objs  # every sample's K (the settings are equal)
        targets = {key: on_device(torch.stack([part.get(key) for part in parts]))
                   for key in parts[0].keys() if not key.startswith('slots_')}
        select = {}
        for key in ('2d', '3d'):
            per_image = [part.get(f'slots_{key}') for part in parts]
            select[key] = on_device(torch.cat(
                [idx if i == 0 else idx + i * slots for i, idx in enumerate(per_image)]))
        select['num_2d'] = [int(part.slots_2d.shape[0]) for part in parts]
        return targets, select

    # ------------------------------------------------------------------ decoding
    def predict(self, x: Tensor | Sequence[Tensor], batch_data_samples: list,
                rescale: bool = True) -> tuple[list[InstanceData], list[InstanceData]]:
        """Forward + ``predict_by_feat`` with the samples' metainfo."""
        outs = self(x)
        return self.predict_by_feat(outs, [ds.metainfo for ds in batch_data_samples])

    def predict_by_feat(self, outs: dict[str, Tensor], batch_img_metas: list[dict]
                        ) -> tuple[list[InstanceData], list[InstanceData]]:
        """Decode detections like MonoDLE's ``extract_dets_from_outputs`` + ``decode_detections``.

        Returns:
            ``(results_3d, results_2d)`` as mmdet3d's PGD / FCOS3D heads return them, one
            ``InstanceData`` per image each: ``bboxes_3d`` (``CameraInstance3DBoxes``, bottom
            centre, camera frame of the raw image, metres / radians), ``scores_3d`` (heatmap
            score x exp(-log-variance)), ``labels_3d``, ``alphas`` (radians); and the 2D
            ``bboxes`` (N, 4) raw-image pixels, ``scores``, ``labels``.
        """
        cfg = self.test_cfg
        peaks = self.bbox_coder.select_peaks(outs['heatmap'], cfg['topk'], cfg['nms_kernel'])
        preds = self.bbox_coder.gather_predictions(outs, peaks, cfg['score_thr'])
        return self.bbox_coder.decode(preds, batch_img_metas, tuple(outs['heatmap'].shape[-2:]),
                                      cfg['decode_mode'])

"""MonoDLE's box coder: target encoding (``KITTI_Dataset.__getitem__``) and decoding.

Decoding runs in three steps, so that an analysis can replace predicted quantities of chosen
detections by ground-truth values between them (oracle studies):

1. :meth:`MonoDLEBBoxCoder.select_peaks`: heatmap NMS + MonoDLE's two-stage top-k;
2. :meth:`MonoDLEBBoxCoder.gather_predictions`: per image, the raw per-object predictions at the
   kept peaks as a dict of tensors (feature-grid offsets and sizes, metres, radians);
3. :meth:`MonoDLEBBoxCoder.decode`: such dicts -> 3D boxes and 2D boxes in the raw image.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from mmdet.models.task_modules import BaseBBoxCoder
from mmdet.models.utils.gaussian_target import gaussian2D
from mmdet3d.registry import TASK_UTILS
from mmdet3d.structures import CameraInstance3DBoxes
from mmengine.structures import InstanceData
from torch import Tensor

from ....structures.classes import MONODLE_CLASSES
from ....structures.geometry import (
    apply_affine,
    camera_parameters,
    decode_depth,
    image_to_camera,
    wrap_angle,
)

DIFFICULTY_UNKNOWN = 4  # MonoDLE level 'UnKnown'
DECODE_MODES = ('official', 'affine')
#: MonoDLE's mean (h, w, l) per class, metres (Pedestrian, Car, Cyclist)
MONODLE_MEAN_SIZE = ((1.76255119, 0.66068622, 0.84422524),
                     (1.52563191, 1.62856739, 3.52588311),
                     (1.73698127, 0.59706367, 1.76282397))


def monodle_gaussian_radius(width: np.float32, height: np.float32,
                            min_overlap: float = 0.7) -> float:
    """Heatmap radius of a box (feature-grid pixels), CenterNet's formula as MonoDLE uses it.

    mmdet's ``gaussian_radius`` implements the corrected CornerNet roots, which give other
    radii; MonoDLE keeps CenterNet's ``(b + sqrt(b^2 - 4ac)) / 2`` for all three cases.
    """
    a1 = 1
    b1 = height + width
    c1 = width * height * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + np.sqrt(b1 ** 2 - 4 * a1 * c1)) / 2
    a2 = 4
    b2 = 2 * (height + width)
    c2 = (1 - min_overlap) * width * height
    r2 = (b2 + np.sqrt(b2 ** 2 - 4 * a2 * c2)) / 2
    a3 = 4 * min_overlap
    b3 = -2 * min_overlap * (height + width)
    c3 = (min_overlap - 1) * width * height
    r3 = (b3 + np.sqrt(b3 ** 2 - 4 * a3 * c3)) / 2
    return min(r1, r2, r3)


def angle_to_bin(angle: float, num_bins: int) -> tuple[int, float]:
    """Angle (radians) -> (bin index, residual to the bin centre), MonoDLE's convention."""
    angle = angle % (2 * np.pi)
    per_bin = 2 * np.pi / float(num_bins)
    shifted = (angle + per_bin / 2) % (2 * np.pi)
    bin_id = int(shifted / per_bin)
    return bin_id, shifted - (bin_id * per_bin + per_bin / 2)


def gather_at(feat: Tensor, inds: Tensor) -> Tensor:
    """(B, C, h, w) map, (B, K) flat indices -> (B, K, C) values."""
    b, c = feat.shape[:2]
    flat = feat.reshape(b, c, -1)
    return flat.gather(2, inds.unsqueeze(1).expand(b, c, inds.shape[1])).permute(0, 2, 1)


@TASK_UTILS.register_module()
class MonoDLEBBoxCoder(BaseBBoxCoder):
    """Encode KITTI objects into MonoDLE's targets and decode the head's maps into boxes.

    Args:
        num_classes: heatmap channels. Defaults to 3.
        class_names: names of the classes, in label order (:data:`MONODLE_CLASSES`).
        writelist: names that get targets (MonoDLE ``writelist``). Names outside
            ``class_names`` need ``gt_instances_3d.names`` in the data samples.
        heatmap_only_names: names drawn on ``heatmap_only_label``'s channel without
            regression targets, when they are in the writelist (MonoDLE: Van, Truck, DontCare).
        heatmap_only_label: heatmap channel for those names. Defaults to 1 (Car).
        max_objs: only the first ``max_objs`` label lines (file order, before filtering) are
            considered. Defaults to 50.
        min_depth / max_depth: objects with z (metres) outside are dropped. 2 / 65.
        ignore_difficulties: MonoDLE levels that are dropped. Defaults to (4,) ('UnKnown').
        use_3d_center: heatmap peak at the projected 3D centre (True) or the 2D box centre.
        num_heading_bins: angle bins (the heading branch has ``2 * num_heading_bins`` channels).
        cls_mean_size: (num_classes, 3) mean (h, w, l) in metres per class.
        use_mean_size: regress sizes as residuals to ``cls_mean_size`` (MonoDLE ``meanshape``,
            off by default: the mean size is then zero).
        down_ratio: network-input pixels per output pixel. Defaults to 4.
        gaussian_overlap: ``min_overlap`` of the radius formula. Defaults to 0.7.
        depth_eps: epsilon of the depth decoding ``1 / (sigmoid(x) + eps) - 1``.
    """

    def __init__(self,
                 num_classes: int = 3,
                 class_names: Sequence[str] = MONODLE_CLASSES,
                 writelist: Sequence[str] = ('Car', ),
                 heatmap_only_names: Sequence[str] = ('Van', 'Truck', 'DontCare'),
                 heatmap_only_label: int = 1,
                 max_objs: int = 50,
                 min_depth: float = 2.0,
                 max_depth: float = 65.0,
                 ignore_difficulties: Sequence[int] = (DIFFICULTY_UNKNOWN, ),
                 use_3d_center: bool = True,
                 num_heading_bins: int = 12,
                 cls_mean_size: Sequence[Sequence[float]] = MONODLE_MEAN_SIZE,
                 use_mean_size: bool = False,
                 down_ratio: int = 4,
                 gaussian_overlap: float = 0.7,
                 depth_eps: float = 1e-6) -> None:
        super().__init__()
        if len(class_names) != num_classes:
            raise ValueError(f'MonoDLEBBoxCoder: {len(class_names)} class_names for '
                             f'num_classes={num_classes}')
        mean_size = np.asarray(cls_mean_size, dtype=np.float32)
        if mean_size.shape != (num_classes, 3):
            raise ValueError(f'MonoDLEBBoxCoder: cls_mean_size must be ({num_classes}, 3) '
                             f'(h, w, l), got {mean_size.shape}')
        self.num_classes = num_classes
        self.class_names = tuple(class_names)
        self.writelist = tuple(writelist)
        self.heatmap_only_names = tuple(heatmap_only_names)
        self.heatmap_only_label = heatmap_only_label
        self.max_objs = max_objs
        self.min_depth = min_depth
        self.max_depth = max_depth
        self.ignore_difficulties = tuple(ignore_difficulties)
        self.use_3d_center = use_3d_center
        self.num_heading_bins = num_heading_bins
        self.use_mean_size = use_mean_size
        # MonoDLE zeroes the mean size when meanshape is off; decoding adds the same array.
        self.mean_size = mean_size if use_mean_size else np.zeros_like(mean_size)
        self.down_ratio = down_ratio
        self.gaussian_overlap = gaussian_overlap
        self.depth_eps = depth_eps
        self._kernels: dict[int, np.ndarray] = {}

    def encoding_settings(self) -> dict:
        """The arguments that decide :meth:`encode`'s output, as plain Python values.

        Two coders with equal settings encode every sample to the same arrays; the head
        compares its own with those of ``EncodeMonoDLETargets`` (packed with the targets).
        ``depth_eps`` is left out (decoding only); ``cls_mean_size`` enters as the mean size
        actually subtracted (zeros without ``use_mean_size``).
        """
        return dict(num_classes=int(self.num_classes), class_names=self.class_names,
                    writelist=self.writelist, heatmap_only_names=self.heatmap_only_names,
                    heatmap_only_label=int(self.heatmap_only_label),
                    max_objs=int(self.max_objs), min_depth=float(self.min_depth),
                    max_depth=float(self.max_depth),
                    ignore_difficulties=tuple(int(d) for d in self.ignore_difficulties),
                    use_3d_center=bool(self.use_3d_center),
                    num_heading_bins=int(self.num_heading_bins),
                    mean_size=tuple(tuple(row) for row in self.mean_size.tolist()),
                    down_ratio=float(self.down_ratio),
                    gaussian_overlap=float(self.gaussian_overlap))

    def decode_depth(self, depth_logit: Tensor) -> Tensor:
        """Raw depth logit -> metres (:func:`geometry.decode_depth`, this coder's eps)."""
        return decode_depth(depth_logit, self.depth_eps)

    # ------------------------------------------------------------------ encoding
    def _gaussian_kernel(self, radius: int) -> np.ndarray:
        """float32 cast of the float64 Gaussian MonoDLE draws (sigma = diameter / 6)."""
        if radius not in self._kernels:
            diameter = 2 * radius + 1
            self._kernels[radius] = gaussian2D(
                radius, sigma=diameter / 6, dtype=torch.float64).numpy()
        return self._kernels[radius]

    def _draw_gaussian(self, heatmap: np.ndarray, center: np.ndarray, radius: int) -> None:
        """Max-paste the kernel of ``radius`` centred at integer ``center`` (x, y), in place."""
        kernel = self._gaussian_kernel(radius)
        x, y = int(center[0]), int(center[1])
        height, width = heatmap.shape
        left, right = min(x, radius), min(width - x, radius + 1)
        top, bottom = min(y, radius), min(height - y, radius + 1)
        patch = heatmap[y - top:y + bottom, x - left:x + right]
        sub = kernel[radius - top:radius + bottom, radius - left:radius + right]
        if min(sub.shape) > 0 and min(patch.shape) > 0:
            np.maximum(patch, sub, out=patch)

    def _object_names(self, gt3d: InstanceData, labels: np.ndarray) -> list[str]:
        """Class name of every object (``names`` field, else from the label)."""
        if 'names' in gt3d:
            return [str(n) for n in gt3d.names]
        needs = set(self.writelist) - set(self.class_names)
        if needs:
            raise ValueError(f'MonoDLEBBoxCoder: writelist {self.writelist} contains '
                             f'{sorted(needs)}, which have label -1: pack '
                             'gt_instances_3d.names in the pipeline')
        return [self.class_names[i] if 0 <= i < self.num_classes else '' for i in labels]

    def encode(self, gt3d: InstanceData, gt2d: InstanceData, meta: dict,
               feat_hw: tuple[int, int]) -> dict[str, np.ndarray]:
        """MonoDLE's targets of one image (``KITTI_Dataset.__getitem__``), numpy.

        Args:
            gt3d: ``bboxes_3d`` (camera, bottom centre, (l, h, w) dims), ``labels_3d``,
                ``centers_2d`` (N, 2) network-input pixels, ``depths`` (N,) metres,
                ``alphas`` (N,), ``difficulty`` (N,) MonoDLE levels, optional ``names``.
            gt2d: ``bboxes`` (N, 4) network-input pixels, ``labels``.
            meta: metainfo; uses ``crop_scale`` (default 1) and ``random_crop`` (False).
            feat_hw: (h, w) of the output maps.

        Returns:
            dict of arrays with ``max_objs`` slots (slot i = i-th label line): ``heatmap``
            (C, h, w), ``indices`` (K,) flat peak index, ``offset_2d`` / ``offset_3d`` (K, 2) and
            ``size_2d`` (K, 2) feature-grid pixels, ``depth`` (K, 1) metres x crop scale,
            ``heading_bin`` / ``heading_res`` (K, 1), ``size_3d`` (K, 3) (h, w, l) minus the mean
            size, ``src_size_3d`` (K, 3), ``boxes_2d`` (K, 4) feature grid, ``mask_2d`` /
            ``mask_3d`` (K,) bool.
        """
        h, w = feat_hw
        k = self.max_objs
        t = dict(heatmap=np.zeros((self.num_classes, h, w), np.float32),
                 size_2d=np.zeros((k, 2), np.float32), offset_2d=np.zeros((k, 2), np.float32),
                 depth=np.zeros((k, 1), np.float32), heading_bin=np.zeros((k, 1), np.int64),
                 heading_res=np.zeros((k, 1), np.float32), src_size_3d=np.zeros((k, 3), np.float32),
                 size_3d=np.zeros((k, 3), np.float32), offset_3d=np.zeros((k, 2), np.float32),
                 indices=np.zeros((k, ), np.int64), mask_2d=np.zeros((k, ), bool),
                 mask_3d=np.zeros((k, ), bool), boxes_2d=np.zeros((k, 4), np.float32))
        num = len(gt3d)
        if num == 0:
            return t
        if len(gt2d) != num:
            raise ValueError(f'MonoDLEBBoxCoder: {len(gt2d)} 2D vs {num} 3D instances in '
                             f"{meta.get('img_path', '?')}")
        missing = [k for k in ('bboxes_3d', 'labels_3d', 'centers_2d', 'alphas', 'difficulty')
                   if k not in gt3d] + [f'gt_instances.{k}' for k in ('bboxes', ) if k not in gt2d]
        if missing:
            raise KeyError(f"MonoDLEBBoxCoder: {meta.get('img_path', 'a sample')} lacks "
                           f'{missing} (pack them with PackMonoDLEInputs)')
        labels = gt3d.labels_3d.cpu().numpy().astype(np.int64)
        names = self._object_names(gt3d, labels)
        boxes3d = gt3d.bboxes_3d.tensor.detach().cpu().numpy().astype(np.float32)
        depths = (gt3d.depths.cpu().numpy().astype(np.float32) if 'depths' in gt3d
                  else boxes3d[:, 2].copy())
        difficulty = gt3d.difficulty.cpu().numpy().astype(np.int64)
        alphas = gt3d.alphas.cpu().numpy().astype(np.float64)
        centers_3d = gt3d.centers_2d.cpu().numpy().astype(np.float64)
        bboxes = gt2d.bboxes.cpu().numpy().astype(np.float32)
        crop_scale = float(meta.get('crop_scale', 1.0))
        random_crop = bool(meta.get('random_crop', False))
        stride = np.float32(self.down_ratio)
        for i in range(min(num, self.max_objs)):
            name = names[i]
            if name not in self.writelist:
                continue
            if difficulty[i] in self.ignore_difficulties or depths[i] < self.min_depth:
                continue
            if depths[i] > self.max_depth:
                continue
            box = bboxes[i] / stride
            center_2d = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2], np.float32)
            center_3d = centers_3d[i] / self.down_ratio
            peak = (center_3d if self.use_3d_center else center_2d).astype(np.int32)
            if not (0 <= peak[0] < w and 0 <= peak[1] < h):
                continue
            bw, bh = box[2] - box[0], box[3] - box[1]
            radius = max(0, int(monodle_gaussian_radius(bw, bh, self.gaussian_overlap)))
            if name in self.heatmap_only_names:
                self._draw_gaussian(t['heatmap'][self.heatmap_only_label], peak, radius)
                continue
            cls_id = self.class_names.index(name)
            self._draw_gaussian(t['heatmap'][cls_id], peak, radius)
            t['indices'][i] = peak[1] * w + peak[0]
            t['offset_2d'][i] = center_2d - peak
            t['size_2d'][i] = bw, bh
            t['depth'][i] = depths[i] * crop_scale
            t['heading_bin'][i], t['heading_res'][i] = angle_to_bin(alphas[i],
                                                                     self.num_heading_bins)
            t['offset_3d'][i] = center_3d - peak
            # (h, w, l) from CameraInstance3DBoxes' (l, h, w)
            t['src_size_3d'][i] = boxes3d[i, [4, 5, 3]]
            t['size_3d'][i] = t['src_size_3d'][i] - self.mean_size[cls_id]
            t['boxes_2d'][i] = box
            t['mask_2d'][i] = True
            t['mask_3d'][i] = not random_crop
        return t

    def encode_batch(self, batch_gt_instances_3d: list[InstanceData],
                     batch_gt_instances: list[InstanceData], batch_img_metas: list[dict],
                     feat_hw: tuple[int, int]) -> dict[str, np.ndarray]:
        """:meth:`encode` of every image, stacked: maps (B, C, h, w), slots (B, max_objs, ...)."""
        per_img = [self.encode(g3, g2, m, feat_hw) for g3, g2, m in
                   zip(batch_gt_instances_3d, batch_gt_instances, batch_img_metas)]
        return {key: np.stack([t[key] for t in per_img]) for key in per_img[0]}

    # ------------------------------------------------------------------ decoding
    @staticmethod
    def select_peaks(heatmap_logits: Tensor, topk: int = 50, nms_kernel: int = 3
                     ) -> dict[str, Tensor]:
        """Heatmap NMS (max-pool) and MonoDLE's two-stage top-k (per class, then over classes).

        Args:
            heatmap_logits: (B, C, h, w) raw heatmap.
            topk: detections per image (at most ``h * w``).
            nms_kernel: max-pool window of the NMS.

        Returns:
            dict of (B, K) tensors: ``scores`` (sigmoid, clamped to [1e-4, 1 - 1e-4]),
            ``indices`` (flat peak index), ``labels``, ``xs`` / ``ys`` (float peak cell).
        """
        heat = heatmap_logits.float().sigmoid().clamp(min=1e-4, max=1 - 1e-4)
        hmax = F.max_pool2d(heat, nms_kernel, stride=1, padding=(nms_kernel - 1) // 2)
        heat = heat * (hmax == heat).float()
        b, c, h, w = heat.shape
        k = min(topk, h * w)
        scores, inds = torch.topk(heat.view(b, c, -1), k)
        ys = torch.div(inds, w, rounding_mode='floor').float()
        xs = (inds % w).float()
        score, ind = torch.topk(scores.view(b, -1), k)
        return dict(scores=score, labels=torch.div(ind, k, rounding_mode='floor'),
                    indices=inds.view(b, -1).gather(1, ind), xs=xs.view(b, -1).gather(1, ind),
                    ys=ys.view(b, -1).gather(1, ind))

    def gather_topk(self, outs: dict[str, Tensor], peaks: dict[str, Tensor]
                    ) -> dict[str, Tensor]:
        """Raw per-object predictions at every one of the K peaks, no threshold (batched).

        The step :meth:`gather_predictions` filters per image, and the exported ONNX graph
        (``deployment/onnx_export.py``) returns whole, the score threshold then applied
        outside the graph. Elementwise only: an entry of a peak does not depend on the others.

        Args:
            outs: the head's raw maps (``offset_2d``, ``size_2d``, ``depth``, ``offset_3d``,
                ``size_3d``, ``heading``; (B, C, h, w)).
            peaks: :meth:`select_peaks` output.

        Returns:
            dict of (B, K, ...) tensors, the entries of :meth:`gather_predictions`.
        """
        inds = peaks['indices']
        g = {name: gather_at(outs[name].float(), inds) for name in
             ('offset_2d', 'size_2d', 'depth', 'offset_3d', 'size_3d', 'heading')}
        # over all K peaks (then filtered), as MonoDLE does
        depth = self.decode_depth(g['depth'][..., 0])
        scores = peaks['scores'] * torch.exp(-g['depth'][..., 1])
        mean_size = torch.as_tensor(self.mean_size, device=inds.device)
        nb = self.num_heading_bins
        bin_id = g['heading'][..., :nb].argmax(-1)
        res = g['heading'][..., nb:].gather(-1, bin_id.unsqueeze(-1)).squeeze(-1).double()
        alpha = wrap_angle(bin_id.double() * (2 * math.pi / nb) + res, upper_only=True)
        labels = peaks['labels']
        return dict(
            labels=labels, heatmap_scores=peaks['scores'], scores=scores,
            peaks=torch.stack([peaks['xs'], peaks['ys']], -1), offset_2d=g['offset_2d'],
            size_2d=g['size_2d'], offset_3d=g['offset_3d'], depth=depth,
            depth_log_variance=g['depth'][..., 1], size_3d=g['size_3d'] + mean_size[labels],
            alpha=alpha)

    def gather_predictions(self, outs: dict[str, Tensor], peaks: dict[str, Tensor],
                           score_thr: float) -> list[dict[str, Tensor]]:
        """Raw per-object predictions at the peaks whose heatmap score is ``>= score_thr``.

        Args:
            outs: the head's raw maps (``offset_2d``, ``size_2d``, ``depth``, ``offset_3d``,
                ``size_3d``, ``heading``; (B, C, h, w)).
            peaks: :meth:`select_peaks` output.
            score_thr: threshold on the heatmap score (the head passes its
                ``test_cfg.score_thr``).

        Returns:
            per image a dict of tensors over its n kept detections (an analysis may replace
            entries, e.g. by ground truth, before :meth:`decode`): ``labels`` (n,) int64;
            ``heatmap_scores`` (n,); ``scores`` (n,) heatmap score x exp(-log-variance);
            ``peaks`` (n, 2) peak cell (x, y); ``offset_2d`` (n, 2) 2D box centre - peak,
            ``size_2d`` (n, 2) (w, h), ``offset_3d`` (n, 2) projected 3D centre - peak, all
            feature-grid pixels; ``depth`` (n,) metres; ``depth_log_variance`` (n,);
            ``size_3d`` (n, 3) (h, w, l) metres (class mean added); ``alpha`` (n,) float64
            observation angle, radians.
        """
        g = self.gather_topk(outs, peaks)
        results = []
        for i in range(peaks['indices'].shape[0]):
            keep = peaks['scores'][i] >= score_thr
            results.append({name: value[i][keep] for name, value in g.items()})
        return results

    def decode(self, preds: list[dict[str, Tensor]], batch_img_metas: list[dict],
               feat_hw: tuple[int, int], decode_mode: str = 'official'
               ) -> tuple[list[InstanceData], list[InstanceData]]:
        """Per-object predictions (:meth:`gather_predictions`) -> 3D and 2D results.

        Args:
            preds: per image the dict of :meth:`gather_predictions` (entries may be replaced).
            batch_img_metas: metainfo per image; uses ``ori_shape`` ('official'),
                ``inv_affine_mat`` ('affine'), ``ori_cam2img`` (else ``cam2img``),
                ``box_type_3d``.
            feat_hw: (h, w) of the head's output maps.
            decode_mode: 'official': scale by raw-image size / feature size as MonoDLE's tester
                does; 'affine': exact inverse of ``metainfo['inv_affine_mat']``.

        Returns:
            ``(results_3d, results_2d)``, one ``InstanceData`` per image each: 3D ``bboxes_3d``
            (``box_type_3d``, bottom centre, camera frame of the raw image, metres / radians),
            ``scores_3d``, ``labels_3d``, ``alphas`` (radians); 2D ``bboxes`` (n, 4) raw-image
            pixels, ``scores``, ``labels`` (MonoDLE's result file: the 2D head's box).
        """
        self._check_decode_mode(decode_mode)
        results_3d, results_2d = [], []
        for pred, meta in zip(preds, batch_img_metas):
            if decode_mode == 'affine' and 'inv_affine_mat' not in meta:
                raise KeyError("MonoDLEBBoxCoder: decode_mode='affine' needs "
                               "metainfo['inv_affine_mat']")
            boxes = self.decode_boxes(
                pred, np.asarray(meta.get('ori_cam2img', meta['cam2img']), np.float64),
                feat_hw, decode_mode, ori_hw=tuple(meta['ori_shape'][:2])
                if decode_mode == 'official' else None,
                inv_affine=np.asarray(meta['inv_affine_mat'], np.float64)
                if decode_mode == 'affine' else None)
            box_type = meta.get('box_type_3d', CameraInstance3DBoxes)
            score = pred['scores'].float()
            labels = pred['labels'].long()
            results_3d.append(InstanceData(
                bboxes_3d=box_type(boxes['bboxes_3d'], box_dim=7, origin=(0.5, 1.0, 0.5)),
                scores_3d=score, labels_3d=labels, alphas=boxes['alphas']))
            results_2d.append(InstanceData(bboxes=boxes['bboxes_2d'], scores=score.clone(),
                                           labels=labels.clone()))
        return results_3d, results_2d

    @staticmethod
    def _check_decode_mode(decode_mode: str) -> None:
        if decode_mode not in DECODE_MODES:
            raise ValueError(f'MonoDLEBBoxCoder: decode_mode must be one of {DECODE_MODES}, '
                             f'got {decode_mode!r}')

    def decode_boxes(self, pred: dict[str, Tensor], cam2img: np.ndarray | Tensor,
                     feat_hw: tuple[int, int], decode_mode: str = 'official',
                     ori_hw: tuple[int, int] | Tensor | None = None,
                     inv_affine: np.ndarray | Tensor | None = None) -> dict[str, Tensor]:
        """The geometry of :meth:`decode`: per-object predictions -> float32 boxes and angles.

        One image (``pred`` entries (n, ...), ``cam2img`` a (3|4, 4) array, ``ori_hw`` ints,
        ``inv_affine`` a (3, 3) array: :meth:`decode`) or a batch (entries (B, K, ...) of
        :meth:`gather_topk`, ``cam2img`` (B, 4, 4), ``ori_hw`` (B, 2) and ``inv_affine``
        (B, 3, 3) tensors: the exported ONNX graph, where they are graph inputs). The maths
        runs in float64.

        Args:
            pred: ``peaks``, ``offset_2d``, ``size_2d``, ``offset_3d`` (feature grid),
                ``depth`` (metres), ``size_3d`` (h, w, l metres), ``alpha`` (radians).
            cam2img: P2 of the raw image (the image ``ori_hw`` / ``inv_affine`` lead to).
            feat_hw: (h, w) of the head's output maps.
            decode_mode: see :meth:`decode`.
            ori_hw: raw image (H, W) pixels ('official').
            inv_affine: network-input pixels -> raw-image pixels ('affine').

        Returns:
            dict of float32 tensors: ``bboxes_3d`` (..., 7) ``x, y, z`` bottom centre (camera
            frame, metres), ``l, h, w``, ``ry``; ``bboxes_2d`` (..., 4) x1 y1 x2 y2 raw-image
            pixels; ``alphas`` (...,) radians.
        """
        self._check_decode_mode(decode_mode)
        f64 = torch.float64
        if isinstance(cam2img, Tensor):
            cam2img = cam2img.to(f64)
        center_2d = (pred['peaks'] + pred['offset_2d']).to(f64)
        size_2d = pred['size_2d'].to(f64)
        center_3d = (pred['peaks'] + pred['offset_3d']).to(f64)
        corners = torch.cat([center_2d - size_2d / 2, center_2d + size_2d / 2], -1)
        bboxes, uv = self._to_raw_image(corners, center_3d, feat_hw, decode_mode, ori_hw,
                                        inv_affine)
        u, v = uv[..., 0], uv[..., 1]
        z = pred['depth'].to(f64)
        dims = pred['size_3d'].to(f64)  # (h, w, l)
        loc_x, loc_y = image_to_camera(u, v, z, cam2img)
        loc_y = loc_y + dims[..., 0] / 2  # bottom centre
        alpha = pred['alpha'].to(f64)
        fu, _, cu, _, _, _ = camera_parameters(cam2img)
        rot_y = wrap_angle(alpha + torch.atan2(
            u - cu, fu if isinstance(fu, Tensor) else u.new_tensor(fu)))
        boxes = torch.stack([loc_x, loc_y, z, dims[..., 2], dims[..., 0], dims[..., 1], rot_y],
                            -1)
        return dict(bboxes_3d=boxes.float(), bboxes_2d=bboxes.float(), alphas=alpha.float())

    def _to_raw_image(self, corners: Tensor, center_3d: Tensor, feat_hw: tuple[int, int],
                      decode_mode: str, ori_hw: tuple[int, int] | Tensor | None,
                      inv_affine: np.ndarray | Tensor | None) -> tuple[Tensor, Tensor]:
        """Feature-grid 2D boxes (..., 4) and 3D centres (..., 2) -> raw-image pixels (float64)."""
        if decode_mode == 'official':
            feat_h, feat_w = feat_hw
            if isinstance(ori_hw, Tensor):  # (B, 2) per image of a batch: (B, 1, 2)
                hw = ori_hw.to(corners.dtype)
                scale = torch.stack([hw[:, 1] / feat_w, hw[:, 0] / feat_h], -1).unsqueeze(1)
            else:
                raw_h, raw_w = ori_hw
                scale = corners.new_tensor([raw_w / feat_w, raw_h / feat_h])
            return corners * torch.cat([scale, scale], -1), center_3d * scale
        s = float(self.down_ratio)
        first = apply_affine(corners[..., :2] * s, inv_affine)
        second = apply_affine(corners[..., 2:] * s, inv_affine)
        bboxes = torch.cat([torch.minimum(first, second), torch.maximum(first, second)], -1)
        return bboxes, apply_affine(center_3d * s, inv_affine)

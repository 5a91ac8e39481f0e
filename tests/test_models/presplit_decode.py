"""The head's decoding before the head/coder split (frozen transcription, test reference only).

``PresplitDecoder(...).predict_by_feat(outs, metas)`` is ``CenterNet3DHead.predict_by_feat`` of
commit c480796 line for line (less its error for a missing ``inv_affine_mat``), with that
commit's helpers (``gather_at``, ``apply_affine``, ``_topk``) and the head's decoding attributes
(``test_cfg``, ``mean_size``, ``num_heading_bins``, ``down_ratio``; the head's defaults). It
imports nothing from ``monodle_plugin``, so that ``MonoDLEBBoxCoder``'s decoding (and the
geometry helpers it now uses) is compared with it bit for bit, on the same maps, in the same
process: the same kernels on the same machine, so no tolerance is needed on any CPU.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from mmdet3d.structures import CameraInstance3DBoxes
from mmengine.structures import InstanceData
from torch import Tensor

BRANCHES = ('heatmap', 'offset_2d', 'size_2d', 'depth', 'offset_3d', 'size_3d', 'heading')
#: CenterNet3DHead's default ``cls_mean_size`` at c480796, (h, w, l) metres per class
PRESPLIT_MEAN_SIZE = ((1.76255119, 0.66068622, 0.84422524),
                      (1.52563191, 1.62856739, 3.52588311),
                      (1.73698127, 0.59706367, 1.76282397))


def gather_at(feat: Tensor, inds: Tensor) -> Tensor:
    """(B, C, h, w) map, (B, K) flat indices -> (B, K, C) values."""
    b, c = feat.shape[:2]
    flat = feat.reshape(b, c, -1)
    return flat.gather(2, inds.unsqueeze(1).expand(b, c, inds.shape[1])).permute(0, 2, 1)


def apply_affine(px: Tensor, py: Tensor, mat: Tensor) -> tuple[Tensor, Tensor]:
    """Map points (px, py) through the top two rows ``mat`` (2, 3) of an affine matrix."""
    pts = torch.stack([px, py, torch.ones_like(px)], 1) @ mat.T
    return pts[:, 0], pts[:, 1]


class PresplitDecoder:
    """The decoding part of c480796's ``CenterNet3DHead`` (same arguments, same defaults).

    Args:
        num_heading_bins: angle bins. Defaults to 12.
        cls_mean_size: (num_classes, 3) mean (h, w, l) metres per class.
        use_mean_size: add ``cls_mean_size`` to the size branch (else a zero mean).
        down_ratio: network-input pixels per output pixel. Defaults to 4.
        test_cfg: ``topk`` (50), ``score_thr`` (0.2), ``nms_kernel`` (3), ``decode_mode``
            ('official' or 'affine').
    """

    def __init__(self, num_heading_bins: int = 12,
                 cls_mean_size: Sequence[Sequence[float]] = PRESPLIT_MEAN_SIZE,
                 use_mean_size: bool = False, down_ratio: int = 4,
                 test_cfg: dict | None = None) -> None:
        mean_size = np.asarray(cls_mean_size, dtype=np.float32)
        self.num_heading_bins = num_heading_bins
        self.mean_size = mean_size if use_mean_size else np.zeros_like(mean_size)
        self.down_ratio = down_ratio
        self.test_cfg = dict(topk=50, score_thr=0.2, nms_kernel=3, decode_mode='official')
        self.test_cfg.update(test_cfg or {})

    def _topk(self, heat: Tensor, k: int) -> tuple[Tensor, ...]:
        """MonoDLE's two-stage top-k: per class, then over classes (same tie order)."""
        b, c, h, w = heat.shape
        k = min(k, h * w)
        scores, inds = torch.topk(heat.view(b, c, -1), k)
        ys = torch.div(inds, w, rounding_mode='floor').float()
        xs = (inds % w).float()
        score, ind = torch.topk(scores.view(b, -1), k)
        cls_ids = torch.div(ind, k, rounding_mode='floor')
        inds = inds.view(b, -1).gather(1, ind)
        ys = ys.view(b, -1).gather(1, ind)
        xs = xs.view(b, -1).gather(1, ind)
        return score, inds, cls_ids, xs, ys

    def predict_by_feat(self, outs: dict[str, Tensor], batch_img_metas: list[dict]
                        ) -> list[InstanceData]:
        """Per image one ``InstanceData`` with the 3D fields (``bboxes_3d``, ``scores_3d``,
        ``labels_3d``, ``alphas``) and the 2D fields (``bboxes``, ``scores``, ``labels``)."""
        cfg = self.test_cfg
        heat = outs['heatmap'].float().sigmoid().clamp(min=1e-4, max=1 - 1e-4)
        kernel = cfg['nms_kernel']
        hmax = F.max_pool2d(heat, kernel, stride=1, padding=(kernel - 1) // 2)
        heat = heat * (hmax == heat).float()
        b, _, fh, fw = heat.shape
        scores, inds, cls_ids, xs, ys = self._topk(heat, cfg['topk'])
        g = {name: gather_at(outs[name].float(), inds) for name in BRANCHES[1:]}
        depth = 1.0 / (g['depth'][..., 0].sigmoid() + 1e-6) - 1.0
        sigma = torch.exp(-g['depth'][..., 1])
        mean_size = torch.as_tensor(self.mean_size, device=heat.device)
        nb = self.num_heading_bins
        results = []
        for i, meta in enumerate(batch_img_metas):
            keep = scores[i] >= cfg['score_thr']
            cls = cls_ids[i][keep]
            f64 = dict(dtype=torch.float64)
            x2d = (xs[i] + g['offset_2d'][i, :, 0])[keep].to(**f64)
            y2d = (ys[i] + g['offset_2d'][i, :, 1])[keep].to(**f64)
            w2d = g['size_2d'][i, :, 0][keep].to(**f64)
            h2d = g['size_2d'][i, :, 1][keep].to(**f64)
            x3d = (xs[i] + g['offset_3d'][i, :, 0])[keep].to(**f64)
            y3d = (ys[i] + g['offset_3d'][i, :, 1])[keep].to(**f64)
            corners = torch.stack([x2d - w2d / 2, y2d - h2d / 2, x2d + w2d / 2, y2d + h2d / 2], 1)
            if cfg['decode_mode'] == 'official':
                raw_h, raw_w = meta['ori_shape'][:2]
                rx, ry_ = raw_w / fw, raw_h / fh
                bboxes = corners * corners.new_tensor([rx, ry_, rx, ry_])
                u, v = x3d * rx, y3d * ry_
            else:
                inv = torch.as_tensor(np.asarray(meta['inv_affine_mat'], np.float64),
                                      device=heat.device)[:2]
                s = float(self.down_ratio)
                ax, ay = apply_affine(corners[:, 0] * s, corners[:, 1] * s, inv)
                bx, by = apply_affine(corners[:, 2] * s, corners[:, 3] * s, inv)
                bboxes = torch.stack([torch.minimum(ax, bx), torch.minimum(ay, by),
                                      torch.maximum(ax, bx), torch.maximum(ay, by)], 1)
                u, v = apply_affine(x3d * s, y3d * s, inv)
            cam2img = np.asarray(meta.get('ori_cam2img', meta['cam2img']), np.float64)
            fu, fv, cu, cv = cam2img[0, 0], cam2img[1, 1], cam2img[0, 2], cam2img[1, 2]
            tx, ty = cam2img[0, 3] / (-fu), cam2img[1, 3] / (-fv)
            z = depth[i][keep].to(**f64)
            dims = (g['size_3d'][i][keep] + mean_size[cls]).to(**f64)  # (h, w, l)
            loc_x = (u - cu) * z / fu + tx
            loc_y = (v - cv) * z / fv + ty + dims[:, 0] / 2
            heading = g['heading'][i][keep]
            bin_id = heading[:, :nb].argmax(1)
            res = heading[:, nb:].gather(1, bin_id.view(-1, 1)).view(-1).to(**f64)
            alpha = bin_id.to(**f64) * (2 * math.pi / nb) + res
            alpha = torch.where(alpha > math.pi, alpha - 2 * math.pi, alpha)
            rot_y = alpha + torch.atan2(u - cu, u.new_tensor(fu))
            rot_y = torch.where(rot_y > math.pi, rot_y - 2 * math.pi, rot_y)
            rot_y = torch.where(rot_y < -math.pi, rot_y + 2 * math.pi, rot_y)
            score = scores[i][keep] * sigma[i][keep]
            boxes = torch.stack([loc_x, loc_y, z, dims[:, 2], dims[:, 0], dims[:, 1], rot_y], 1)
            box_type = meta.get('box_type_3d', CameraInstance3DBoxes)
            res_i = InstanceData()
            res_i.bboxes_3d = box_type(boxes.float(), box_dim=7, origin=(0.5, 1.0, 0.5))
            res_i.scores_3d = score.float()
            res_i.labels_3d = cls.long()
            res_i.alphas = alpha.float()
            res_i.bboxes = bboxes.float()
            res_i.scores = score.float()
            res_i.labels = cls.long()
            results.append(res_i)
        return results

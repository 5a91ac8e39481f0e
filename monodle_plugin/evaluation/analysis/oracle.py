"""Oracle analysis (MonoDLE's Table 1): replace predicted items of matched detections by GT.

For each image the head's maps go through the box coder's first two decoding steps
(``MonoDLEBBoxCoder.select_peaks`` and ``gather_predictions``: per-object predictions in
feature-grid pixels, metres and radians). Each detection is matched to a ground-truth object
of its class whose projected 3D centre falls within ``match_radius`` feature cells of the
detection's peak (one-to-one, highest score first; the seed matched many-to-one). Chosen items
of matched detections are then replaced by the ground truth's values in the coder's units,
and the coder's ``decode`` turns them into boxes, evaluated as usual (KITTI AP40 per variant,
overall and per depth bin). Scores and labels stay predicted.

Items (the head's branches): ``offset_2d`` (2D box centre), ``size_2d`` (2D box size),
``offset_3d`` (projected 3D centre), ``depth``, ``size_3d``, ``heading``; ``all`` = every item.
The ground-truth values are computed by the exact inverse of the coder's decoding
(``decode_mode`` 'official': raw pixels x feature size / raw size; 'affine': the sample's
affine matrix / down ratio), so ``all`` reproduces each matched object's label box.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ...structures.geometry import apply_affine, project_to_image

ORACLE_ITEMS: Tuple[str, ...] = ('offset_2d', 'size_2d', 'offset_3d', 'depth', 'size_3d',
                                 'heading')
#: the standard set run without ``--replace``: baseline, each item alone, location, all
STANDARD_VARIANTS: Tuple[Tuple[str, ...], ...] = (
    (), ('offset_2d', ), ('offset_3d', ), ('depth', ), ('size_3d', ), ('heading', ),
    ('depth', 'offset_3d'), ORACLE_ITEMS)
ALIASES = {'location': ('depth', 'offset_3d'), 'center_2d': ('offset_2d', ),
           'proj_center': ('offset_3d', ), 'all': ORACLE_ITEMS, 'baseline': ()}


def variant_name(items: Sequence[str]) -> str:
    """``baseline``, ``all`` or the items joined by ``+`` in :data:`ORACLE_ITEMS` order."""
    items = tuple(i for i in ORACLE_ITEMS if i in set(items))
    if not items:
        return 'baseline'
    if items == ORACLE_ITEMS:
        return 'all'
    return '+'.join(items)


def parse_variant(spec: str) -> Tuple[str, ...]:
    """``'depth+offset_3d'``, ``'location'``, ``'all'``, ``'baseline'`` -> item tuple.

    Raises:
        ValueError: an unknown item, naming the choices.
    """
    items: List[str] = []
    for part in spec.split('+'):
        part = part.strip()
        if part in ALIASES:
            items.extend(ALIASES[part])
        elif part in ORACLE_ITEMS:
            items.append(part)
        else:
            raise ValueError(f'oracle item {part!r}: choose from {list(ORACLE_ITEMS)}, '
                             f'{sorted(ALIASES)}, or join several with +')
    return tuple(i for i in ORACLE_ITEMS if i in set(items))


def raw_to_feature(points: np.ndarray, meta: dict, feat_hw: Tuple[int, int],
                   decode_mode: str, down_ratio: int) -> np.ndarray:
    """Raw-image pixels (N, 2) -> feature-grid pixels: the inverse of the coder's decoding."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if decode_mode == 'official':
        raw_h, raw_w = meta['ori_shape'][:2]
        return points * np.array([feat_hw[1] / raw_w, feat_hw[0] / raw_h])
    if decode_mode == 'affine':
        return apply_affine(points, np.asarray(meta['affine_mat'], np.float64)) / down_ratio
    raise ValueError(f"decode_mode {decode_mode!r}: 'official' or 'affine'")


def gt_items(anno: Dict[str, np.ndarray], class_names: Sequence[str], meta: dict,
             feat_hw: Tuple[int, int], decode_mode: str, down_ratio: int
             ) -> Dict[str, np.ndarray]:
    """Ground truth of one image in the coder's per-object units.

    Args:
        anno: label-file annotation (``kitti_io`` layout; raw pixels, camera frame).
        class_names: the model's classes; other names (DontCare, Van, ...) are left out.
        meta: the sample's metainfo (``ori_shape``, ``affine_mat``, ``ori_cam2img`` or
            ``cam2img``).

    Returns:
        ``labels`` (G,), ``center_3d`` / ``center_2d`` / ``size_2d`` (G, 2) feature-grid
        pixels, ``depth`` (G,) metres, ``size_3d`` (G, 3) (h, w, l) metres, ``ry`` (G,).
    """
    names = np.asarray(anno['name']).astype(str)
    keep = np.isin(names, list(class_names))
    labels = np.array([list(class_names).index(n) for n in names[keep]], dtype=np.int64)
    loc = np.asarray(anno['location'], np.float64).reshape(-1, 3)[keep]
    lhw = np.asarray(anno['dimensions'], np.float64).reshape(-1, 3)[keep]
    bbox = np.asarray(anno['bbox'], np.float64).reshape(-1, 4)[keep]
    cam2img = np.asarray(meta.get('ori_cam2img', meta['cam2img']), np.float64)
    centre = loc - np.stack([np.zeros(len(loc)), lhw[:, 1] / 2, np.zeros(len(loc))], 1)
    uv3d = project_to_image(centre, cam2img)
    conv = dict(meta=meta, feat_hw=feat_hw, decode_mode=decode_mode, down_ratio=down_ratio)
    c3 = raw_to_feature(uv3d, **conv)
    p1, p2 = raw_to_feature(bbox[:, :2], **conv), raw_to_feature(bbox[:, 2:], **conv)
    return dict(labels=labels, center_3d=c3, center_2d=(p1 + p2) / 2, size_2d=p2 - p1,
                depth=loc[:, 2], size_3d=lhw[:, [1, 2, 0]],
                ry=np.asarray(anno['rotation_y'], np.float64)[keep], uv3d=uv3d)


def match_detections(pred: Dict[str, torch.Tensor], gt: Dict[str, np.ndarray],
                     match_radius: float = 5.0) -> np.ndarray:
    """(n,) index of the matched ground truth per detection, -1 when none.

    One-to-one, by descending score: a detection takes the nearest free ground truth of its
    class whose projected 3D centre is within ``match_radius`` feature cells of its peak.
    """
    peaks = pred['peaks'].detach().cpu().numpy().astype(np.float64).reshape(-1, 2)
    labels = pred['labels'].detach().cpu().numpy()
    order = np.argsort(-pred['scores'].detach().cpu().numpy(), kind='stable')
    match = np.full(len(peaks), -1, dtype=np.int64)
    if len(gt['labels']) == 0:
        return match
    dist = np.linalg.norm(peaks[:, None, :] - gt['center_3d'][None, :, :], axis=2)
    dist[labels[:, None] != gt['labels'][None, :]] = np.inf
    taken = np.zeros(len(gt['labels']), dtype=bool)
    for i in order:
        d = np.where(taken, np.inf, dist[i])
        j = int(np.argmin(d))
        if d[j] <= match_radius:
            match[i] = j
            taken[j] = True
    return match


def replace_items(pred: Dict[str, torch.Tensor], gt: Dict[str, np.ndarray], match: np.ndarray,
                  items: Sequence[str], cam2img: np.ndarray) -> Dict[str, torch.Tensor]:
    """Copy of ``pred`` (a ``gather_predictions`` dict) with ``items`` of the matched
    detections set to the ground truth's values.

    ``heading`` sets the observation angle to ``ry_gt - atan2(u_gt - cu, fu)`` (``u_gt`` the
    ground truth's projected centre), the angle for which the coder's decoding returns the
    ground truth's ``ry`` at the ground truth's centre.
    """
    unknown = [i for i in items if i not in ORACLE_ITEMS]
    if unknown:
        raise ValueError(f'oracle items {unknown}: choose from {list(ORACLE_ITEMS)}')
    out = {k: v.clone() for k, v in pred.items()}
    rows = np.flatnonzero(match >= 0)
    if not len(rows) or not items:
        return out
    g = match[rows]
    idx = torch.as_tensor(rows, device=pred['peaks'].device)
    peaks = pred['peaks'][idx].double().cpu().numpy()

    def put(key, values):
        out[key][idx] = torch.as_tensor(values, dtype=out[key].dtype, device=out[key].device)

    if 'offset_2d' in items:
        put('offset_2d', gt['center_2d'][g] - peaks)
    if 'size_2d' in items:
        put('size_2d', gt['size_2d'][g])
    if 'offset_3d' in items:
        put('offset_3d', gt['center_3d'][g] - peaks)
    if 'depth' in items:
        put('depth', gt['depth'][g])
    if 'size_3d' in items:
        put('size_3d', gt['size_3d'][g])
    if 'heading' in items:
        cam2img = np.asarray(cam2img, np.float64)
        alpha = gt['ry'][g] - np.arctan2(gt['uv3d'][g, 0] - cam2img[0, 2], cam2img[0, 0])
        alpha = np.arctan2(np.sin(alpha), np.cos(alpha))
        put('alpha', alpha)
    return out


def count_matches(matches: Sequence[np.ndarray], gts: Sequence[Dict[str, np.ndarray]]
                  ) -> Dict[str, int]:
    """``{'detections', 'matched', 'gt_objects'}`` over all images."""
    return dict(detections=int(sum(len(m) for m in matches)),
                matched=int(sum((m >= 0).sum() for m in matches)),
                gt_objects=int(sum(len(g['labels']) for g in gts)))


def format_oracle_table(results: Dict[str, Dict[str, float]], cls: str = 'Car',
                        suffix: str = '', title: Optional[str] = None) -> str:
    """Variant rows x (3D, BEV) AP40 easy / moderate / hard columns (strict IoU)."""
    head = f"{'variant':<28}" + ''.join(f'{k + " " + d[:3]:>10}' for k in ('3D', 'BEV')
                                         for d in ('easy', 'moderate', 'hard'))
    lines = [title or f'{cls} AP40 (IoU strict){" at depth " + suffix if suffix else ""}',
             head, '-' * len(head)]
    for name, res in results.items():
        cells = []
        for k in ('3D', 'BEV'):
            for d in ('easy', 'moderate', 'hard'):
                v = res.get(f'KITTI/{cls}_{k}_AP40_{d}_strict{"_" + suffix if suffix else ""}')
                cells.append('-' if v is None else f'{v:.2f}')
        lines.append(f'{name:<28}' + ''.join(f'{c:>10}' for c in cells))
    return '\n'.join(lines)


@torch.no_grad()
def collect_predictions(model: torch.nn.Module, dataloader, score_thr: Optional[float] = None
                        ) -> List[dict]:
    """Run the model once; per image ``{sample_id, meta, feat_hw, pred}`` with ``pred`` the
    coder's ``gather_predictions`` dict (CPU tensors).

    Args:
        model: a MonoDLE detector in eval mode (``bbox_head.bbox_coder`` decodes).
        dataloader: yields the test pipeline's batches (``inputs``, ``data_samples``).
        score_thr: heatmap-score threshold; None = the head's ``test_cfg.score_thr``.
    """
    head = model.bbox_head
    coder, cfg = head.bbox_coder, head.test_cfg
    thr = cfg['score_thr'] if score_thr is None else score_thr
    cache = []
    for batch in dataloader:
        batch = model.data_preprocessor(batch, False)
        outs = head(model.extract_feat(batch['inputs']))
        peaks = coder.select_peaks(outs['heatmap'], cfg['topk'], cfg['nms_kernel'])
        preds = coder.gather_predictions(outs, peaks, thr)
        feat_hw = tuple(outs['heatmap'].shape[-2:])
        for pred, ds in zip(preds, batch['data_samples']):
            meta = ds.metainfo
            sid = meta.get('sample_id', f"{int(meta['sample_idx']):06d}")
            cache.append(dict(sample_id=str(sid), meta=meta, feat_hw=feat_hw,
                              pred={k: v.detach().cpu() for k, v in pred.items()}))
    return cache


def evaluate_variants(cache: Sequence[dict], coder, metric, variants: Sequence[Sequence[str]],
                      decode_mode: str = 'official', depth_bins=None,
                      match_radius: float = 5.0) -> Tuple[Dict[str, Dict[str, float]], dict]:
    """KITTI AP of every variant with ``metric`` (a ``KittiAP40Metric``: same conversion,
    ground truth and keys as ``tools/test.py``).

    Args:
        cache: :func:`collect_predictions` output.
        coder: the head's ``MonoDLEBBoxCoder``.
        metric: evaluates; its ``depth_bins`` are set to ``depth_bins`` (list of (lo, hi)).
        variants: item tuples (``()`` = baseline).

    Returns:
        ``{variant name: {key: AP}}`` and match counts ``{'detections', 'matched',
        'gt_objects'}``.
    """
    import logging

    from mmengine.logging import MMLogger
    ids = [c['sample_id'] for c in cache]
    gt_annos = metric.load_ground_truth(ids)
    class_names = metric.classes
    gts, matches = [], []
    for c, anno in zip(cache, gt_annos):
        g = gt_items(anno, class_names, c['meta'], c['feat_hw'], decode_mode, coder.down_ratio)
        gts.append(g)
        matches.append(match_detections(c['pred'], g, match_radius))
    saved = (metric.depth_bins, metric.submission_prefix, metric.save_results)
    metric.depth_bins, metric.submission_prefix, metric.save_results = depth_bins, None, False
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)  # one AP table per variant and bin would flood the log
    out: Dict[str, Dict[str, float]] = {}
    try:
        for items in variants:
            samples = []
            for c, g, m in zip(cache, gts, matches):
                cam2img = c['meta'].get('ori_cam2img', c['meta']['cam2img'])
                pred = replace_items(c['pred'], g, m, items, cam2img)
                r3, r2 = coder.decode([pred], [c['meta']], c['feat_hw'], decode_mode)
                samples.append(dict(sample_id=c['sample_id'], pred_instances_3d=r3[0],
                                    pred_instances=r2[0]))
            metric.results = []
            metric.process({}, samples)
            out[variant_name(items)] = metric.compute_metrics(metric.results)
            metric.results = []
    finally:
        logger.setLevel(level)
        metric.depth_bins, metric.submission_prefix, metric.save_results = saved
    return out, count_matches(matches, gts)

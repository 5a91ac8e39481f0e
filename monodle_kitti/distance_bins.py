"""KITTI AP per distance (depth) range: objects binned by the ``z`` of their 3D centre.

As the seed's ``oracle_analysis.py`` (``filter_annos_by_depth``): for the bin ``[lo, hi)``
every ground-truth object and every detection whose camera-frame depth ``location[:, 2]``
(metres) lies outside the bin is removed before the ordinary KITTI evaluation; DontCare
regions (depth -1000 in label files) are kept in every bin, so 2D false positives inside them
stay suppressed as in the full evaluation. Each object thus counts in exactly one bin.

Keys: the full-set key with the bin as suffix, ``KITTI/Car_3D_AP40_moderate_strict_0-20m``,
``..._40+m`` for an open last bin.
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .kitti_eval import (
    compute_kitti_ap,
    format_kitti_table,
    kitti_aps_to_dict,
)

#: bin edges in metres: 0-20, 20-40, 40+ (the last bin is open).
DEFAULT_DEPTH_EDGES: Tuple[float, ...] = (0.0, 20.0, 40.0)
DONT_CARE = 'DontCare'


def depth_bins_from_edges(edges: Sequence[float]) -> List[Tuple[float, float]]:
    """``[0, 20, 40]`` -> ``[(0, 20), (20, 40), (40, inf)]`` (append ``inf`` for no open bin).

    Raises:
        ValueError: fewer than one edge, a negative / NaN edge, or edges not increasing.
    """
    edges = [float(e) for e in edges]
    if not edges:
        raise ValueError('depth bins: give at least one edge, e.g. 0 20 40 (metres)')
    if any(math.isnan(e) or e < 0 for e in edges):
        raise ValueError(f'depth bins {edges}: edges must be numbers >= 0 (metres)')
    if any(b <= a for a, b in zip(edges, edges[1:])):
        raise ValueError(f'depth bins {edges}: edges must increase strictly')
    if not math.isinf(edges[-1]):
        edges.append(math.inf)
    if len(edges) < 2:
        raise ValueError(f'depth bins {edges}: need a finite first edge')
    return list(zip(edges[:-1], edges[1:]))


def _num(x: float) -> str:
    return f'{x:g}'


def depth_bin_name(lo: float, hi: float) -> str:
    """``'0-20m'``, ``'40+m'`` (open bin)."""
    return f'{_num(lo)}+m' if math.isinf(hi) else f'{_num(lo)}-{_num(hi)}m'


def filter_annos_by_depth(annos: Sequence[Dict[str, np.ndarray]], lo: float, hi: float,
                          keep_dontcare: bool = True) -> List[Dict[str, np.ndarray]]:
    """Copies of the per-frame annotation dicts keeping objects with ``lo <= z < hi``.

    Args:
        annos: per-frame dicts in the ``kitti_io`` layout (``location`` (N, 3) camera frame,
            metres).
        lo, hi: bin limits in metres (``hi`` may be ``inf``).
        keep_dontcare: keep every DontCare line whatever its depth.
    """
    out = []
    for anno in annos:
        n = len(anno['name'])
        z = np.asarray(anno['location'], dtype=np.float64).reshape(n, 3)[:, 2]
        keep = (z >= lo) & (z < hi)
        if keep_dontcare:
            keep |= np.asarray(anno['name']).astype(str) == DONT_CARE
        out.append({k: (np.asarray(v)[keep] if isinstance(v, np.ndarray) and len(v) == n
                        else v) for k, v in anno.items()})
    return out


def count_objects_by_depth(annos: Sequence[Dict[str, np.ndarray]],
                           bins: Sequence[Tuple[float, float]],
                           classes: Sequence[str]) -> Dict[str, Dict[str, int]]:
    """``{bin name: {class: number of objects}}`` (all label lines of the class, any
    difficulty)."""
    out: Dict[str, Dict[str, int]] = {}
    for lo, hi in bins:
        filtered = filter_annos_by_depth(annos, lo, hi, keep_dontcare=False)
        out[depth_bin_name(lo, hi)] = {
            c: int(sum((np.asarray(a['name']).astype(str) == c).sum() for a in filtered))
            for c in classes}
    return out


def compute_ap_by_distance(gt_annos: Sequence[dict], dt_annos: Sequence[dict],
                           classes: Sequence[str],
                           bins: Sequence[Tuple[float, float]],
                           eval_types: Sequence[str] = ('bbox', 'bev', '3d'),
                           with_aos: bool = True
                           ) -> Tuple[Dict[str, float], Dict[str, str]]:
    """KITTI AP (AP40 and AP11) of every depth bin.

    Args:
        gt_annos, dt_annos: per-frame annotations (``kitti_io`` layout), same order.
        classes: class names to evaluate (Car, Pedestrian, Cyclist).
        bins: ``[(lo, hi), ...]`` metres, e.g. from ``depth_bins_from_edges``.
        eval_types, with_aos: as ``compute_kitti_ap``.

    Returns:
        The flat dict with suffixed mmdet3d keys (``KITTI/Car_3D_AP40_moderate_strict_0-20m``)
        and ``{bin name: printable table}``.
    """
    flat: Dict[str, float] = {}
    tables: Dict[str, str] = {}
    for lo, hi in bins:
        name = depth_bin_name(lo, hi)
        gt = filter_annos_by_depth(gt_annos, lo, hi)
        dt = filter_annos_by_depth(dt_annos, lo, hi)
        aps, _ = compute_kitti_ap(gt, dt, classes, eval_types, with_aos=with_aos)
        tables[name] = format_kitti_table(aps, classes)
        for k, v in kitti_aps_to_dict(aps, classes).items():
            flat[f'{k}_{name}'] = v
    return flat, tables


def filter_annos_by_score(annos: Sequence[Dict[str, np.ndarray]],
                          score_thr: Optional[float]) -> List[Dict[str, np.ndarray]]:
    """Drop detections with ``score < score_thr`` (``None``: unchanged copies)."""
    if score_thr is None:
        return list(annos)
    out = []
    for anno in annos:
        n = len(anno['name'])
        keep = np.asarray(anno['score'], dtype=np.float64).reshape(n) >= score_thr
        out.append({k: (np.asarray(v)[keep] if isinstance(v, np.ndarray) and len(v) == n
                        else v) for k, v in anno.items()})
    return out

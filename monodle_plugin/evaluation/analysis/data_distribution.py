"""Object statistics of KITTI label files (MonoDLE's ``tools/get_data_distribution.py``).

Per class: depth ``z`` and lateral ``x`` (camera frame, metres), 3D size ``h, w, l`` (metres),
truncation (0..1), occlusion (0 visible .. 3 unknown), 2D box height (pixels). Histograms as
numbers (JSON) and PNG plots (matplotlib, headless); the official tool's bird's-eye scatter
of ``x`` vs ``z`` and its depth counts (``> 60 m``, ``< 20 m``, ...).
"""
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np

from monodle_kitti.kitti_io import load_kitti_dir

#: quantity -> (unit, histogram bin edges)
QUANTITIES: Dict[str, tuple] = {
    'depth': ('m', np.arange(0, 85, 5.0)),
    'x': ('m', np.arange(-40, 45, 5.0)),
    'height': ('m', np.arange(0, 4.25, 0.25)),
    'width': ('m', np.arange(0, 4.25, 0.25)),
    'length': ('m', np.arange(0, 20.5, 0.5)),
    'truncation': ('', np.linspace(0, 1, 11)),
    'occlusion': ('', np.arange(-1.5, 4, 1.0)),
    'box2d_height': ('px', np.arange(0, 400, 25.0)),
}
#: the official tool's printed depth counts: (name, lower, upper) metres
DEPTH_COUNTS = (('> 60', 60, np.inf), ('> 65', 65, np.inf), ('< 5', -np.inf, 5),
                ('< 10', -np.inf, 10), ('< 15', -np.inf, 15), ('< 20', -np.inf, 20),
                ('in [5, 15]', 5, 15), ('in [10, 20]', 10, 20))


def collect_object_stats(label_dir: str, ids: Sequence[str],
                         classes: Sequence[str]) -> Dict[str, Dict[str, np.ndarray]]:
    """``{class: {quantity: (N,) array}}`` over the label files ``<label_dir>/<id>.txt``.

    Result-format files (truncation / occlusion -1, a score column) are read as well; their
    -1 values appear as such in the truncation / occlusion histograms.
    """
    annos = load_kitti_dir(label_dir, ids, is_result=False)
    out: Dict[str, Dict[str, np.ndarray]] = {}
    for cls in classes:
        sel = [np.asarray(a['name']).astype(str) == cls for a in annos]

        def cat(key, col=None, _sel=sel):
            parts = []
            for a, s in zip(annos, _sel):
                v = np.asarray(a[key], dtype=np.float64)
                v = v[s] if col is None else v[s][:, col] if v.ndim == 2 else v[s]
                parts.append(v.reshape(-1))
            return np.concatenate(parts) if parts else np.zeros(0)

        bbox_h = cat('bbox', 3) - cat('bbox', 1)
        out[cls] = dict(depth=cat('location', 2), x=cat('location', 0),
                        height=cat('dimensions', 1), width=cat('dimensions', 2),
                        length=cat('dimensions', 0), truncation=cat('truncated'),
                        occlusion=cat('occluded'), box2d_height=bbox_h)
    return out


def summarize(stats: Dict[str, Dict[str, np.ndarray]]) -> Dict[str, dict]:
    """Numbers per class: count, per quantity mean / std / min / max / histogram, depth
    counts."""
    out: Dict[str, dict] = {}
    for cls, q in stats.items():
        entry: Dict[str, object] = {'count': int(len(q['depth']))}
        for name, (unit, edges) in QUANTITIES.items():
            v = q[name]
            hist, _ = np.histogram(v, bins=edges)
            entry[name] = dict(
                unit=unit, mean=float(v.mean()) if len(v) else None,
                std=float(v.std()) if len(v) else None,
                min=float(v.min()) if len(v) else None, max=float(v.max()) if len(v) else None,
                bin_edges=[float(e) for e in edges], histogram=[int(h) for h in hist],
                outside_bins=int(len(v) - hist.sum()))
        z = q['depth']
        entry['depth_counts'] = {name: int(((z > lo) & (z < hi)).sum())
                                 for name, lo, hi in DEPTH_COUNTS}
        out[cls] = entry
    return out


def format_summary(summary: Dict[str, dict]) -> str:
    """Printable lines: count, mean / range per quantity and the official depth counts."""
    lines: List[str] = []
    for cls, e in summary.items():
        lines.append(f"{cls}: {e['count']} objects")
        for name in QUANTITIES:
            s = e[name]
            if s['mean'] is None:
                continue
            lines.append(f"  {name:<13} mean {s['mean']:8.2f}  std {s['std']:7.2f}  "
                         f"min {s['min']:8.2f}  max {s['max']:8.2f} {s['unit']}")
        lines.append('  depth counts: ' + ', '.join(f'{k}: {v}'
                                                    for k, v in e['depth_counts'].items()))
    return '\n'.join(lines)


def plot_distribution(stats: Dict[str, Dict[str, np.ndarray]], out_dir: str,
                      dpi: int = 80, title: Optional[str] = None) -> List[str]:
    """Write ``<quantity>.png`` (one histogram per class in each) and ``bev.png`` (x vs z
    scatter, the official plot); returns the paths."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for name, (unit, edges) in QUANTITIES.items():
        fig, ax = plt.subplots(figsize=(5, 3.2))
        for cls, q in stats.items():
            ax.hist(q[name], bins=edges, alpha=0.5, label=f'{cls} ({len(q[name])})')
        ax.set_xlabel(f'{name} [{unit}]' if unit else name)
        ax.set_ylabel('objects')
        ax.set_title(title or name)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = osp.join(out_dir, f'{name}.png')
        fig.savefig(path, dpi=dpi)
        plt.close(fig)
        paths.append(path)
    fig, ax = plt.subplots(figsize=(4, 5))
    for cls, q in stats.items():
        ax.scatter(q['x'], q['depth'], s=3, label=cls)
    ax.set_xlabel('x [m]')
    ax.set_ylabel('z (depth) [m]')
    ax.set_title(title or "bird's-eye view")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = osp.join(out_dir, 'bev.png')
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    paths.append(path)
    return paths

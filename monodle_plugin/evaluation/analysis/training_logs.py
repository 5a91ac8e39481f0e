"""Training curves and iteration times from mmengine's ``vis_data/scalars.json``.

What mmdet3d's ``tools/analysis_tools/analyze_logs.py`` does (``plot_curve``, ``cal_train_time``),
for the scalars file every run writes (``work_dirs/<config>/<timestamp>/vis_data/scalars.json``):
one JSON object per line,

- training lines (every ``LoggerHook`` interval): ``lr``, ``loss``, ``loss_heatmap`` ...
  ``loss_depth_distill``, ``distill_lambda``, ``distill_valid_frac``, ``time``, ``data_time``,
  ``epoch`` (1-based), ``iter`` (1-based, global) and ``step`` (= ``iter``);
- validation lines (every ``val_interval`` epochs): the metric's keys
  (``KITTI/Car_3D_AP40_moderate_strict`` ...), ``time``, ``data_time`` and ``step`` = the
  epoch just trained (no ``iter``).

A key is a training key or a validation key by the lines that carry it; validation keys may be
written as mmdet3d's tool shortens them (``Car_3D_AP40_moderate_strict``, the part after the
last ``/``) when that names one key.
"""
from __future__ import annotations

import json
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np


@dataclass
class ScalarLog:
    """The records of one ``scalars.json``.

    Attributes:
        path: the file.
        train: training records (lines with ``iter``), file order.
        val: validation records (the other lines), file order, ``step`` = epoch.
    """

    path: str
    train: List[dict] = field(default_factory=list)
    val: List[dict] = field(default_factory=list)

    def keys(self, which: str) -> List[str]:
        """Sorted numeric keys of the ``'train'`` or ``'val'`` records (without the
        bookkeeping keys ``epoch``, ``iter``, ``step``)."""
        found = set()
        for rec in getattr(self, which):
            found.update(k for k, v in rec.items()
                         if k not in ('epoch', 'iter', 'step') and isinstance(v, (int, float)))
        return sorted(found)


def load_scalars(path: str) -> ScalarLog:
    """Read one ``vis_data/scalars.json`` (see the module docstring).

    Raises:
        FileNotFoundError: no such file. ValueError: a line is not a JSON object (file:line).
    """
    if osp.isdir(path):
        path = osp.join(path, 'vis_data', 'scalars.json')
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path}: scalars file not found (each run writes '
                                'work_dirs/<config>/<timestamp>/vis_data/scalars.json)')
    log = ScalarLog(path)
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f'{path}:{lineno}: not JSON ({e})') from None
            if not isinstance(rec, dict):
                raise ValueError(f'{path}:{lineno}: not a JSON object')
            (log.train if 'iter' in rec else log.val).append(rec)
    return log


def resolve_key(log: ScalarLog, key: str) -> Tuple[str, str]:
    """``(which, full key)`` of a requested key: ``which`` is ``'train'`` or ``'val'``.

    Exact names first; then a validation key whose part after the last ``/`` equals ``key``
    (mmdet3d's short form).

    Raises:
        KeyError: not found, or the short form matches several keys; the message lists the
            keys the file has.
    """
    train, val = log.keys('train'), log.keys('val')
    if key in train:
        return 'train', key
    if key in val:
        return 'val', key
    short = [k for k in val if k.split('/')[-1] == key]
    if len(short) == 1:
        return 'val', short[0]
    if len(short) > 1:
        raise KeyError(f'{log.path}: key {key!r} matches {short}; give the full name')
    raise KeyError(f'{log.path}: no key {key!r}; training keys: {", ".join(train) or "none"}; '
                   f'validation keys: {_key_summary(val)}')


def _key_summary(keys: Sequence[str], limit: int = 6) -> str:
    if not keys:
        return 'none (no validation ran)'
    shown = ', '.join(keys[:limit])
    return shown + (f' ... ({len(keys)} keys)' if len(keys) > limit else '')


def curve(log: ScalarLog, key: str) -> Tuple[np.ndarray, np.ndarray, str]:
    """``(x, y, x_label)`` of one key: training keys against the iteration (``step``),
    validation keys against the epoch. Records without the key are skipped."""
    which, full = resolve_key(log, key)
    recs = [r for r in getattr(log, which) if full in r]
    xs = np.array([r['step'] for r in recs], dtype=np.float64)
    ys = np.array([r[full] for r in recs], dtype=np.float64)
    return xs, ys, 'iter' if which == 'train' else 'epoch'


def plot_curves(paths: Sequence[str], keys: Sequence[str], out: Optional[str] = None,
                legend: Optional[Sequence[str]] = None, title: Optional[str] = None,
                style: Optional[str] = None, backend: Optional[str] = None) -> Dict[str, tuple]:
    """Plot ``keys`` of every scalars file; one panel per x axis (iterations for training
    keys, epochs for validation keys), as mmdet3d's ``plot_curve`` draws them.

    Args:
        paths: ``scalars.json`` files (or run folders holding ``vis_data/scalars.json``).
        keys: keys to plot (see :func:`resolve_key`).
        out: image file to write (``.png``, ``.pdf``...); ``None`` shows the figure.
        legend: one label per (file, key) pair, file-major; default ``<path as given>_<key>``;
            labels must differ.
        title: figure title. style: matplotlib style (``'dark'``: seaborn's dark grid, as in
            mmdet3d's tool; ``None``: matplotlib's default). backend: matplotlib backend
            (default ``Agg`` when ``out`` is given).

    Returns:
        ``{legend label: (x, y, x_label)}`` of every plotted curve.

    Raises:
        ValueError: ``legend`` has the wrong length or repeats a label, or ``style`` is
            unknown.
    """
    logs = [load_scalars(p) for p in paths]
    labels = list(legend) if legend is not None else [
        f'{path}_{key}' for path in paths for key in keys]
    if len(labels) != len(logs) * len(keys):
        raise ValueError(f'--legend: {len(labels)} labels for {len(logs)} files x {len(keys)} '
                         f'keys (one per pair, file-major)')
    if len(set(labels)) != len(labels):
        raise ValueError(f'legend labels {labels} repeat (the same file or key twice?); give '
                         'distinct --legend labels')
    curves = {}
    for i, log in enumerate(logs):
        for j, key in enumerate(keys):
            curves[labels[i * len(keys) + j]] = curve(log, key)

    import matplotlib
    if backend is not None or out is not None:
        matplotlib.use(backend or 'Agg')
    import matplotlib.pyplot as plt
    if style is not None:
        names = [style, f'seaborn-v0_8-{style}']
        found = next((n for n in names if n in plt.style.available), None)
        if found is None:
            raise ValueError(f'--style {style!r}: not a matplotlib style (e.g. dark, whitegrid, '
                             'default)')
        plt.style.use(found)
    axes_kinds = sorted({c[2] for c in curves.values()}, key=['iter', 'epoch'].index)
    fig, axes = plt.subplots(len(axes_kinds), 1, figsize=(8, 3.5 * len(axes_kinds)),
                             squeeze=False)
    for label, (xs, ys, kind) in curves.items():
        ax = axes[axes_kinds.index(kind), 0]
        if kind == 'epoch':
            ax.plot(xs, ys, label=label, marker='o')
        else:
            ax.plot(xs, ys, label=label, linewidth=0.5)
    for kind, ax in zip(axes_kinds, axes[:, 0]):
        ax.set_xlabel(kind)
        ax.legend()
    if title is not None:
        fig.suptitle(title)
    fig.tight_layout()
    if out is None:
        plt.show()
    else:
        fig.savefig(out)
    plt.close(fig)
    return curves


def train_time_stats(log: ScalarLog, include_outliers: bool = False) -> dict:
    """mmdet3d's ``cal_train_time`` numbers: per epoch the mean logged ``time`` (seconds per
    iteration; the first logged value of each epoch is left out unless ``include_outliers``,
    it holds the data-loader start-up).

    Returns:
        ``epoch_means`` {epoch: s/iter}, ``slowest`` / ``fastest`` (epoch, s/iter), ``std``
        over epochs, ``mean`` s/iter over epochs.

    Raises:
        KeyError: no training record carries ``time``, or an epoch has only one logged
            value without ``include_outliers`` (log more often: ``LoggerHook`` interval).
    """
    by_epoch: Dict[int, List[float]] = {}
    for rec in log.train:
        if 'time' in rec:
            by_epoch.setdefault(int(rec.get('epoch', 1)), []).append(float(rec['time']))
    if not by_epoch:
        raise KeyError(f'{log.path}: no training record with "time"')
    means = {}
    for epoch, times in sorted(by_epoch.items()):
        kept = times if include_outliers else times[1:]
        if not kept:
            raise KeyError(f'{log.path}: epoch {epoch} has one logged time, which is left out '
                           'as the start-up outlier; log more often (default_hooks.logger.'
                           'interval smaller than the iterations of an epoch) or pass '
                           '--include-outliers')
        means[epoch] = float(np.mean(kept))
    values = np.array(list(means.values()))
    epochs = list(means)
    return dict(epoch_means=means,
                slowest=(epochs[int(values.argmax())], float(values.max())),
                fastest=(epochs[int(values.argmin())], float(values.min())),
                std=float(values.std()), mean=float(values.mean()))


def format_train_time(path: str, stats: dict) -> str:
    """The lines mmdet3d's ``cal_train_time`` prints."""
    return '\n'.join([
        f'-----Analyze train time of {path}-----',
        f'slowest epoch {stats["slowest"][0]}, average time is {stats["slowest"][1]:.4f} s/iter',
        f'fastest epoch {stats["fastest"][0]}, average time is {stats["fastest"][1]:.4f} s/iter',
        f'time std over epochs is {stats["std"]:.4f}',
        f'average iter time: {stats["mean"]:.4f} s/iter', ''])


__all__ = ['ScalarLog', 'curve', 'format_train_time', 'load_scalars', 'plot_curves',
           'resolve_key', 'train_time_stats']

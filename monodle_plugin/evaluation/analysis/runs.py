"""Runs: the checkpoints of a work dir and the AP40 numbers of several runs as tables.

A work dir (``work_dirs/<config name>``) holds one folder per run (``<timestamp>/``) with the
checkpoints ``epoch_<N>.pth``, mmengine's ``vis_data/scalars.json`` (one JSON line per logged
step; validation lines carry the ``KITTI/...`` keys and ``step`` = epoch) and, from
``tools/test.py``, ``metrics.json``. ``summary.csv`` / ``summary.md`` (the seed's
``format_results.py``) list config, run, epoch and the AP40 columns of the results table
(docs/en/backbones.md).
"""
import csv
import glob
import json
import os
import os.path as osp
import re
from typing import Dict, List, Optional, Sequence, Tuple

from .training_logs import load_scalars

#: (column title, metric key): Car 3D AP40 easy / moderate / hard is the results table's
SUMMARY_COLUMNS: Tuple[Tuple[str, str], ...] = (
    ('Car 3D E', 'KITTI/Car_3D_AP40_easy_strict'),
    ('Car 3D M', 'KITTI/Car_3D_AP40_moderate_strict'),
    ('Car 3D H', 'KITTI/Car_3D_AP40_hard_strict'),
    ('Car BEV E', 'KITTI/Car_BEV_AP40_easy_strict'),
    ('Car BEV M', 'KITTI/Car_BEV_AP40_moderate_strict'),
    ('Car BEV H', 'KITTI/Car_BEV_AP40_hard_strict'),
    ('Car 3D M@0.5', 'KITTI/Car_3D_AP40_moderate_loose'),
    ('Ped 3D M', 'KITTI/Pedestrian_3D_AP40_moderate_strict'),
    ('Cyc 3D M', 'KITTI/Cyclist_3D_AP40_moderate_strict'),
)
RANK_KEY = 'KITTI/Car_3D_AP40_moderate_strict'
_EPOCH_RE = re.compile(r'epoch_(\d+)\.pth$')


def find_checkpoints(work_dir: str) -> List[Tuple[int, str]]:
    """``[(epoch, path), ...]`` of every ``epoch_<N>.pth`` under ``work_dir`` (any depth),
    sorted by epoch then path.

    Raises:
        FileNotFoundError: the folder does not exist or holds no ``epoch_<N>.pth``.
    """
    if not osp.isdir(work_dir):
        raise FileNotFoundError(f'work dir not found: {work_dir}')
    found = []
    for path in glob.glob(osp.join(work_dir, '**', 'epoch_*.pth'), recursive=True):
        m = _EPOCH_RE.search(path)
        if m:
            found.append((int(m.group(1)), path))
    if not found:
        raise FileNotFoundError(f'{work_dir}: no epoch_<N>.pth checkpoint (train with '
                                'tools/train.py, or pass checkpoint files explicitly)')
    return sorted(found)


def read_val_metrics(run_dir: str) -> List[dict]:
    """Validation records ``{'epoch': N, key: value, ...}`` of one run, from
    ``vis_data/scalars.json`` (lines without ``KITTI/`` keys are training losses)."""
    path = osp.join(run_dir, 'vis_data', 'scalars.json')
    if not osp.isfile(path):
        return []
    out = []
    for rec in load_scalars(path).val:
        if any(k.startswith('KITTI/') for k in rec):
            rec = dict(rec)
            rec['epoch'] = rec.pop('step', None)
            out.append(rec)
    return out


def collect_runs(work_dirs: Sequence[str], which: str = 'last') -> List[dict]:
    """Rows ``{config, run, epoch, source, KITTI keys...}`` over the runs of ``work_dirs``.

    Args:
        work_dirs: ``work_dirs/<config name>`` folders (or single run folders).
        which: per run, the 'last' validation, the 'best' (by Car 3D AP40 moderate) or 'all';
            ``metrics.json`` of a test run always gives one row (epoch unknown: ``None``).
    """
    if which not in ('last', 'best', 'all'):
        raise ValueError(f"which={which!r}: choose 'last', 'best' or 'all'")
    rows = []
    for wd in work_dirs:
        if not osp.isdir(wd):
            raise FileNotFoundError(f'work dir not found: {wd}')
        config = osp.basename(osp.normpath(wd))
        runs = sorted(d for d in glob.glob(osp.join(wd, '*')) if osp.isdir(d))
        if osp.isdir(osp.join(wd, 'vis_data')) or osp.isfile(osp.join(wd, 'metrics.json')):
            runs = [wd]  # a run folder itself
            config = osp.basename(osp.dirname(osp.normpath(wd)))
        for run in runs:
            name = osp.basename(run)
            vals = read_val_metrics(run)
            if vals:
                if which == 'last':
                    vals = [vals[-1]]
                elif which == 'best':
                    vals = [max(vals, key=lambda r: r.get(RANK_KEY, float('-inf')))]
                for r in vals:
                    rows.append(dict(r, config=config, run=name, source='val'))
            mpath = osp.join(run, 'metrics.json')
            if osp.isfile(mpath):
                with open(mpath) as f:
                    m = json.load(f)
                if any(k.startswith('KITTI/') for k in m):
                    rows.append(dict(m, config=config, run=name, epoch=None, source='test'))
    return rows


def _cell(v: Optional[float]) -> str:
    return '' if v is None else f'{v:.2f}'


def write_summary(rows: Sequence[dict], out_dir: str,
                  columns: Sequence[Tuple[str, str]] = SUMMARY_COLUMNS) -> Tuple[str, str]:
    """Write ``summary.csv`` and ``summary.md`` (sorted by Car 3D AP40 moderate, best first);
    returns their paths."""
    os.makedirs(out_dir, exist_ok=True)
    ordered = sorted(rows, key=lambda r: -(r.get(RANK_KEY) if r.get(RANK_KEY) is not None
                                           else float('-inf')))
    csv_path, md_path = osp.join(out_dir, 'summary.csv'), osp.join(out_dir, 'summary.md')
    head = ['config', 'run', 'epoch', 'source'] + [k for _, k in columns]
    with open(csv_path, 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(head)
        for r in ordered:
            w.writerow([r.get('config'), r.get('run'), r.get('epoch'), r.get('source')]
                       + [r.get(k, '') for _, k in columns])
    with open(md_path, 'w') as f:
        f.write('KITTI val, **AP40** (IoU 0.7 for Car unless marked @0.5), sorted by Car 3D '
                'moderate.\n\n')
        f.write('| Config | Run | Epoch | ' + ' | '.join(t for t, _ in columns) + ' |\n')
        f.write('|' + '---|' * (3 + len(columns)) + '\n')
        for r in ordered:
            ep = '' if r.get('epoch') is None else str(r['epoch'])
            f.write(f"| {r.get('config')} | {r.get('run')} | {ep} | "
                    + ' | '.join(_cell(r.get(k)) for _, k in columns) + ' |\n')
    return csv_path, md_path


def format_epoch_table(rows: Sequence[dict],
                       columns: Sequence[Tuple[str, str]] = SUMMARY_COLUMNS) -> str:
    """Text table epoch x AP40 columns (rows in the given order)."""
    head = f"{'epoch':>6}" + ''.join(f'{t:>14}' for t, _ in columns)
    lines = [head, '-' * len(head)]
    for r in rows:
        ep = '-' if r.get('epoch') is None else str(r['epoch'])
        lines.append(f'{ep:>6}' + ''.join(f'{_cell(r.get(k)):>14}' for _, k in columns))
    return '\n'.join(lines)


def summary_rows_from_metrics(metrics_by_epoch: Dict[int, dict], config: str,
                              run: str) -> List[dict]:
    """Rows for ``write_summary`` from ``{epoch: metric dict}`` (e.g. evaluating every
    checkpoint)."""
    return [dict(m, config=config, run=run, epoch=e, source='test')
            for e, m in sorted(metrics_by_epoch.items())]

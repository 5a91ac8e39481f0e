"""Validate a folder of teacher depth maps (DA3 pseudo-labels or LiDAR) against a KITTI split.

Usage:
    python tools/misc/check_depth_labels.py data/KITTI --depth-dir DA3_depth_results --split train \
        [--lidar-dir lidar_depth] [--max-depth 80] [--ratio-range 0.8 1.25] [--per-frame]

For every id of ``ImageSets/<split>.txt``: is ``<depth-dir>/<id>.npz`` there and readable, with
key ``depth``; its shape against the raw image (raw size, or DA3's processing resolution of the
same aspect ratio, which ``LoadDA3Depth`` resizes; other shapes are errors); NaN fraction,
invalid fraction (0, negative, NaN, inf, > --max-depth) and the range of valid values. With
``--lidar-dir`` (sparse LiDAR depth, same layout, 0 = no return; kitti_mini ships one) it also
reports per frame, on pixels valid in both: the median of ``depth / lidar`` and AbsRel
``mean(|depth - lidar| / lidar)``, and flags frames whose median ratio is outside
``--ratio-range`` (DA3 can be off by a large factor on some frames).

Prints a summary; exits 1 if any file is missing, unreadable or of a wrong shape, or (with
``--lidar-dir``) if a frame is flagged, else 0. Depth folders are relative to ``data_root``
unless absolute.
"""
from __future__ import annotations

import os.path as osp
import sys
from typing import Sequence

import numpy as np
from mmengine.utils import ProgressBar

from .kitti_io import read_split, split_folder


def _resolve(data_root: str, folder: str) -> str:
    return folder if osp.isabs(folder) else osp.join(data_root, folder)


def check_frame(loader, depth_path: str, raw_hw: tuple[int, int], lidar_path: str | None,
                max_depth: float | None, max_invalid_fraction: float = 0.99) -> dict:
    """Statistics of one frame (``loader``: a ``LoadDA3Depth`` for reading and resizing)."""
    from .transforms.load_da3_depth import depth_validity

    row: dict = dict(status='ok')
    if not osp.exists(depth_path):
        return dict(status='missing')
    try:
        depth = loader.read_depth(depth_path)
    except (KeyError, ValueError, OSError) as err:
        return dict(status='unreadable', error=str(err))
    row['shape'] = depth.shape
    row['nan_fraction'] = float(np.isnan(depth).mean())
    valid = depth_validity(depth, 0.0, max_depth)
    row['invalid_fraction'] = float(1.0 - valid.mean())
    if valid.any():
        vals = depth[valid]
        row.update(min=float(vals.min()), median=float(np.median(vals)), max=float(vals.max()))
    if row['nan_fraction'] == 1.0:
        return dict(row, status='all-nan', error=f'{depth_path}: every pixel is NaN')
    if not valid.any():
        return dict(row, status='no-valid', error=f'{depth_path}: no valid pixel (all '
                    f'non-positive, inf{"" if max_depth is None else " or > --max-depth"})')
    if row['invalid_fraction'] > max_invalid_fraction:
        return dict(row, status='mostly-invalid',
                    error=f'{depth_path}: {100 * row["invalid_fraction"]:.1f} % invalid '
                    f'(> --max-invalid-fraction {max_invalid_fraction})')
    try:
        depth, valid = loader.to_raw_size(depth, valid, raw_hw, depth_path)
    except ValueError as err:
        return dict(row, status='bad-shape', error=str(err))
    row['resized'] = row['shape'] != tuple(raw_hw)
    if lidar_path is not None:
        if not osp.exists(lidar_path):
            row['lidar'] = 'missing'
        else:
            lidar = loader.read_depth(lidar_path)
            if lidar.shape != tuple(raw_hw):
                return dict(row, status='bad-shape',
                            error=f'LiDAR map {lidar_path} is {lidar.shape}, image {raw_hw}')
            both = valid & depth_validity(lidar, 0.0, max_depth)
            row['lidar_points'] = int(both.sum())
            if both.any():
                d, gt = depth[both].astype(np.float64), lidar[both].astype(np.float64)
                row['median_ratio'] = float(np.median(d / gt))
                row['abs_rel'] = float(np.mean(np.abs(d - gt) / gt))
    return row


def check(data_root: str, depth_dir: str, split: str = 'train', lidar_dir: str | None = None,
          max_depth: float | None = None, ratio_range: Sequence[float] = (0.8, 1.25),
          per_frame: bool = False, key: str = 'depth', max_invalid_fraction: float = 0.99
          ) -> tuple[int, dict[str, dict]]:
    """Check every frame; print the report. Returns (number of problems, rows by id)."""
    from .transforms.load_da3_depth import LoadDA3Depth
    from .validation import decode_image

    loader = LoadDA3Depth(depth_dir=depth_dir, key=key)
    ids = read_split(data_root, split)
    image_dir = osp.join(split_folder(data_root, split), 'image_2')
    depth_root = _resolve(data_root, depth_dir)
    lidar_root = _resolve(data_root, lidar_dir) if lidar_dir else None
    rows: dict[str, dict] = {}
    bar = ProgressBar(len(ids), file=sys.stderr)  # stderr: the report on stdout stays clean
    for sample_id in ids:
        bar.update()  # counts the frame being checked
        img_path = osp.join(image_dir, f'{sample_id}.png')
        if not osp.exists(img_path):
            rows[sample_id] = dict(status='no-image', error=f'{img_path} not found')
            continue
        raw_hw, problem = decode_image(img_path)  # a broken image is a row, not a traceback
        if problem:
            rows[sample_id] = dict(status='bad-image', error=problem)
            continue
        rows[sample_id] = check_frame(
            loader, osp.join(depth_root, f'{sample_id}.npz'), raw_hw,
            osp.join(lidar_root, f'{sample_id}.npz') if lidar_root else None, max_depth,
            max_invalid_fraction)
    lo, hi = ratio_range
    for row in rows.values():
        ratio = row.get('median_ratio')
        row['flagged'] = ratio is not None and not lo <= ratio <= hi
    problems = print_report(rows, depth_root, split, lidar_root, ratio_range, per_frame)
    return problems, rows


def print_report(rows: dict[str, dict], depth_root: str, split: str, lidar_root: str | None,
                 ratio_range: Sequence[float], per_frame: bool) -> int:
    """Print per-frame lines (problems always, all with ``per_frame``) and the summary."""
    status: dict[str, list[str]] = {}
    for sample_id, row in rows.items():
        status.setdefault(row['status'], []).append(sample_id)
    ok = [rows[i] for i in status.get('ok', [])]
    for sample_id, row in rows.items():
        if row['status'] != 'ok':
            print(f'{sample_id}: {row["status"]} {row.get("error", "")}'.rstrip())
        elif per_frame or row['flagged']:
            line = (f'{sample_id}: shape {row["shape"]}{" (resized)" if row["resized"] else ""}'
                    f' nan {row["nan_fraction"]:.3f} invalid {row["invalid_fraction"]:.3f}')
            if 'median' in row:
                line += f' range [{row["min"]:.2f}, {row["max"]:.2f}] median {row["median"]:.2f}'
            if 'median_ratio' in row:
                line += (f' | vs LiDAR ({row["lidar_points"]} px): median ratio '
                         f'{row["median_ratio"]:.3f} AbsRel {row["abs_rel"]:.3f}')
            if row['flagged']:
                line += f'  <- ratio outside [{ratio_range[0]}, {ratio_range[1]}]'
            print(line)
    print(f'\n== {depth_root} against split {split!r}: {len(rows)} ids')
    for name in ('ok', 'missing', 'unreadable', 'bad-shape', 'no-image', 'bad-image', 'all-nan',
                 'no-valid', 'mostly-invalid'):
        print(f'  {name:<11}{len(status.get(name, [])):>7}')
    if ok:
        resized = sum(r['resized'] for r in ok)
        print(f'  resized from another resolution: {resized}')
        print(f'  NaN fraction: mean {np.mean([r["nan_fraction"] for r in ok]):.4f}, '
              f'max {max(r["nan_fraction"] for r in ok):.4f}')
        print(f'  invalid fraction: mean {np.mean([r["invalid_fraction"] for r in ok]):.4f}')
        with_vals = [r for r in ok if 'min' in r]
        if with_vals:
            print(f'  valid values: min {min(r["min"] for r in with_vals):.3f} m, '
                  f'max {max(r["max"] for r in with_vals):.3f} m')
    flagged = [i for i, r in rows.items() if r.get('flagged')]
    if lidar_root:
        compared = [r for r in ok if 'median_ratio' in r]
        print(f'  vs LiDAR ({lidar_root}): {len(compared)} frames compared')
        if compared:
            ratios = np.array([r['median_ratio'] for r in compared])
            abs_rel = np.array([r['abs_rel'] for r in compared])
            print(f'    median ratio: median {np.median(ratios):.3f} '
                  f'[{ratios.min():.3f}, {ratios.max():.3f}]; AbsRel mean {abs_rel.mean():.4f}')
        print(f'    flagged (ratio outside [{ratio_range[0]}, {ratio_range[1]}]): '
              f'{len(flagged)} {flagged[:20]}')
    return len(rows) - len(ok) + len(flagged)

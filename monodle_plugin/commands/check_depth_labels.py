"""Validate a folder of teacher depth maps (DA3 pseudo-labels or LiDAR) against a KITTI split.

Command body of ``tools/misc/check_depth_labels.py`` (argparse + the call);
what it does, its options and checks: :mod:`monodle_plugin.datasets.depth_label_check`.
"""
from __future__ import annotations

import argparse
from typing import Sequence

from monodle_kitti.kitti_io import SPLIT_FOLDERS

from ..datasets.depth_label_check import (
    check,
)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('data_root', help='raw KITTI root, e.g. data/KITTI')
    parser.add_argument('--depth-dir', default='DA3_depth_results')
    parser.add_argument('--split', default='train', choices=sorted(SPLIT_FOLDERS))
    parser.add_argument('--lidar-dir', default=None, help='sparse LiDAR depth to compare with')
    parser.add_argument('--max-depth', type=float, default=None,
                        help='values above are invalid (metres)')
    parser.add_argument('--ratio-range', type=float, nargs=2, default=(0.8, 1.25),
                        metavar=('LOW', 'HIGH'), help='accepted median depth/LiDAR ratio')
    parser.add_argument('--key', default='depth', help='array name in the .npz files')
    parser.add_argument('--max-invalid-fraction', type=float, default=0.99,
                        help='a map with more invalid pixels than this fraction fails')
    parser.add_argument('--per-frame', action='store_true', help='print every frame')
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    problems, _ = check(args.data_root, args.depth_dir, args.split, args.lidar_dir,
                        args.max_depth, args.ratio_range, args.per_frame, args.key,
                        args.max_invalid_fraction)
    return 1 if problems else 0



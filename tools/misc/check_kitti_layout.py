"""Check a KITTI folder against the layout monodle_plugin reads.

Usage: python tools/misc/check_kitti_layout.py data/KITTI [--depth-dir DA3_depth_results]

Prints, per split file in ``ImageSets``, how many ids lack an image, a calibration or a label
(and a depth file when ``--depth-dir`` is given), and exits non-zero if anything is missing.
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
import sys

if __name__ == '__main__':
    sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from monodle_plugin.datasets.kitti_io import (  # noqa: E402
    SPLIT_FOLDERS,
    KittiFormatError,
    read_split_file,
    split_file_path,
)


def check(root: str, depth_dir: str | None = None) -> int:
    """Return the number of problems found under ``root`` (printed as they are found)."""
    problems = 0
    image_sets = osp.join(root, 'ImageSets')
    if not osp.isdir(image_sets):
        print(f'missing {image_sets}/ (copy data/KITTI/ImageSets from this repository)')
        return 1
    for split, subset in SPLIT_FOLDERS.items():
        split_file = split_file_path(root, split)
        if not osp.exists(split_file):
            print(f'{split_file}: not found (skipped)')
            continue
        try:
            ids = read_split_file(split_file)
        except KittiFormatError as err:
            print(err)
            problems += 1
            continue
        folders = {'image_2': '.png', 'calib': '.txt'}
        if subset == 'training':
            folders['label_2'] = '.txt'
        base = osp.join(root, subset)
        if not osp.isdir(base):
            print(f'{split}: {len(ids)} ids, but {base}/ does not exist')
            problems += 1
            continue
        report = []
        for folder, ext in folders.items():
            present = set(os.listdir(osp.join(base, folder))) if osp.isdir(
                osp.join(base, folder)) else set()
            missing = [i for i in ids if i + ext not in present]
            if missing:
                problems += 1
                report.append(f'{len(missing)} missing in {folder}/ (first: {missing[0]}{ext})')
        if depth_dir and subset == 'training':
            ddir = depth_dir if osp.isabs(depth_dir) else osp.join(root, depth_dir)
            present = set(os.listdir(ddir)) if osp.isdir(ddir) else set()
            missing = [i for i in ids if i + '.npz' not in present]
            if missing:
                problems += 1
                report.append(f'{len(missing)} missing in {ddir}/ (first: {missing[0]}.npz)')
        print(f'{split:9s} {len(ids):5d} ids: ' + ('; '.join(report) if report else 'complete'))
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('root', nargs='?', default='data/KITTI')
    parser.add_argument('--depth-dir', default=None,
                        help='depth pseudo-label folder, relative to ROOT or absolute')
    args = parser.parse_args()
    sys.exit(1 if check(args.root, args.depth_dir) else 0)


if __name__ == '__main__':
    main()

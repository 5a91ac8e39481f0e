"""Object statistics of a KITTI split: depth, size, truncation, occlusion histograms per class.

    python tools/analysis_tools/get_data_distribution.py --root-dir data/KITTI --split train \\
        [--classes Car Pedestrian Cyclist] [--out-dir work_dirs/data_distribution]

Port of MonoDLE's ``tools/get_data_distribution.py``: prints its depth counts (``> 60 m``,
``< 20 m``, ...) and writes its bird's-eye ``x``-``z`` scatter (``bev.png``), plus one
histogram PNG per quantity and ``distribution.json`` with every number.
"""
import argparse
import json
import os
import os.path as osp

from ..datasets.kitti_io import read_split_file, split_file_path
from ..evaluation.analysis.data_distribution import (
    collect_object_stats,
    format_summary,
    plot_distribution,
    summarize,
)
from ..utils.cli import UserError


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--root-dir', default='data/KITTI',
                        help='KITTI folder holding ImageSets/ and training/label_2/')
    parser.add_argument('--split', default='trainval',
                        help='split name (ImageSets/<split>.txt) or a path to a split file')
    parser.add_argument('--classes', '--write-list', nargs='+',
                        default=['Car', 'Pedestrian', 'Cyclist'], help='classes to count')
    parser.add_argument('--out-dir', default='work_dirs/data_distribution',
                        help='folder for the PNGs and distribution.json')
    parser.add_argument('--no-plots', action='store_true', help='numbers only')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    # a name (train, val, ...) -> <root>/ImageSets/<name>.txt; anything file-like is a path
    is_path = osp.isfile(args.split) or args.split.endswith('.txt') or os.sep in args.split
    split = args.split if is_path else split_file_path(args.root_dir, args.split)
    if args.split == 'test':
        raise UserError('--split test: the test split has no labels; choose train, val or '
                        'trainval')
    ids = read_split_file(split)
    label_dir = osp.join(args.root_dir, 'training', 'label_2')
    if not osp.isdir(label_dir):
        raise UserError(f'label folder not found: {label_dir} (set --root-dir to the KITTI '
                        'folder holding training/label_2)')
    stats = collect_object_stats(label_dir, ids, args.classes)
    summary = summarize(stats)
    print(f'{len(ids)} images of {split}')
    print(format_summary(summary))
    os.makedirs(args.out_dir, exist_ok=True)
    path = osp.join(args.out_dir, 'distribution.json')
    with open(path, 'w') as f:
        json.dump(summary, f, indent=1)
    print(f'numbers written to {path}')
    if not args.no_plots:
        pngs = plot_distribution(stats, args.out_dir, title=osp.basename(split))
        print(f'{len(pngs)} plots written to {args.out_dir}')
    return summary

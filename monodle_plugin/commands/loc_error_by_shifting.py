"""KITTI AP as a function of a pixel shift of the projected 3D centres (localisation error).

    python tools/analysis_tools/loc_error_by_shifting.py --root-dir data/KITTI --split val \\
        [--pred work_dirs/x/results] [--shifts 0 1 2 4 8] [--direction random] [--classes Car]

Port of MonoDLE's ``tools/loc_error_by_shifting.py`` (which turns one pixel shift at one depth
into a 3D error) to the whole split: every box (the ground truth used as detections with score
1, or the result files of ``--pred``) has its projected 3D centre moved by the shift at its own
depth, and the KITTI AP40 is measured. Shift 0 gives the plain AP. Prints the table (shift,
mean 3D location error, AP) and writes ``shifting.json`` and ``shifting.png`` to ``--out-dir``.
"""
import argparse
import json
import os
import os.path as osp

import numpy as np

from ..datasets.kitti_io import (
    load_kitti_dir,
    read_calib,
    read_split_file,
)
from ..evaluation.analysis.shifting import (
    DIRECTIONS,
    gt_as_detections,
    shift_annos,
)
from ..evaluation.functional import kitti_eval
from ..utils.cli import UserError

DIFFS = ('easy', 'moderate', 'hard')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--root-dir', default='data/KITTI',
                        help='KITTI folder holding ImageSets/ and training/{label_2,calib}')
    parser.add_argument('--split', default='val',
                        help='split name (ImageSets/<split>.txt) or a path to a split file')
    parser.add_argument('--pred', help='folder of KITTI result files to shift (default: the '
                        'ground truth itself, score 1, as in the paper)')
    parser.add_argument('--shifts', nargs='+', type=float, default=[0, 1, 2, 4, 8, 16],
                        help='shift lengths in pixels (raw image)')
    parser.add_argument('--direction', default='random', choices=DIRECTIONS,
                        help='u (right), v (down), uv (diagonal) or a random angle per box')
    parser.add_argument('--seed', type=int, default=0, help='seed of the random angles')
    parser.add_argument('--classes', nargs='+', default=['Car'],
                        help='classes to evaluate (Car, Pedestrian, Cyclist)')
    parser.add_argument('--out-dir', default='work_dirs/loc_error_by_shifting',
                        help='folder for shifting.json and shifting.png')
    return parser.parse_args(argv)


def run_shifting(gt_annos, dt_annos, cam2imgs, shifts, classes, direction='random',
                 seed=0) -> dict:
    """``{shift: {'loc_error_mean': m, KITTI keys...}}`` (3D and BEV AP of each shift)."""
    out = {}
    for s in shifts:
        moved, err = shift_annos(dt_annos, cam2imgs, s, direction, seed)
        _, aps = kitti_eval(gt_annos, moved, classes, ('bev', '3d'))
        out[f'{s:g}'] = dict(loc_error_mean=float(err.mean()) if len(err) else 0.0, **aps)
    return out


def main(argv=None) -> dict:
    args = parse_args(argv)
    split = args.split if osp.isfile(args.split) else osp.join(args.root_dir, 'ImageSets',
                                                                f'{args.split}.txt')
    ids = read_split_file(split)
    gt_annos = load_kitti_dir(osp.join(args.root_dir, 'training', 'label_2'), ids, False)
    cam2imgs = [read_calib(osp.join(args.root_dir, 'training', 'calib', f'{i}.txt'))['cam2img']
                for i in ids]
    if args.pred:
        if not osp.isdir(args.pred):
            raise UserError(f'result folder not found: {args.pred} (give --pred, a folder of '
                            'KITTI result files <id>.txt, or leave it out to shift the labels)')
        dt_annos = load_kitti_dir(args.pred, ids, True)
    else:
        dt_annos = gt_as_detections(gt_annos, args.classes)
    res = run_shifting(gt_annos, dt_annos, cam2imgs, args.shifts, args.classes,
                       args.direction, args.seed)
    src = args.pred or 'ground truth as detections'
    print(f'{len(ids)} images, boxes: {src}, direction {args.direction}')
    head = f"{'shift px':>9}{'loc err m':>11}"
    for c in args.classes:
        head += ''.join(f'{c[:3] + " " + k + " " + d[:3]:>16}' for k in ('3D', 'BEV')
                        for d in DIFFS)
    print(head)
    for s, r in res.items():
        row = f"{s:>9}{r['loc_error_mean']:>11.3f}"
        for c in args.classes:
            row += ''.join(f"{r[f'KITTI/{c}_{k}_AP40_{d}_strict']:>16.2f}"
                           for k in ('3D', 'BEV') for d in DIFFS)
        print(row)
    os.makedirs(args.out_dir, exist_ok=True)
    with open(osp.join(args.out_dir, 'shifting.json'), 'w') as f:
        json.dump(res, f, indent=1)
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3.2))
    xs = np.array([float(s) for s in res])
    for c in args.classes:
        for k in ('3D', 'BEV'):
            ax.plot(xs, [r[f'KITTI/{c}_{k}_AP40_moderate_strict'] for r in res.values()],
                    marker='o', label=f'{c} {k} AP40 moderate')
    ax.set_xlabel('shift of the projected centre [px]')
    ax.set_ylabel('AP40 [%]')
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(osp.join(args.out_dir, 'shifting.png'), dpi=80)
    plt.close(fig)
    print(f'shifting.json and shifting.png written to {args.out_dir}')
    return res

"""Evaluate KITTI result files against KITTI label files (AP40 and AP11, CPU only).

    python tools/kitti_eval.py --gt data/KITTI/training/label_2 --pred work_dirs/x/results \
        --split data/KITTI/ImageSets/val.txt [--out-json ap.json] [--classes Car Pedestrian] \
        [--depth-bins 0 20 40] [--score-thr 0.2]

Prints the table (class x difficulty x metric) and optionally writes the flat dict with
mmdet3d's ``kitti_eval`` keys (``KITTI/Car_3D_AP40_moderate_strict``, ...; AOS as
``KITTI/Car_AOS_AP40_moderate_strict``) as JSON. The numbers equal mmdet3d's ``kitti_eval``.
``--depth-bins`` adds the AP per distance range (keys with the bin as suffix,
``KITTI/Car_3D_AP40_moderate_strict_0-20m``); ``--score-thr`` drops detections below a score.

The first run with an empty numba cache compiles the jitted evaluation in two processes when a
core is idle (``kitti_eval_jit``; one note on stderr); later runs load it from the cache.
"""
import argparse
import sys

from ..cli import write_json_file

# the torch-free KITTI package: no torch / mmengine / mmdet3d import (monodle_plugin registers)
from ..distance_bins import (
    DEFAULT_DEPTH_EDGES,
    compute_ap_by_distance,
    count_objects_by_depth,
    depth_bins_from_edges,
)
from ..kitti_eval import KITTI_EVAL_CLASSES
from ..kitti_eval_jit import ParallelCompile
from ..kitti_file_eval import evaluate_kitti_files


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--gt', required=True, help='folder of KITTI label files <id>.txt')
    parser.add_argument('--pred', required=True, help='folder of KITTI result files <id>.txt')
    parser.add_argument('--split', required=True, help='split file listing image ids')
    parser.add_argument('--out-json', help='write the AP dict to this JSON file')
    parser.add_argument('--classes', nargs='+', default=list(KITTI_EVAL_CLASSES),
                        help='classes to evaluate (Car, Pedestrian, Cyclist)')
    parser.add_argument('--eval-types', nargs='+', default=['bbox', 'bev', '3d', 'aos'],
                        help="overlap types (bbox, bev, 3d) and 'aos'")
    parser.add_argument('--missing-as-empty', action='store_true',
                        help='a split id without result file counts as "no detections" '
                             '(default: error, as the KITTI devkit)')
    parser.add_argument('--depth-bins', nargs='*', type=float, metavar='EDGE',
                        help='also AP per distance range; edges in metres, e.g. 0 20 40 '
                             '(bins 0-20, 20-40, 40+ m; the default when the flag has no '
                             'value)')
    parser.add_argument('--score-thr', type=float, default=None,
                        help='drop detections with a score below this (default: keep all)')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    bins = None
    if args.depth_bins is not None:
        bins = depth_bins_from_edges(args.depth_bins or DEFAULT_DEPTH_EDGES)
    # an empty numba cache: compile on both cores while the files are read (kitti_eval_jit)
    jit = ParallelCompile()
    jit.start()
    try:
        result, report = evaluate_kitti_files(args.gt, args.pred, args.split, args.classes,
                                              args.eval_types, args.missing_as_empty,
                                              args.score_thr, before_eval=jit.finish)
    finally:
        jit.close()
    print(report['table'])
    if bins is not None:
        types = [t for t in args.eval_types if t != 'aos']
        gt_annos, dt_annos = report['gt_annos'], report['dt_annos']
        by_depth, tables = compute_ap_by_distance(gt_annos, dt_annos, args.classes, bins, types,
                                                  with_aos='aos' in args.eval_types)
        counts = count_objects_by_depth(gt_annos, bins, args.classes)
        for name, table in tables.items():
            objs = ', '.join(f'{c} {n}' for c, n in counts[name].items())
            print(f'\nObjects at depth {name} (label lines: {objs}):\n{table}')
        result.update(by_depth)
    print(f"{report['images']} images, {report['label_lines']} label lines, "
          f"{report['detections']} detections: read {report['read_s']:.2f} s, "
          f"evaluated {report['eval_s']:.2f} s")
    note = jit.summary()
    if note:  # a one-time start-up note: stderr, the table and numbers on stdout
        print(note, file=sys.stderr)
    if args.out_json:
        write_json_file(args.out_json, result)
        print(f'AP dict written to {args.out_json}')
    return result

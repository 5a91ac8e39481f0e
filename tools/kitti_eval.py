"""Evaluate KITTI result files against KITTI label files (AP40 and AP11, CPU only).

    python tools/kitti_eval.py --gt data/KITTI/training/label_2 --pred work_dirs/x/results \
        --split data/KITTI/ImageSets/val.txt [--out-json ap.json] [--classes Car Pedestrian]

Prints the table (class x difficulty x metric) and optionally writes the flat dict with
mmdet3d's ``kitti_eval`` keys (``KITTI/Car_3D_AP40_moderate_strict``, ...; AOS as
``KITTI/Car_AOS_AP40_moderate_strict``) as JSON. The numbers equal mmdet3d's ``kitti_eval``.
"""
import argparse
import importlib
import json
import os
import os.path as osp
import sys
import time
import types

_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def load_functional():
    """``monodle_plugin.evaluation.functional`` without running the parent ``__init__`` files.

    ``import monodle_plugin`` first imports torch, mmcv and mmdet3d (many seconds on a small
    machine), which the evaluation does not use: it needs numpy and numba only. The parents
    are registered as bare packages so that the module keeps its real name (numba's on-disk
    cache records it). Only for this command-line process; in a process that already
    imported ``monodle_plugin`` the real module is returned.
    """
    name = 'monodle_plugin.evaluation.functional'
    if name not in sys.modules:
        for pkg, path in (('monodle_plugin', ('monodle_plugin',)),
                          ('monodle_plugin.evaluation', ('monodle_plugin', 'evaluation'))):
            if pkg not in sys.modules:
                module = types.ModuleType(pkg)
                module.__path__ = [osp.join(_ROOT, *path)]
                sys.modules[pkg] = module
    return importlib.import_module(name)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--gt', required=True, help='folder of KITTI label files <id>.txt')
    parser.add_argument('--pred', required=True, help='folder of KITTI result files <id>.txt')
    parser.add_argument('--split', required=True, help='split file listing image ids')
    parser.add_argument('--out-json', help='write the AP dict to this JSON file')
    parser.add_argument('--classes', nargs='+', default=['Car', 'Pedestrian', 'Cyclist'],
                        help='classes to evaluate (Car, Pedestrian, Cyclist)')
    parser.add_argument('--eval-types', nargs='+', default=['bbox', 'bev', '3d', 'aos'],
                        help="overlap types (bbox, bev, 3d) and 'aos'")
    parser.add_argument('--missing-as-empty', action='store_true',
                        help='a split id without result file counts as "no detections" '
                             '(default: error, as the KITTI devkit)')
    parser.add_argument('--allow-unknown-classes', action='store_true',
                        help='count (and warn about) objects whose class name is not a KITTI '
                        'name instead of stopping (default: error naming the file)')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    t0 = time.perf_counter()
    fn = load_functional()
    if not osp.isdir(args.gt):
        raise FileNotFoundError(f'label folder not found: {args.gt}')
    if not osp.isdir(args.pred):
        raise FileNotFoundError(f'result folder not found: {args.pred}')
    ids = fn.read_split_file(args.split)
    missing_gt = [i for i in ids if not osp.isfile(osp.join(args.gt, f'{i}.txt'))]
    with_pred = [i for i in missing_gt if osp.isfile(osp.join(args.pred, f'{i}.txt'))]
    if with_pred:
        raise FileNotFoundError(
            f'{len(with_pred)} result file(s) without label file, e.g. '
            f'{osp.join(args.pred, with_pred[0] + ".txt")} has no '
            f'{osp.join(args.gt, with_pred[0] + ".txt")}')
    if missing_gt:
        raise FileNotFoundError(f'{len(missing_gt)} split id(s) without label file, e.g. '
                                f'{osp.join(args.gt, missing_gt[0] + ".txt")}')
    unknown = 'count' if args.allow_unknown_classes else 'error'
    gt_annos = fn.load_kitti_dir(args.gt, ids, is_result=False, unknown=unknown)
    dt_annos = fn.load_kitti_dir(args.pred, ids, is_result=True,
                                 missing_ok=args.missing_as_empty, unknown=unknown)
    t_read = time.perf_counter()
    types = [t for t in args.eval_types if t != 'aos']
    aps, _ = fn.compute_kitti_ap(gt_annos, dt_annos, args.classes, types,
                                 with_aos='aos' in args.eval_types)
    t_eval = time.perf_counter()
    print(fn.format_kitti_table(aps, args.classes))
    result = fn.kitti_aps_to_dict(aps, args.classes)
    print(f'{len(ids)} images, {sum(len(a["name"]) for a in gt_annos)} label lines, '
          f'{sum(len(a["name"]) for a in dt_annos)} detections: read {t_read - t0:.2f} s, '
          f'evaluated {t_eval - t_read:.2f} s')
    if args.out_json:
        os.makedirs(osp.dirname(osp.abspath(args.out_json)), exist_ok=True)
        with open(args.out_json, 'w') as f:
            json.dump(result, f, indent=1)
        print(f'AP dict written to {args.out_json}')
    return result


if __name__ == '__main__':
    load_functional()  # light parent packages first (see its docstring); cli.py is stdlib-only
    from monodle_plugin.utils.cli import run_cli
    run_cli(main)

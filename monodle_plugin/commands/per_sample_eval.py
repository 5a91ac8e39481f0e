"""Per-image precision / recall / F1 of a KITTI result folder, or where one of two folders wins.

    python tools/analysis_tools/per_sample_eval.py --gt data/KITTI/training/label_2 \\
        --split data/KITTI/ImageSets/val.txt --pred work_dirs/a/results \\
        [--compare work_dirs/b/results] [--class Car] [--difficulty moderate] [--metric 3d] \\
        [--score-thr 0.2] [--out-json f.json]

Matching is the KITTI devkit's (``--metric``: 2D / BEV / 3D overlap with the class's strict
or loose IoU threshold, ``--difficulty`` filter). With ``--compare`` the images where the
first folder (A) or the second (B) has the higher F1 are listed, largest gap first.
"""
import argparse
import os.path as osp

from ..datasets.kitti_io import load_kitti_dir, read_split_file
from ..evaluation.analysis.per_sample import (
    compare_per_sample,
    per_sample_counts,
    per_sample_table,
)
from ..utils.cli import UserError, write_json_file


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--gt', required=True, help='folder of KITTI label files <id>.txt')
    parser.add_argument('--split', required=True, help='split file listing image ids')
    parser.add_argument('--pred', required=True, help='folder of KITTI result files (A)')
    parser.add_argument('--compare', help='second result folder (B): list where A or B wins')
    parser.add_argument('--class', dest='cls', default='Car',
                        choices=['Car', 'Pedestrian', 'Cyclist'])
    parser.add_argument('--difficulty', default='moderate', choices=['easy', 'moderate', 'hard'])
    parser.add_argument('--metric', default='3d', choices=['bbox', 'bev', '3d'],
                        help='overlap used for matching (the seed used 3d, or bev for depth)')
    parser.add_argument('--overlap', default='strict', choices=['strict', 'loose'],
                        help='IoU thresholds: strict (Car 0.7) or loose (Car 0.5)')
    parser.add_argument('--score-thr', type=float, default=0.0,
                        help='drop detections below this score (default 0: keep all)')
    parser.add_argument('--min-gap', type=float, default=0.0,
                        help='with --compare: F1 difference needed to call a winner')
    parser.add_argument('--top-k', type=int, default=20, help='rows printed per list')
    parser.add_argument('--missing-as-empty', action='store_true',
                        help='a split id without result file counts as "no detections"')
    parser.add_argument('--out-json', help='write the per-image rows (and comparison) here')
    return parser.parse_args(argv)


def _load(folder: str, ids, args, is_result: bool):
    if not osp.isdir(folder):
        raise UserError(f'folder not found: {folder} (give a folder of KITTI <id>.txt files)')
    return load_kitti_dir(folder, ids, is_result=is_result,
                          missing_ok=is_result and args.missing_as_empty)


def _fmt(v) -> str:
    return '   -' if v is None else f'{v:.3f}'


def main(argv=None) -> dict:
    args = parse_args(argv)
    ids = read_split_file(args.split)
    gt = _load(args.gt, ids, args, False)
    kw = dict(cls=args.cls, difficulty=args.difficulty, metric=args.metric,
              overlap_set=args.overlap, score_thr=args.score_thr)
    counts_a = per_sample_counts(gt, _load(args.pred, ids, args, True), **kw)
    rows = per_sample_table(ids, counts_a)
    out = dict(settings=dict(kw, pred=args.pred, compare=args.compare), per_sample=rows)
    print(f'{args.cls} {args.difficulty} {args.metric} ({args.overlap} IoU), score >= '
          f'{args.score_thr}: {args.pred}')
    print(f"{'image':<10}{'tp':>4}{'fp':>4}{'fn':>4}{'prec':>7}{'rec':>7}{'F1':>7}")
    shown = sorted(rows, key=lambda r: (r['f1'] is None, r['f1'] if r['f1'] is not None else 0))
    for r in shown[:args.top_k]:
        print(f"{r['sample_id']:<10}{r['tp']:>4}{r['fp']:>4}{r['fn']:>4}"
              f"{_fmt(r['precision']):>7}{_fmt(r['recall']):>7}{_fmt(r['f1']):>7}")
    tot = counts_a.sum(0)
    print(f'total: {tot[0]} tp, {tot[1]} fp, {tot[2]} fn over {len(ids)} images '
          f'(worst {min(args.top_k, len(rows))} by F1 shown)')
    if args.compare:
        counts_b = per_sample_counts(gt, _load(args.compare, ids, args, True), **kw)
        out['per_sample_b'] = per_sample_table(ids, counts_b)
        cmp = compare_per_sample(ids, counts_a, counts_b, args.min_gap)
        out['comparison'] = cmp
        for key, who, folder in (('a_wins', 'A', args.pred), ('b_wins', 'B', args.compare)):
            print(f'\n{len(cmp[key])} image(s) where {who} ({folder}) has the higher F1:')
            for r in cmp[key][:args.top_k]:
                print(f"  {r['sample_id']}  F1 A {r['f1_a']:.3f}  B {r['f1_b']:.3f}  "
                      f"gap {r['gap']:+.3f}")
        print(f"{cmp['ties']} tie(s)")
    if args.out_json:
        write_json_file(args.out_json, out)
        print(f'written to {args.out_json}')
    return out

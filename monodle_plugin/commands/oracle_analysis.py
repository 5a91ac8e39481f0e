"""Oracle analysis: AP40 when predicted items of matched detections are replaced by the GT.

    python tools/analysis_tools/oracle_analysis.py CONFIG CKPT [--replace depth offset_3d all] \\
        [--depth-bins 0 20 40] [--out-json oracle.json] [--compare-configs CFG2 CKPT2 ...]

MonoDLE's Table 1 (and the seed's ``oracle_analysis.py``). Items: ``offset_2d`` (2D centre),
``size_2d``, ``offset_3d`` (projected 3D centre), ``depth``, ``size_3d``, ``heading``, ``all``;
join several with ``+`` (``depth+offset_3d``, alias ``location``). Without ``--replace`` the
standard set runs: baseline, each item alone, depth+offset_3d, all. The model runs once; the
box coder decodes each variant. Prints tables (overall and per depth bin) and writes
``{variant: {key: value}}`` with mmdet3d's keys (``KITTI/Car_3D_AP40_moderate_strict``; per
depth bin with the bin as suffix, ``..._0-20m``), and an AP-vs-depth plot with ``--output``.
"""
import argparse
import os.path as osp

import torch
from mmengine.config import Config, DictAction
from mmengine.runner import Runner

from ..engine.dataloader_settings import (
    resolve_dataloader_settings,
)
from ..evaluation.analysis.distance_bins import (
    DEFAULT_DEPTH_EDGES,
    depth_bin_name,
    depth_bins_from_edges,
)
from ..evaluation.analysis.oracle import (
    STANDARD_VARIANTS,
    collect_predictions,
    evaluate_variants,
    format_oracle_table,
    parse_variant,
    variant_name,
)
from ..utils.cli import UserError, write_json_file


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--replace', '--modes', nargs='+', metavar='ITEM',
                        help='variants to run besides the baseline (items joined by +)')
    parser.add_argument('--depth-bins', nargs='+', type=float, default=list(DEFAULT_DEPTH_EDGES),
                        metavar='EDGE', help='depth bin edges in metres (default 0 20 40: '
                        '0-20, 20-40, 40+ m)')
    parser.add_argument('--category', default='Car', choices=['Car', 'Pedestrian', 'Cyclist'],
                        help='class of the printed tables (the JSON holds every class)')
    parser.add_argument('--score-thr', type=float, default=None,
                        help="heatmap-score threshold (default: the head's test_cfg)")
    parser.add_argument('--match-radius', type=float, default=5.0,
                        help='max distance (feature cells) from a detection peak to the '
                             "ground truth's projected 3D centre (the seed used 5)")
    parser.add_argument('--out-json', help='write {variant: {key: AP}} here')
    parser.add_argument('--output', help='AP40 vs depth bin plot (PNG) of --category, 3D '
                        'moderate')
    parser.add_argument('--compare-configs', nargs='+', metavar='CFG_OR_CKPT',
                        help='more models: CONFIG CHECKPOINT pairs, run the same way')
    parser.add_argument('--compare-labels', nargs='+',
                        help='names of the models (default: config file stems)')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings (all models), xxx=yyy format')
    args = parser.parse_args(argv)
    if args.compare_configs and len(args.compare_configs) % 2:
        parser.error('--compare-configs takes CONFIG CHECKPOINT pairs')
    return args


def run_one(config: str, checkpoint: str, args, variants, bins) -> tuple:
    """(results, match counts) of one model."""
    for path, what in ((config, 'config file'), (checkpoint, 'checkpoint')):
        if not osp.isfile(path):
            raise UserError(f'{what} not found: {path}')
    cfg = Config.fromfile(config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    from ..apis.inference import build_detector
    model, _ = build_detector(config, checkpoint, args.device, args.cfg_options)
    from mmdet3d.registry import METRICS
    resolve_dataloader_settings(cfg, 'none')  # 'auto' workers / pin_memory, as the runner does
    loader = Runner.build_dataloader(cfg.test_dataloader)
    metric = METRICS.build(cfg.test_evaluator)
    metric.dataset_meta = loader.dataset.metainfo  # as the runner's evaluator sets it
    cache = collect_predictions(model, loader, args.score_thr)
    coder = model.bbox_head.bbox_coder
    return evaluate_variants(cache, coder, metric, variants,
                             model.bbox_head.test_cfg['decode_mode'], bins, args.match_radius)


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.replace:
        try:
            variants = [()] + [parse_variant(s) for s in args.replace]
        except ValueError as e:
            raise UserError(f'--replace: {e}') from None
    else:
        variants = list(STANDARD_VARIANTS)
    seen, unique = set(), []
    for v in variants:
        if variant_name(v) not in seen:
            seen.add(variant_name(v))
            unique.append(v)
    try:
        bins = depth_bins_from_edges(args.depth_bins)
    except ValueError as e:
        raise UserError(f'--depth-bins: {e}') from None
    models = [(args.config, args.checkpoint)]
    if args.compare_configs:
        models += list(zip(args.compare_configs[::2], args.compare_configs[1::2]))
    labels = args.compare_labels or [osp.splitext(osp.basename(c))[0] for c, _ in models]
    if len(labels) != len(models):
        raise UserError(f'{len(labels)} --compare-labels for {len(models)} models: give one '
                        'name per model (the first model included) or none')
    all_results = {}
    with torch.no_grad():
        for label, (config, ckpt) in zip(labels, models):
            results, counts = run_one(config, ckpt, args, unique, bins)
            all_results[label] = results
            print(f'\n== {label}: {counts["detections"]} detections, {counts["matched"]} matched '
                  f'to one of {counts["gt_objects"]} ground-truth objects (radius '
                  f'{args.match_radius} cells)')
            print(format_oracle_table(results, args.category))
            for lo, hi in bins:
                print()
                print(format_oracle_table(results, args.category, depth_bin_name(lo, hi)))
    out = all_results[labels[0]] if len(models) == 1 else all_results
    if args.out_json:
        write_json_file(args.out_json, out)
        print(f'written to {args.out_json}')
    if args.output:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(6, 3.5))
        names = [depth_bin_name(lo, hi) for lo, hi in bins]
        for label, results in all_results.items():
            for variant, res in results.items():
                ys = [res[f'KITTI/{args.category}_3D_AP40_moderate_strict_{n}'] for n in names]
                tag = variant if len(all_results) == 1 else f'{label}: {variant}'
                ax.plot(names, ys, marker='o', label=tag)
        ax.set_xlabel('depth bin')
        ax.set_ylabel(f'{args.category} 3D AP40 moderate [%]')
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(args.output, dpi=80)
        plt.close(fig)
        print(f'plot written to {args.output}')
    return out

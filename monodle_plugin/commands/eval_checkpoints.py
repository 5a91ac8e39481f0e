"""Evaluate every checkpoint of a work dir in one command: a table of epoch vs AP40.

    python tools/analysis_tools/eval_checkpoints.py CONFIG work_dirs/<config name> \\
        [--checkpoints a.pth b.pth] [--every 10] [--out-dir DIR] [--cfg-options ...]

The seed's ``tester.mode: all``. The model, data and metric are built once; each
``epoch_<N>.pth`` under the work dir (any run folder) is loaded in turn and tested. Writes the
KITTI result files of each checkpoint to ``<out-dir>/results/epoch_<N>/``, and
``summary.csv`` / ``summary.md`` / ``metrics.json`` (``{epoch: {key: value}}``) to
``<out-dir>`` (default: the new run folder ``<work dir>/eval_checkpoints/<timestamp>``).
"""
import argparse
import json
import os
import os.path as osp
import re

from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from ..evaluation.analysis.runs import (
    find_checkpoints,
    format_epoch_table,
    summary_rows_from_metrics,
    write_summary,
)
from ..evaluation.metrics import KittiAP40Metric
from ..utils.checkpoint_loading import (
    load_weights_strict,
    skip_backbone_pretrained,
)
from ..utils.cli import UserError


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='config file the checkpoints were trained with')
    parser.add_argument('work_dir', help='folder searched (recursively) for epoch_<N>.pth')
    parser.add_argument('--checkpoints', nargs='+', help='these files instead of searching')
    parser.add_argument('--every', type=int, default=1,
                        help='only epochs divisible by this (default: every checkpoint)')
    parser.add_argument('--out-dir', help='folder for the tables and result files')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, xxx=yyy format')
    return parser.parse_args(argv)


def _epoch_of(path: str) -> int:
    m = re.search(r'epoch_(\d+)\.pth$', path)
    if not m:
        raise ValueError(f'{path}: checkpoint name must be epoch_<N>.pth (the epoch is the '
                         'table row)')
    return int(m.group(1))


def main(argv=None) -> dict:
    args = parse_args(argv)
    if not osp.isfile(args.config):
        raise UserError(f'config file not found: {args.config}')
    if args.checkpoints:
        missing = [c for c in args.checkpoints if not osp.isfile(c)]
        if missing:
            raise UserError(f'checkpoint not found: {missing[0]} (check --checkpoints)')
        ckpts = sorted((_epoch_of(c), c) for c in args.checkpoints)
    else:
        ckpts = [(e, p) for e, p in find_checkpoints(args.work_dir) if e % args.every == 0]
    if len({e for e, _ in ckpts}) != len(ckpts):
        raise UserError(f'several checkpoints with the same epoch under {args.work_dir} '
                        '(several runs?): pass one run folder or --checkpoints')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg.work_dir = osp.join(args.work_dir, 'eval_checkpoints')
    cfg.load_from = None  # each checkpoint is loaded strictly and safely below
    skip_backbone_pretrained(cfg.model)  # the checkpoints hold every weight
    cfg.resume = False
    cfg.launcher = 'none'
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    out_dir = args.out_dir or runner.log_dir
    metrics_by_epoch = {}
    for i, (epoch, path) in enumerate(ckpts):
        for m in runner.test_evaluator.metrics:
            if isinstance(m, KittiAP40Metric):
                m.submission_prefix = osp.join(out_dir, 'results', f'epoch_{epoch}')
        runner.logger.info(f'--- epoch {epoch}: {path}')
        load_weights_strict(runner.model, path, args.config, logger=runner.logger)
        if i == 0:
            metrics = runner.test()  # builds the test loop
        else:
            metrics = runner.test_loop.run()
        metrics_by_epoch[epoch] = {k: float(v) for k, v in metrics.items()}
    rows = summary_rows_from_metrics(metrics_by_epoch, osp.basename(osp.normpath(
        args.work_dir)), osp.basename(out_dir))
    table = format_epoch_table(rows)
    runner.logger.info(f'KITTI AP40 of {len(rows)} checkpoint(s):\n{table}')
    os.makedirs(out_dir, exist_ok=True)
    with open(osp.join(out_dir, 'metrics.json'), 'w') as f:
        json.dump({str(e): m for e, m in metrics_by_epoch.items()}, f, indent=1)
    csv_path, md_path = write_summary(rows, out_dir)
    print(table)
    print(f'written: {csv_path}, {md_path}, {osp.join(out_dir, "metrics.json")}')
    return metrics_by_epoch

"""Test (and evaluate) a MonoDLE checkpoint (mmdet3d's ``tools/test.py`` conventions).

Examples::

    python tools/test.py configs/monodle/monodle_dla34_kitti.py CKPT            # KITTI AP40 table
    python tools/test.py CKPT                      # the config stored in the checkpoint (meta.cfg)
    python tools/test.py CONFIG CKPT --show-dir vis                # + PNG per image (boxes + BEV)
    tools/dist_test.sh CONFIG CKPT 8

Outputs land in ``work_dirs/<config name>/<timestamp>/`` (log, metrics json; ``--show-dir``
relative paths are put there too). The metric (``KittiAP40Metric``) prints the AP40 table.
The config is optional: every checkpoint this package writes holds its own (``meta.cfg``, read as
plain data, never executed); when both are given and their models differ, one line says so.
"""
import argparse
import json
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.dist import is_main_process
from mmengine.registry import RUNNERS

from ..engine.cpu_distributed import (
    export_launcher_env,
    finish_distributed,
)
from ..engine.runners import MonoDLERunner
from ..utils.checkpoint_loading import (
    load_weights_strict,
    resolve_config,
    skip_backbone_pretrained,
    split_config_checkpoint,
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('files', nargs='+', metavar='[CONFIG] CKPT',
                        help='optional config file, then the checkpoint (without a config: the '
                        "checkpoint's own, meta.cfg)")
    parser.add_argument('--work-dir', help='the dir to save the evaluation results '
                        '(default: work_dirs/<config name>)')
    parser.add_argument('--show', action='store_true',
                        help='also paint the predictions (PNG files, headless: same as '
                        '--show-dir with the default folder "show")')
    parser.add_argument('--show-dir', help='folder for PNGs with the projected 3D boxes and a '
                        "bird's-eye view; relative paths go under work_dir/<timestamp>/")
    parser.add_argument('--score-thr', type=float, default=None,
                        help="score threshold of the painted boxes (default: the model's "
                        'test_cfg.score_thr, the threshold it detects at)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, xxx=yyy format')
    parser.add_argument('--allow-partial-load', action='store_true',
                        help='load only the checkpoint tensors that match the model (default: '
                        'any missing/unexpected key or shape mismatch is an error)')
    parser.add_argument('--no-progress', action='store_true',
                        help='no progress bar (on stderr) over the test images')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    args.config, args.checkpoint = split_config_checkpoint(args.files)
    # LOCAL_RANK (the GPU of DDP's device_ids) and friends from torchrun / slurm / OpenMPI
    export_launcher_env(args.launcher, args.local_rank)
    return args


def build_cfg(args: argparse.Namespace) -> Config:
    """Config with the CLI applied (work dir, checkpoint, visualisation hook)."""
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {args.checkpoint}')
    cfg, _ = resolve_config(args.config, args.checkpoint, args.cfg_options)
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif args.config is None:  # the stored work_dir is the training's: not reused
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.checkpoint))[0])
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    # loaded strictly in main(); the backbone's pretrained files are not needed
    cfg.load_from = None
    cfg.resume = False
    skip_backbone_pretrained(cfg.model)

    hooks = [h for h in (cfg.get('custom_hooks', None) or [])
             if h.get('type') not in ('MonoDLEVisualizationHook', 'ProgressBarHook')]
    if args.show or args.show_dir:
        hooks.append(dict(type='MonoDLEVisualizationHook', out_dir=args.show_dir or 'show',
                          score_thr=args.score_thr))
    if not args.no_progress:
        hooks.append(dict(type='ProgressBarHook'))
    cfg.custom_hooks = hooks
    return cfg


def main(argv=None) -> dict:
    args = parse_args(argv)
    cfg = build_cfg(args)
    # MonoDLERunner (runner_type of every MonoDLE config; also for a config without one, e.g.
    # an older checkpoint's meta.cfg) prepares the distributed run and writes run_info.json
    runner = RUNNERS.build(cfg) if 'runner_type' in cfg else MonoDLERunner.from_cfg(cfg)
    load_weights_strict(runner.model, args.checkpoint,
                        args.config or f'{args.checkpoint}:meta.cfg', args.allow_partial_load,
                        runner.logger)
    runner.logger.info(f'Loaded {args.checkpoint}')
    metrics = runner.test()
    if is_main_process():
        path = osp.join(runner.log_dir, 'metrics.json')
        with open(path, 'w') as f:
            json.dump({k: float(v) if hasattr(v, '__float__') else v
                       for k, v in (metrics or {}).items()}, f, indent=2)
        runner.logger.info(f'Metrics written to {path}')
    finish_distributed(exit_process=True)  # a distributed run ends here (see its docstring)
    return metrics

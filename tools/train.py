#!/usr/bin/env python
"""Train a MonoDLE detector (mmdet3d's ``tools/train.py`` conventions).

Examples::

    python tools/train.py configs/monodle_yolo8_da3.py                 # 1 GPU (or CPU)
    tools/dist_train.sh configs/monodle_yolo8_da3.py 8                 # 8 GPUs, torchrun
    torchrun --nproc_per_node 2 tools/train.py CONFIG --launcher pytorch   # 2 CPU procs: gloo
    python tools/train.py CONFIG --resume                              # latest checkpoint
    python tools/train.py CONFIG --resume work_dirs/x/20260101_000000/epoch_3.pth

Runs land in ``work_dirs/<config name>/<timestamp>/`` (log, scalars, checkpoints);
``work_dirs/<config name>/last_checkpoint`` names the newest checkpoint for ``--resume``.

Batch and lr (design.md, "Configs"): configs carry the reference total batch
(``total_batch_size``) and its lr. On W processes each takes ``total_batch_size // W`` samples
unless ``--cfg-options train_dataloader.batch_size=B`` sets the per-process batch; when the
effective total differs from ``auto_scale_lr.base_batch_size`` the lr is scaled linearly
(``--no-scale-lr`` keeps the config lr). The effective total batch and lr are logged at start.
"""
import argparse
import logging
import os
import os.path as osp
import sys

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO_ROOT not in sys.path:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, REPO_ROOT)
# mmengine 0.10 checkpoints pickle MessageHub buffers, numpy arrays and our saved random states,
# which torch>=2.6's default `torch.load(weights_only=True)` refuses. The files loaded here are
# the ones the user names or that this training wrote; load only checkpoints you trust.
os.environ.setdefault('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')

from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.logging import print_log  # noqa: E402
from mmengine.registry import RUNNERS  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

import monodle_plugin  # noqa: E402,F401  (registers every component)
from monodle_plugin.engine.batch_lr_scaling import (  # noqa: E402
    apply_batch_plan,
    plan_batch,
    world_size_from_env,
)
from monodle_plugin.engine.cpu_distributed import finish_distributed, prepare_distributed  # noqa: E402
from monodle_plugin.engine.hooks import GlobalLossLogHook  # noqa: E402
from monodle_plugin.engine.run_info import log_run_info  # noqa: E402
from monodle_plugin.utils.da3_distill_wiring import (  # noqa: E402
    reapply_distill_switches,
    touches_distill_switches,
)
from monodle_plugin.utils.env_check import check_environment  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models '
                        '(default: work_dirs/<config name>)')
    parser.add_argument('--amp', action='store_true', default=False,
                        help='enable automatic-mixed-precision training (GPU only)')
    parser.add_argument('--sync_bn', choices=['none', 'torch', 'mmcv'], default='none',
                        help='convert BatchNorm layers to SyncBatchNorm (GPU only)')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='always scale the lr linearly with the effective total batch '
                        '(by default it is scaled only when the total differs from '
                        'auto_scale_lr.base_batch_size, which gives the same result)')
    parser.add_argument('--no-scale-lr', action='store_true',
                        help='keep the config lr even if the effective total batch differs '
                        'from the one it was tuned for')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from this checkpoint, or without a path from the latest '
                        'checkpoint of the work dir (its last_checkpoint file)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, xxx=yyy format, e.g. '
                        'train_dataloader.batch_size=4 randomness.seed=1')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    # torch.distributed.launch passes --local-rank (torch >= 2.0) or --local_rank
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if args.auto_scale_lr and args.no_scale_lr:
        parser.error('--auto-scale-lr and --no-scale-lr exclude each other')
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def build_cfg(args: argparse.Namespace) -> tuple:
    """Config with the CLI applied; returns ``(cfg, batch_plan)``."""
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config file not found: {args.config}')
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    batch_from_user = False
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
        if touches_distill_switches(args.cfg_options):
            # the DA3 pieces were built from the switches when the file was parsed
            reapply_distill_switches(cfg)
        batch_from_user = 'train_dataloader.batch_size' in args.cfg_options or (
            isinstance(args.cfg_options.get('train_dataloader'), dict)
            and 'batch_size' in args.cfg_options['train_dataloader'])

    # work_dir: CLI > config > work_dirs/<config name>; the Runner adds /<timestamp>
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])

    if args.amp:
        import torch
        if not torch.cuda.is_available():
            raise RuntimeError('--amp needs a CUDA GPU (mmengine AmpOptimWrapper); drop --amp '
                               'on CPU')
        if cfg.optim_wrapper.type == 'AmpOptimWrapper':
            print_log('AMP training is already enabled in your config.', logger='current',
                      level=logging.WARNING)
        else:
            if cfg.optim_wrapper.type != 'OptimWrapper':
                raise ValueError('--amp is only supported when optim_wrapper.type is '
                                 f'OptimWrapper, got {cfg.optim_wrapper.type}')
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'

    if args.sync_bn != 'none':
        cfg.sync_bn = args.sync_bn

    world_size = world_size_from_env(args.launcher)
    scale = True if args.auto_scale_lr else (False if args.no_scale_lr else None)
    if args.auto_scale_lr and not (cfg.get('auto_scale_lr') or cfg.get('total_batch_size')):
        raise RuntimeError('--auto-scale-lr: the config has neither auto_scale_lr.base_batch_size '
                           'nor total_batch_size')
    plan = plan_batch(cfg, world_size, batch_from_user, scale_lr=scale)
    apply_batch_plan(cfg, plan)

    # resume: a named checkpoint > the work dir's last_checkpoint
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        if not osp.isfile(args.resume):
            raise FileNotFoundError(f'--resume: checkpoint not found: {args.resume}')
        cfg.resume = True
        cfg.load_from = args.resume
    return cfg, plan


def main(argv=None) -> None:
    args = parse_args(argv)
    cfg, plan = build_cfg(args)
    backend = prepare_distributed(cfg, args.launcher)
    if cfg.get('sync_bn') and backend == 'gloo':
        raise RuntimeError('--sync_bn needs GPUs (torch SyncBatchNorm has no CPU kernel)')

    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    if runner.world_size != plan.world_size:
        raise RuntimeError(f'the launcher reported {plan.world_size} processes but the process '
                           f'group has {runner.world_size}')
    if runner.world_size > 1 and not any(isinstance(h, GlobalLossLogHook) for h in runner.hooks):
        # log the loss of the whole batch (mean over ranks, = the single-process loss)
        runner.register_hook(GlobalLossLogHook())
        runner.logger.info('GlobalLossLogHook registered: logged losses are the mean over '
                           f'{runner.world_size} ranks (the loss of the total batch).')
    log_run_info(runner, plan, backend)
    runner.train()
    finish_distributed()


if __name__ == '__main__':
    check_environment()
    main()

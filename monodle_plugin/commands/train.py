"""Train a MonoDLE detector (mmdet3d's ``tools/train.py`` conventions).

Examples::

    python tools/train.py configs/monodle_yolo8_da3.py                 # 1 GPU (or CPU)
    tools/dist_train.sh configs/monodle_yolo8_da3.py 8                 # 8 GPUs, torchrun
    torchrun --nproc_per_node 2 tools/train.py CONFIG --launcher pytorch   # 2 CPU procs: gloo
    python tools/train.py CONFIG --resume                              # latest checkpoint
    python tools/train.py CONFIG --resume work_dirs/x/20260101_000000/epoch_3.pth

Runs land in ``work_dirs/<config name>/<timestamp>/`` (log, scalars, checkpoints);
``work_dirs/<config name>/last_checkpoint`` names the newest checkpoint for ``--resume``.

Batch, lr and the distillation switches are applied by the config's runner
(``runner_type='MonoDLERunner'``), so this tool and mmdet3d's stock ``tools/train.py`` /
``mim train mmdet3d`` train the same way: each of W processes takes
``total_batch_size // W`` samples unless ``--cfg-options train_dataloader.batch_size=B`` sets
the per-process batch, and the lr follows ``auto_scale_lr`` (x total / 16;
``--cfg-options auto_scale_lr.enable=False`` keeps the config lr). The effective total batch
and lr are logged at start (design.md, "Batch and lr").
"""
import argparse
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from ..engine.cpu_distributed import (
    export_launcher_env,
    finish_distributed,
)
from ..utils.checkpoint_loading import allow_checkpoint_globals
from ..utils.config_checks import (
    check_cfg_option_keys,
    check_resume_target,
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models '
                        '(default: work_dirs/<config name>)')
    parser.add_argument('--amp', action='store_true', default=False,
                        help='mixed precision: float16 autocast + dynamic loss scaling on CUDA '
                        '(AmpOptimWrapper), bfloat16 autocast on CPU (BF16OptimWrapper)')
    parser.add_argument('--sync_bn', choices=['none', 'torch', 'mmcv'], default='none',
                        help='convert BatchNorm layers to SyncBatchNorm (GPU only)')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='enable auto_scale_lr (the MonoDLE configs already do; '
                        '--cfg-options auto_scale_lr.enable=False keeps the config lr)')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from this checkpoint, or without a path from the latest '
                        'checkpoint of the work dir (its last_checkpoint file)')
    parser.add_argument('--progress', action='store_true',
                        help='a progress bar (stderr) over the training iterations and the '
                        'validation images; with stdout sent to a file, the terminal shows '
                        'only the bar and errors (tools/run_demo.sh does that)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, xxx=yyy format, e.g. '
                        'train_dataloader.batch_size=4 randomness.seed=1')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    # torch.distributed.launch passes --local-rank (torch >= 2.0) or --local_rank
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    # LOCAL_RANK (the GPU of DDP's device_ids) and friends from torchrun / slurm / OpenMPI
    export_launcher_env(args.launcher, args.local_rank)
    return args


def build_cfg(args: argparse.Namespace):
    """Config with the CLI applied, as mmdet3d's tools/train.py builds it."""
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config file not found: {args.config}')
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        check_cfg_option_keys(cfg, args.cfg_options, args.config)
        cfg.merge_from_dict(args.cfg_options)

    # work_dir: CLI > config > work_dirs/<config name>; the Runner adds /<timestamp>
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])

    if args.amp:  # fp16 + loss scaling on CUDA, bf16 on CPU (monodle_plugin.engine)
        from ..engine.optim_wrappers import apply_amp
        print_log(f'--amp: {apply_amp(cfg)}', logger='current')

    if args.sync_bn != 'none':
        cfg.sync_bn = args.sync_bn

    if args.progress:
        cfg.custom_hooks = [h for h in (cfg.get('custom_hooks', None) or [])
                            if h.get('type') != 'ProgressBarHook']
        cfg.custom_hooks.append(dict(type='ProgressBarHook', phases=['train', 'val', 'test']))

    if args.auto_scale_lr:
        if not ('auto_scale_lr' in cfg and 'enable' in cfg.auto_scale_lr
                and 'base_batch_size' in cfg.auto_scale_lr):
            raise RuntimeError('--auto-scale-lr: the config has no auto_scale_lr.enable / '
                               'auto_scale_lr.base_batch_size')
        cfg.auto_scale_lr.enable = True

    # resume: a named checkpoint > the work dir's last_checkpoint
    # (nothing to resume is an error, docs/en/errors.md)
    if args.resume == 'auto':
        check_resume_target(cfg.work_dir)
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        check_resume_target(cfg.work_dir, args.resume)
        cfg.resume = True
        cfg.load_from = args.resume
    return cfg


def main(argv=None) -> None:
    args = parse_args(argv)
    cfg = build_cfg(args)
    # MonoDLERunner (runner_type of every MonoDLE config) applies the batch rule and the
    # distillation switches and logs the effective batch / lr
    allow_checkpoint_globals()  # --resume / load_from read our checkpoints with weights_only=True
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    if cfg.get('sync_bn') and getattr(runner, 'dist_backend', None) == 'gloo':
        raise RuntimeError('--sync_bn needs GPUs (torch SyncBatchNorm has no CPU kernel)')
    runner.train()
    finish_distributed(exit_process=True)  # a distributed run ends here (see its docstring)

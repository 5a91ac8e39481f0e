"""Distributed set-up that also works without CUDA (gloo on CPU processes).

mmengine 0.10's ``init_dist`` calls ``torch.cuda.set_device`` unconditionally and its Runner
wraps the model in DDP with ``device_ids=[LOCAL_RANK]``; both fail on a CPU-only machine. When
CUDA is absent we therefore (1) switch ``env_cfg.dist_cfg.backend`` to ``gloo``, (2) create the
process group ourselves (the Runner then skips ``init_dist``) and (3) wrap the model with
``device_ids=None``. With CUDA nothing changes: nccl and mmengine's own initialisation.
"""
from __future__ import annotations

import os
import subprocess
from datetime import timedelta

import torch
import torch.distributed as dist

DEFAULT_PORT = '29500'


def _export_launcher_env(launcher: str) -> None:
    """Fill RANK / WORLD_SIZE / LOCAL_RANK / MASTER_* from slurm or OpenMPI variables."""
    if launcher == 'slurm':
        os.environ.setdefault('RANK', os.environ['SLURM_PROCID'])
        os.environ.setdefault('WORLD_SIZE', os.environ['SLURM_NTASKS'])
        os.environ.setdefault('LOCAL_RANK', os.environ.get('SLURM_LOCALID', '0'))
        if 'MASTER_ADDR' not in os.environ:
            node_list = os.environ['SLURM_NODELIST']
            os.environ['MASTER_ADDR'] = subprocess.getoutput(
                f'scontrol show hostname {node_list} | head -n1')
    elif launcher == 'mpi':
        os.environ.setdefault('RANK', os.environ['OMPI_COMM_WORLD_RANK'])
        os.environ.setdefault('WORLD_SIZE', os.environ['OMPI_COMM_WORLD_SIZE'])
        os.environ.setdefault('LOCAL_RANK', os.environ.get('OMPI_COMM_WORLD_LOCAL_RANK', '0'))
        os.environ.setdefault('MASTER_ADDR', '127.0.0.1')
    os.environ.setdefault('MASTER_PORT', DEFAULT_PORT)


def prepare_distributed(cfg, launcher: str) -> str:
    """Choose the backend and, on CPU, initialise the process group.

    Returns:
        The backend: ``'none'`` (not distributed), ``'nccl'`` (or the config's) or ``'gloo'``.

    Args:
        cfg: mmengine ``Config``; ``env_cfg.dist_cfg.backend`` and ``model_wrapper_cfg`` are
            updated in place when CUDA is absent.
        launcher: ``'none'``, ``'pytorch'``, ``'slurm'`` or ``'mpi'``.
    """
    env_cfg = cfg.setdefault('env_cfg', {})
    dist_cfg = env_cfg.setdefault('dist_cfg', {})
    if launcher == 'none':
        return 'none'
    if torch.cuda.is_available():
        return dist_cfg.setdefault('backend', 'nccl')
    dist_cfg['backend'] = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg', None) or {}
    wrapper = dict(wrapper)
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    wrapper['device_ids'] = None  # CPU modules take no device ids
    wrapper.setdefault('broadcast_buffers', False)
    wrapper.setdefault('find_unused_parameters', cfg.get('find_unused_parameters', False))
    cfg.model_wrapper_cfg = wrapper
    if not dist.is_initialized():
        _export_launcher_env(launcher)
        timeout = dist_cfg.get('timeout', 1800)
        dist.init_process_group(backend='gloo', timeout=timedelta(seconds=timeout))
    return 'gloo'


def finish_distributed(exit_process: bool = False) -> None:
    """Wait for every rank, then tear the process group down (no-op when not distributed).

    mmengine leaves the group open at exit. With gloo, a rank that exits while another is
    still busy (e.g. rank 0 writing the last checkpoint) can abort in gloo's destructor
    ('terminate called without an active exception', SIGABRT), failing a finished run.
    The barrier and ``destroy_process_group`` make that rare, not impossible: under CPU load
    (torch 2.14, 2 ranks on 2 busy cores) a rank still aborted in the interpreter's teardown,
    after all Python code had run, in about 1 run of 5. With ``exit_process=True`` (the entry
    points, once their work is done and written) each rank of a distributed run flushes its
    logs and streams and leaves with ``os._exit(0)``, skipping that teardown.
    """
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
        if exit_process:
            import logging
            import os
            import sys
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)

"""Distributed set-up that also works without CUDA (gloo on CPU processes).

mmengine 0.10's ``init_dist`` calls ``torch.cuda.set_device`` unconditionally and its Runner
wraps the model in DDP with ``device_ids=[LOCAL_RANK]``; both fail on a CPU-only machine. When
CUDA is absent we therefore (1) switch ``env_cfg.dist_cfg.backend`` to ``gloo``, (2) create the
process group ourselves (the Runner then skips ``init_dist``) and (3) wrap the model with
``device_ids=None``. With CUDA: nccl and mmengine's own initialisation, after
:func:`export_launcher_env` (called by the tools, and here for ``--launcher mpi``) has set
``LOCAL_RANK`` to the GPU mmengine picks. On both, ``model_wrapper_cfg`` spells out mmengine's
DDP defaults with the buffer keyword the installed torch takes (:func:`ddp_buffer_kwargs`).
"""
from __future__ import annotations

import inspect
import os
import subprocess
from datetime import timedelta

import torch
import torch.distributed as dist

DEFAULT_PORT = '29500'


#: OpenMPI's variables: mmengine's ``init_dist('mpi')`` reads these (and no other MPI's)
OMPI_ENV = dict(rank='OMPI_COMM_WORLD_RANK', world_size='OMPI_COMM_WORLD_SIZE',
                local_rank='OMPI_COMM_WORLD_LOCAL_RANK', local_size='OMPI_COMM_WORLD_LOCAL_SIZE')


def export_launcher_env(launcher: str, local_rank: int = 0) -> None:
    """Set torch.distributed's ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` / ``MASTER_ADDR`` /
    ``MASTER_PORT`` from the launcher's variables, before the Runner is built.

    mmengine places the model on the GPU its ``init_dist`` selects and wraps DDP with
    ``device_ids=[int(os.environ['LOCAL_RANK'])]``: the two must name the same GPU.

    Args:
        launcher: ``'none'`` / ``'pytorch'``: ``LOCAL_RANK`` defaults to ``local_rank`` (the
            ``--local-rank`` of ``torch.distributed.launch``; torchrun sets it itself).
            ``'slurm'``: defaults from ``SLURM_PROCID`` / ``SLURM_NTASKS`` / ``SLURM_LOCALID`` and
            the first host of ``SLURM_NODELIST`` (on GPUs mmengine then sets ``LOCAL_RANK =
            SLURM_PROCID % GPUs`` itself). ``'mpi'`` (OpenMPI's ``mpirun``): ``RANK``,
            ``WORLD_SIZE`` and ``LOCAL_RANK`` from ``OMPI_COMM_WORLD_*`` (always: mmengine puts
            rank r on GPU ``OMPI_COMM_WORLD_LOCAL_RANK``), ``MASTER_ADDR`` 127.0.0.1 when all
            ranks are on one node.
        local_rank: the tool's ``--local-rank`` value.

    Raises:
        UserError: ``--launcher mpi`` without OpenMPI's variables, or on several nodes without
            ``MASTER_ADDR``.
    """
    if launcher == 'slurm':
        os.environ.setdefault('RANK', os.environ['SLURM_PROCID'])
        os.environ.setdefault('WORLD_SIZE', os.environ['SLURM_NTASKS'])
        os.environ.setdefault('LOCAL_RANK', os.environ.get('SLURM_LOCALID', '0'))
        if 'MASTER_ADDR' not in os.environ:
            node_list = os.environ['SLURM_NODELIST']
            os.environ['MASTER_ADDR'] = subprocess.getoutput(
                f'scontrol show hostname {node_list} | head -n1')
    elif launcher == 'mpi':
        from ..utils.cli import UserError
        missing = [v for k, v in OMPI_ENV.items() if k != 'local_size' and v not in os.environ]
        if missing:
            raise UserError(f'--launcher mpi: {", ".join(missing)} not set; start the tool with '
                            "OpenMPI's mpirun (mmengine reads OpenMPI's variables only), or "
                            'use torchrun / tools/dist_train.sh (--launcher pytorch)')
        os.environ['RANK'] = os.environ[OMPI_ENV['rank']]
        os.environ['WORLD_SIZE'] = os.environ[OMPI_ENV['world_size']]
        os.environ['LOCAL_RANK'] = os.environ[OMPI_ENV['local_rank']]
        if 'MASTER_ADDR' not in os.environ:
            local_size = os.environ.get(OMPI_ENV['local_size'], os.environ['WORLD_SIZE'])
            if local_size != os.environ['WORLD_SIZE']:
                raise UserError(f'--launcher mpi on several nodes ({local_size} of '
                                f'{os.environ["WORLD_SIZE"]} ranks on this one): set MASTER_ADDR '
                                "to the first node's address (mpirun -x MASTER_ADDR=HOST)")
            os.environ['MASTER_ADDR'] = '127.0.0.1'
    else:
        os.environ.setdefault('LOCAL_RANK', str(local_rank))
    if launcher != 'none':
        os.environ.setdefault('MASTER_PORT', DEFAULT_PORT)


def ddp_buffer_kwargs() -> dict:
    """DDP keyword for mmengine's default "no buffer broadcast at each forward".

    mmengine passes ``broadcast_buffers=False``; torch >= 2.13 deprecates that argument for
    ``forward_sync_buffers`` and every rank prints a ``FutureWarning``. We pass what the
    installed torch takes. (``forward_sync_buffers=False`` still broadcasts buffers once, at
    wrapping, from rank 0: every rank builds the same model, so nothing changes.)
    """
    from torch.nn.parallel import DistributedDataParallel
    if 'forward_sync_buffers' in inspect.signature(DistributedDataParallel.__init__).parameters:
        return dict(forward_sync_buffers=False)
    return dict(broadcast_buffers=False)


def prepare_distributed(cfg, launcher: str) -> str:
    """Choose the backend, fill the DDP wrapper config and, on CPU, initialise the process group.

    Returns:
        The backend: ``'none'`` (not distributed), ``'nccl'`` (or the config's) or ``'gloo'``.

    Args:
        cfg: mmengine ``Config``, updated in place: ``model_wrapper_cfg`` gets mmengine's
            defaults written out (``MMDistributedDataParallel``, ``find_unused_parameters``
            from the config, no buffer broadcast at each forward: :func:`ddp_buffer_kwargs`)
            where the config does not set them; without CUDA ``env_cfg.dist_cfg.backend`` is
            ``'gloo'`` and ``model_wrapper_cfg.device_ids`` None.
        launcher: ``'none'``, ``'pytorch'``, ``'slurm'`` or ``'mpi'``.
    """
    env_cfg = cfg.setdefault('env_cfg', {})
    dist_cfg = env_cfg.setdefault('dist_cfg', {})
    if launcher == 'none':
        return 'none'
    if launcher == 'mpi':  # mmdet3d's stock tools set LOCAL_RANK=0 on every rank
        export_launcher_env(launcher)
    wrapper = dict(cfg.get('model_wrapper_cfg', None) or {})
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    if not {'broadcast_buffers', 'forward_sync_buffers'} & set(wrapper):
        wrapper.update(ddp_buffer_kwargs())
    wrapper.setdefault('find_unused_parameters', cfg.get('find_unused_parameters', False))
    cuda = torch.cuda.is_available()
    if not cuda:
        wrapper['device_ids'] = None  # CPU modules take no device ids
    cfg.model_wrapper_cfg = wrapper
    if cuda:
        return dist_cfg.setdefault('backend', 'nccl')
    dist_cfg['backend'] = 'gloo'
    if not dist.is_initialized():
        export_launcher_env(launcher)
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

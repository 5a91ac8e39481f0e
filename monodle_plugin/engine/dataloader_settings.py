"""``num_workers='auto'`` and ``pin_memory='auto'`` in the dataloaders, decided per process.

The dataset base config (configs/_base_/datasets/kitti_mono3d_monodle.py) writes both as
``'auto'``; :func:`resolve_dataloader_settings` (called by ``MonoDLERunner.from_cfg``, so under
mmdet3d's stock tools too, and by tools that build a dataloader themselves) replaces them before
any dataloader is built:

* ``pin_memory='auto'``: True when CUDA is available (batches copied to the GPU from pinned
  memory), else False (torch warns about pinned memory without an accelerator);
* ``num_workers='auto'``: with CUDA, the CPU cores of this process's share of the node minus
  one (the process itself), at most :data:`WORKER_CAPS` (4 train, 2 val / test): 8 processes
  on 16 cores get 1 + 1 workers each, not 4 + 2 (48 processes); 0 workers when one core is
  all there is (``persistent_workers`` then off: torch refuses it without workers). Without
  CUDA, the caps themselves, as before: the worker count takes part in mmengine's per-worker
  seeds (``seed + worker_id + rank * num_workers``), so CPU runs keep their results.

An integer / bool given in a config or ``--cfg-options`` is kept as given.
"""
from __future__ import annotations

import os
import re
from typing import Optional

import torch

#: the most workers ``'auto'`` gives a process, per dataloader (the configs' earlier values)
WORKER_CAPS = {'train_dataloader': 4, 'val_dataloader': 2, 'test_dataloader': 2}


def _slurm_tasks_on_this_node() -> Optional[int]:
    """Tasks of this job step on this node, from ``SLURM_TASKS_PER_NODE`` ('2(x3),1')."""
    spec = os.environ.get('SLURM_STEP_TASKS_PER_NODE') or os.environ.get('SLURM_TASKS_PER_NODE')
    if not spec:
        return None
    counts = []
    for part in spec.split(','):
        match = re.fullmatch(r'(\d+)(?:\(x(\d+)\))?', part.strip())
        if match is None:
            return None
        counts += [int(match.group(1))] * int(match.group(2) or 1)
    node = int(os.environ.get('SLURM_NODEID', '0'))
    return counts[node] if node < len(counts) else None


def local_world_size(launcher: str) -> int:
    """Processes of this run on this node (1 when not distributed).

    Args:
        launcher: ``'none'``, ``'pytorch'`` (torchrun's ``LOCAL_WORLD_SIZE``), ``'slurm'``
            (``SLURM_NTASKS_PER_NODE`` / ``SLURM_TASKS_PER_NODE``) or ``'mpi'``
            (``OMPI_COMM_WORLD_LOCAL_SIZE``); without the variable, ``WORLD_SIZE`` (all
            processes on one node: the fewest cores per process).
    """
    found: Optional[int] = None
    if launcher == 'pytorch':
        found = int(os.environ.get('LOCAL_WORLD_SIZE', 0)) or None
    elif launcher == 'slurm':
        found = int(os.environ.get('SLURM_NTASKS_PER_NODE', 0)) or _slurm_tasks_on_this_node()
    elif launcher == 'mpi':
        found = int(os.environ.get('OMPI_COMM_WORLD_LOCAL_SIZE', 0)) or None
    elif launcher == 'none':
        return 1
    if found is None:
        found = int(os.environ.get('WORLD_SIZE', os.environ.get('SLURM_NTASKS', 1)))
    return max(1, found)


def cores_per_process(local_processes: int) -> int:
    """CPU cores for one of ``local_processes`` processes on this node (at least 1).

    The cores this process may run on (``os.sched_getaffinity``: a slurm task bound to its
    cores sees only those) and the node's cores shared by its processes, whichever is fewer.
    """
    node = os.cpu_count() or 1
    try:
        allowed = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        allowed = node
    return max(1, min(allowed, node // max(1, local_processes)))


def resolve_dataloader_settings(cfg, launcher: str) -> Optional[str]:
    """Replace ``'auto'`` in ``num_workers`` / ``pin_memory`` of the dataloaders of ``cfg``.

    Args:
        cfg: mmengine ``Config`` (changed in place); ``train_dataloader``, ``val_dataloader``,
            ``test_dataloader``, each optional (None or absent: skipped).
        launcher: as ``--launcher``: ``'none'``, ``'pytorch'``, ``'slurm'`` or ``'mpi'``.

    Returns:
        One line for the log naming what ``'auto'`` became, or None when nothing was ``'auto'``.
    """
    cuda = torch.cuda.is_available()
    local = local_world_size(launcher)
    cores = cores_per_process(local)
    chosen = []
    for key, cap in WORKER_CAPS.items():
        loader = cfg.get(key, None)
        if not loader:
            continue
        parts = []
        if loader.get('num_workers', None) == 'auto':
            workers = min(cap, cores - 1) if cuda else cap
            loader['num_workers'] = workers
            if workers == 0:
                loader['persistent_workers'] = False
            parts.append(f'{workers} worker{"s" * (workers != 1)}')
        if loader.get('pin_memory', None) == 'auto':
            loader['pin_memory'] = cuda
            parts.append(f'pin_memory {cuda}')
        if parts:
            chosen.append(f'{key.split("_")[0]} {", ".join(parts)}')
    if not chosen:
        return None
    caps = ', '.join(f'{key.split("_")[0]} {cap}' for key, cap in WORKER_CAPS.items())
    where = (f'CUDA, {local} process(es) on this node, {cores} core(s) each' if cuda else
             f'no CUDA: workers {caps}, as before')
    return f'Dataloaders, auto settings ({where}): ' + '; '.join(chosen) + '.'

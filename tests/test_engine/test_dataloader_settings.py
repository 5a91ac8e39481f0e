"""num_workers='auto' / pin_memory='auto' (monodle_plugin/engine/dataloader_settings.py): sized
to the cores per GPU process with CUDA, the earlier fixed counts and no pinned memory without
(the CUDA cases with a faked torch.cuda.is_available and core counts)."""
import os
import warnings

import pytest
import torch
from mmengine.config import Config

from monodle_plugin.engine import dataloader_settings as ds

BASE = os.path.join(os.path.dirname(__file__), '..', '..', 'configs', '_base_', 'datasets',
                    'kitti_mono3d_monodle.py')


def _cfg():
    cfg = Config.fromfile(BASE)
    return cfg


@pytest.fixture
def node(monkeypatch):
    """A node with ``cores`` cores (all allowed to this process) and CUDA on or off."""
    for var in ('LOCAL_WORLD_SIZE', 'WORLD_SIZE', 'SLURM_NTASKS_PER_NODE', 'SLURM_NTASKS',
                'SLURM_TASKS_PER_NODE', 'SLURM_STEP_TASKS_PER_NODE', 'SLURM_NODEID',
                'OMPI_COMM_WORLD_LOCAL_SIZE'):
        monkeypatch.delenv(var, raising=False)

    def make(cores: int, cuda: bool, allowed: int | None = None):
        monkeypatch.setattr(ds.os, 'cpu_count', lambda: cores)
        monkeypatch.setattr(ds.os, 'sched_getaffinity',
                            lambda pid: set(range(allowed or cores)), raising=False)
        monkeypatch.setattr(ds.torch.cuda, 'is_available', lambda: cuda)
    return make


def _settings(cfg):
    return [(cfg[k].num_workers, cfg[k].get('persistent_workers'), cfg[k].pin_memory)
            for k in ('train_dataloader', 'val_dataloader', 'test_dataloader')]


def test_eight_gpus_on_sixteen_cores_get_one_worker_each(node, monkeypatch):
    """The issue's node: 8 ranks x (4 + 2) persistent workers were 48 processes on 16 cores."""
    node(cores=16, cuda=True)
    monkeypatch.setenv('LOCAL_WORLD_SIZE', '8')
    monkeypatch.setenv('WORLD_SIZE', '16')  # 2 nodes
    cfg = _cfg()
    line = ds.resolve_dataloader_settings(cfg, 'pytorch')
    assert _settings(cfg) == [(1, True, True)] * 3
    assert line.startswith('Dataloaders, auto settings (CUDA, 8 process(es) on this node, '
                           '2 core(s) each): train 1 worker, pin_memory True; val 1 worker')


def test_many_cores_reach_the_caps_and_one_core_means_no_workers(node, monkeypatch):
    node(cores=128, cuda=True)
    monkeypatch.setenv('LOCAL_WORLD_SIZE', '8')
    cfg = _cfg()
    ds.resolve_dataloader_settings(cfg, 'pytorch')
    assert _settings(cfg) == [(4, True, True), (2, True, True), (2, True, True)]
    node(cores=8, cuda=True)
    cfg = _cfg()
    ds.resolve_dataloader_settings(cfg, 'pytorch')
    assert _settings(cfg) == [(0, False, True)] * 3  # torch refuses persistent without workers


def test_slurm_and_mpi_processes_per_node(node, monkeypatch):
    node(cores=32, cuda=True, allowed=3)  # a slurm task bound to 3 cores
    monkeypatch.setenv('SLURM_TASKS_PER_NODE', '4(x2),2')
    monkeypatch.setenv('SLURM_NODEID', '2')
    assert ds.local_world_size('slurm') == 2
    assert ds.cores_per_process(2) == 3
    cfg = _cfg()
    ds.resolve_dataloader_settings(cfg, 'slurm')
    assert _settings(cfg)[0] == (2, True, True)
    monkeypatch.setenv('OMPI_COMM_WORLD_LOCAL_SIZE', '4')
    assert ds.local_world_size('mpi') == 4
    assert ds.local_world_size('none') == 1


def test_cpu_keeps_the_earlier_counts_and_pins_nothing(node):
    """Without CUDA: 4 / 2 workers whatever the cores (the worker count is part of mmengine's
    per-worker seeds: CPU results stay), pin_memory False, so torch does not warn."""
    node(cores=2, cuda=False)
    cfg = _cfg()
    line = ds.resolve_dataloader_settings(cfg, 'none')
    assert _settings(cfg) == [(4, True, False), (2, True, False), (2, True, False)]
    assert line.startswith('Dataloaders, auto settings (no CUDA')
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        loader = torch.utils.data.DataLoader(list(range(4)), batch_size=2,
                                             pin_memory=cfg.train_dataloader.pin_memory)
        assert [b.tolist() for b in loader] == [[0, 1], [2, 3]]


def test_values_given_are_kept(node):
    node(cores=16, cuda=True)
    cfg = _cfg()
    cfg.merge_from_dict({'train_dataloader.num_workers': 6, 'train_dataloader.pin_memory': False,
                         'val_dataloader.num_workers': 3, 'val_dataloader.pin_memory': True})
    cfg.test_dataloader = None  # a config without test loader
    line = ds.resolve_dataloader_settings(cfg, 'none')
    assert [(cfg[k].num_workers, cfg[k].pin_memory)
            for k in ('train_dataloader', 'val_dataloader')] == [(6, False), (3, True)]
    assert line is None

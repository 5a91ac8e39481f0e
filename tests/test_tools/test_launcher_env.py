"""Launcher variables (--launcher mpi / slurm / pytorch) and the DDP wrapper config, as the tools
and MonoDLERunner set them before mmengine initialises the process group (faked environments)."""
import pytest
from mmengine.config import Config
from tool_helpers import load_tool

from monodle_plugin.engine.cpu_distributed import export_launcher_env, prepare_distributed
from monodle_plugin.utils.cli import UserError

DIST_VARS = ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT',
             'OMPI_COMM_WORLD_RANK', 'OMPI_COMM_WORLD_SIZE', 'OMPI_COMM_WORLD_LOCAL_RANK',
             'OMPI_COMM_WORLD_LOCAL_SIZE', 'MPI_LOCALRANKID', 'PMI_RANK', 'PMI_SIZE')


@pytest.fixture
def env(monkeypatch):
    """A clean distributed environment; returns ``setenv(**vars)``."""
    for var in DIST_VARS:
        monkeypatch.delenv(var, raising=False)

    def setenv(**values):
        for k, v in values.items():
            monkeypatch.setenv(k, str(v))
    return setenv


def _ompi(setenv, rank, size, local_rank, local_size):
    setenv(OMPI_COMM_WORLD_RANK=rank, OMPI_COMM_WORLD_SIZE=size,
           OMPI_COMM_WORLD_LOCAL_RANK=local_rank, OMPI_COMM_WORLD_LOCAL_SIZE=local_size)


def _dist_env():
    import os
    return {k: os.environ.get(k) for k in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR',
                                           'MASTER_PORT')}


def test_mpi_one_node_rank_3_of_4(env):
    _ompi(env, rank=3, size=4, local_rank=3, local_size=4)
    env(LOCAL_RANK=0)  # what the tools used to set on every rank: the MPI value wins
    export_launcher_env('mpi')
    assert _dist_env() == dict(RANK='3', WORLD_SIZE='4', LOCAL_RANK='3',
                               MASTER_ADDR='127.0.0.1', MASTER_PORT='29500')


def test_mpi_several_nodes_needs_master_addr(env):
    _ompi(env, rank=5, size=8, local_rank=1, local_size=4)  # second node of two
    with pytest.raises(UserError, match='several nodes.*MASTER_ADDR'):
        export_launcher_env('mpi')
    env(MASTER_ADDR='node0', MASTER_PORT=1234)
    export_launcher_env('mpi')
    assert _dist_env() == dict(RANK='5', WORLD_SIZE='8', LOCAL_RANK='1', MASTER_ADDR='node0',
                               MASTER_PORT='1234')


def test_mpi_without_openmpi_variables_says_so(env):
    env(PMI_RANK=0, PMI_SIZE=2, MPI_LOCALRANKID=0)  # MPICH / Intel MPI: mmengine cannot use it
    with pytest.raises(UserError, match="OMPI_COMM_WORLD_RANK.*OpenMPI's mpirun"):
        export_launcher_env('mpi')


@pytest.mark.parametrize('tool', ['train', 'test'])
def test_tools_take_the_local_rank_from_mpi(env, tool):
    _ompi(env, rank=1, size=2, local_rank=1, local_size=2)
    args = ['cfg.py'] + (['ckpt.pth'] if tool == 'test' else []) + ['--launcher', 'mpi']
    load_tool(tool).parse_args(args)
    assert _dist_env()['LOCAL_RANK'] == '1' and _dist_env()['RANK'] == '1'


def test_torchrun_and_single_process_keep_their_local_rank(env):
    export_launcher_env('none', local_rank=2)  # torch.distributed.launch --local-rank 2
    assert _dist_env()['LOCAL_RANK'] == '2'
    env(LOCAL_RANK=1, RANK=1, WORLD_SIZE=2)  # torchrun's
    export_launcher_env('pytorch', local_rank=0)
    assert _dist_env()['LOCAL_RANK'] == '1'


def test_runner_fixes_mpi_local_rank_on_gpus(env, monkeypatch):
    """On GPUs under mmdet3d's stock tools (LOCAL_RANK=0 everywhere) MonoDLERunner's
    prepare_distributed sets LOCAL_RANK for mpi; the wrapper config spells out mmengine's DDP
    defaults (device_ids: mmengine adds [LOCAL_RANK])."""
    monkeypatch.setattr('torch.cuda.is_available', lambda: True)
    _ompi(env, rank=1, size=2, local_rank=1, local_size=2)
    env(LOCAL_RANK=0)
    cfg = Config(dict(find_unused_parameters=True))
    assert prepare_distributed(cfg, 'mpi') == 'nccl'
    assert _dist_env()['LOCAL_RANK'] == '1'
    assert cfg.model_wrapper_cfg.type == 'MMDistributedDataParallel'
    assert cfg.model_wrapper_cfg.find_unused_parameters is True
    assert 'device_ids' not in cfg.model_wrapper_cfg
    cfg = Config(dict(model_wrapper_cfg=dict(broadcast_buffers=True)))  # a config's own choice
    prepare_distributed(cfg, 'mpi')
    assert cfg.model_wrapper_cfg.broadcast_buffers is True
    assert 'forward_sync_buffers' not in cfg.model_wrapper_cfg


def test_ddp_wrapper_cfg_wraps_without_future_warning(single_process_group, monkeypatch):
    """The wrapper config builds mmengine's DDP (one gloo process) without torch's
    broadcast_buffers FutureWarning and without broadcasting buffers at each forward."""
    import warnings

    import torch
    from mmengine.registry import MODEL_WRAPPERS
    monkeypatch.setattr('torch.cuda.is_available', lambda: False)
    cfg = Config()
    prepare_distributed(cfg, 'pytorch')  # the group exists: only the configs are filled
    with warnings.catch_warnings():
        warnings.simplefilter('error', FutureWarning)
        ddp = MODEL_WRAPPERS.build(cfg.model_wrapper_cfg,
                                   default_args=dict(module=torch.nn.BatchNorm1d(2)))
    assert ddp.broadcast_buffers is False  # torch >= 2.13: forward_sync_buffers' alias

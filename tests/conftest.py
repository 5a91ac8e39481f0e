"""Suite-wide fixtures.

The suite tests the CPU route, on a GPU machine as on a CPU one: the GPUs are hidden
(``CUDA_VISIBLE_DEVICES=``) for this process and everything it starts (tool subprocesses,
torchrun, ``mp.spawn``), before anything initialises CUDA. Otherwise the 2-process runs would
pick nccl (one GPU: "invalid device ordinal"; two: not the gloo run they check).
"""
import os

import pytest


def hide_gpus(env) -> None:
    """Make CUDA see no device in the processes that use ``env`` (``os.environ`` or a dict)."""
    env['CUDA_VISIBLE_DEVICES'] = ''


hide_gpus(os.environ)

import torch  # noqa: E402

if torch.cuda.is_available():  # CUDA was initialised before this file ran
    raise pytest.UsageError('tests/conftest.py: CUDA was initialised before the GPUs could be '
                            'hidden; run the suite as CUDA_VISIBLE_DEVICES= python -m pytest')


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread per test: the suite runs two pytest workers on two cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def single_process_group(tmp_path):
    """A one-process gloo process group (world size 1) for the duration of a test: what
    mmcv's SyncBatchNorm or a DDP wrapper need to be built in-process."""
    import torch.distributed as dist
    dist.init_process_group('gloo', init_method=f'file://{tmp_path}/process_group', rank=0,
                            world_size=1)
    yield
    dist.destroy_process_group()

"""Suite-wide fixtures.

The suite tests the CPU route, on a GPU machine as on a CPU one: the GPUs are hidden
(``CUDA_VISIBLE_DEVICES=``) for this process and everything it starts (tool subprocesses,
torchrun, ``mp.spawn``), before anything initialises CUDA. Otherwise the 2-process runs would
pick nccl (one GPU: "invalid device ordinal"; two: not the gloo run they check).
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest


def hide_gpus(env) -> None:
    """Make CUDA see no device in the processes that use ``env`` (``os.environ`` or a dict)."""
    env['CUDA_VISIBLE_DEVICES'] = ''


hide_gpus(os.environ)

import torch  # noqa: E402

if torch.cuda.is_available():  # CUDA was initialised before this file ran
    raise pytest.UsageError('tests/conftest.py: CUDA was initialised before the GPUs could be '
                            'hidden; run the suite as CUDA_VISIBLE_DEVICES= python -m pytest')

ROOT = Path(__file__).resolve().parents[1]
#: The fit recipe at test size (2 kitti_mini frames, 320 x 96, 400 iterations): see
#: tests/test_tools/test_fit_kitti_mini.py.
FIT_CONFIG = 'tests/test_tools/configs/fit_yolo8_kitti_mini.py'


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


@pytest.fixture(scope='session')
def fit_work_dir(tmp_path_factory) -> Path:
    """Work dir of ``tools/train.py`` on :data:`FIT_CONFIG` (holds ``last_checkpoint``), trained
    once per test run (about 130 s of CPU on one thread) for every test that needs a fitted
    model. pytest-xdist workers share it: the first to arrive trains under a file lock in the
    run's common temporary folder, the others wait and reuse it."""
    from filelock import FileLock  # a dependency of torch

    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get('PYTEST_XDIST_WORKER') else base
    work = root / 'fit_yolo8_kitti_mini'
    with FileLock(str(root / 'fit_yolo8_kitti_mini.lock')):
        if not (work / 'last_checkpoint').is_file():
            env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1',
                       PYTHONUNBUFFERED='1')
            env.pop('WORLD_SIZE', None)
            proc = subprocess.run(
                [sys.executable, 'tools/train.py', FIT_CONFIG, '--work-dir', str(work),
                 '--cfg-options', 'train_cfg.val_begin=1000000'], cwd=ROOT, env=env,
                capture_output=True, text=True, timeout=900)
            if proc.returncode != 0:
                pytest.fail(f'training {FIT_CONFIG} exited with {proc.returncode}:\n'
                            f'{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}')
    return work

"""Suite-wide fixtures."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

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

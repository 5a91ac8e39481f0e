"""`make env`'s decisions about mmcv's ops, without a GPU and without building anything.

``tools/env/build_mmcv.sh --plan`` prints the wheel-cache key, the build environment and what
it would do (keep / install / build) and stops; ``tools/env/setup_env.sh --stamp-hash`` prints
the stamp's hash. A stand-in ``torch`` package loads the real torch, then fakes its CUDA version
and the visible GPUs (their compute capabilities), so the GPU-machine cases run on any CPU.
The wheel cache is a temporary folder (``MONODLE_CACHE``).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

FAKE_TORCH = '''
"""Loads the real torch, then fakes torch.version.cuda and the visible GPUs."""
import os
import sys

_here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _here]
del sys.modules['torch']
import torch  # noqa: E402  the real one; the importer gets it from sys.modules

_caps = [tuple(int(x) for x in c.split('.')) for c in os.environ['FAKE_GPUS'].split()]
torch.version.cuda = os.environ['FAKE_TORCH_CUDA'] or None
torch.cuda.is_available = lambda: bool(_caps)
torch.cuda.device_count = lambda: len(_caps)
torch.cuda.get_device_capability = lambda i=0: _caps[i]
'''


def _env(tmp_path: Path, gpus: str = '', torch_cuda: str = '13.0', **extra) -> dict:
    shim = tmp_path / 'shim'
    (shim / 'torch').mkdir(parents=True, exist_ok=True)
    (shim / 'torch' / '__init__.py').write_text(FAKE_TORCH)
    env = {k: v for k, v in os.environ.items()
           if k not in ('FORCE_CUDA', 'TORCH_CUDA_ARCH_LIST', 'MAX_JOBS')}
    env.update(PYTHON=sys.executable, MONODLE_CACHE=str(tmp_path / 'cache'), MAX_JOBS='3',
               PYTHONPATH=os.pathsep.join([str(shim), env.get('PYTHONPATH', '')]),
               FAKE_GPUS=gpus, FAKE_TORCH_CUDA=torch_cuda, **extra)
    return env


def _plan(tmp_path: Path, **kw) -> tuple[int, dict, str]:
    """Run build_mmcv.sh --plan: (exit code, {field: value}, stderr)."""
    proc = subprocess.run(['bash', 'tools/env/build_mmcv.sh', '--plan', '2.1.0'], cwd=REPO,
                          env=_env(tmp_path, **kw), capture_output=True, text=True,
                          timeout=300)
    fields = dict(line.split(': ', 1) for line in proc.stdout.splitlines() if ': ' in line)
    return proc.returncode, fields, proc.stderr


def _py_tag() -> str:
    import torch
    return (f'py{sys.version_info.major}{sys.version_info.minor}-'
            f'torch{torch.__version__.split("+")[0]}')


def test_cpu_request_hides_the_gpus_and_keeps_the_cpu_key(tmp_path):
    """GPUs visible, no FORCE_CUDA: CPU ops built with CUDA_VISIBLE_DEVICES= (mmcv's setup.py
    would compile CUDA ops otherwise), cached under the -cpu key; the installed ops are kept."""
    rc, plan, err = _plan(tmp_path, gpus='9.0 9.0')
    assert rc == 0, err
    assert plan['key'] == _py_tag() + '-cpu'
    assert plan['wheel cache'] == str(tmp_path / 'cache' / 'wheels' / f'mmcv-2.1.0-{plan["key"]}')
    assert plan['build env'].split() == ['MMCV_WITH_OPS=1', 'MAX_JOBS=3', 'FORCE_CUDA=0',
                                         'CUDA_VISIBLE_DEVICES=']
    assert plan['installed'] in ('cpu', 'cuda') and plan['action'] == 'keep'


def test_force_cuda_never_takes_the_cpu_wheel_and_replaces_cpu_ops(tmp_path):
    """FORCE_CUDA=1 after a CPU `make env`: its own key (CUDA version + architectures), the GPUs
    left visible, TORCH_CUDA_ARCH_LIST passed on; the cached CPU wheel is not a candidate and
    the installed CPU ops are replaced (built, or installed from the CUDA wheel once cached)."""
    cpu_dir = tmp_path / 'cache' / 'wheels' / f'mmcv-2.1.0-{_py_tag()}-cpu'
    cpu_dir.mkdir(parents=True)
    (cpu_dir / 'mmcv-2.1.0-cp311-cp311-linux_x86_64.whl').write_bytes(b'')
    rc, plan, err = _plan(tmp_path, FORCE_CUDA='1', TORCH_CUDA_ARCH_LIST='8.6;12.0')
    assert rc == 0, err
    assert plan['key'] == _py_tag() + '-cuda13.0-arch12.0_8.6'
    assert plan['build env'].split() == ['MMCV_WITH_OPS=1', 'MAX_JOBS=3', 'FORCE_CUDA=1',
                                         'TORCH_CUDA_ARCH_LIST=8.6;12.0']
    assert plan['action'] in ('build', 'install')
    if plan['installed'] == 'cpu':  # this suite's own environment (`make env` without GPU)
        assert plan['action'] == 'build'
        cuda_dir = Path(plan['wheel cache'])
        cuda_dir.mkdir(parents=True)
        (cuda_dir / 'mmcv-2.1.0-cp311-cp311-linux_x86_64.whl').write_bytes(b'')
        assert _plan(tmp_path, FORCE_CUDA='1', TORCH_CUDA_ARCH_LIST='8.6;12.0')[1]['action'] \
            == 'install'


def test_force_cuda_key_follows_the_visible_gpus_and_the_arch_list(tmp_path):
    """Without TORCH_CUDA_ARCH_LIST the visible GPUs' architectures (PTX for the newest, as
    torch's extension builder picks them) are built and keyed; a different list, another key."""
    rc, plan, err = _plan(tmp_path, FORCE_CUDA='1', gpus='9.0 8.0 9.0')
    assert rc == 0, err
    assert plan['key'] == _py_tag() + '-cuda13.0-arch8.0_9.0+PTX'
    assert 'TORCH_CUDA_ARCH_LIST=8.0;9.0+PTX' in plan['build env'].split()
    rc, other, err = _plan(tmp_path, FORCE_CUDA='1', gpus='9.0', TORCH_CUDA_ARCH_LIST='9.0')
    assert rc == 0, err
    assert other['key'] == _py_tag() + '-cuda13.0-arch9.0'


def test_force_cuda_without_gpu_or_arch_list_stops_with_one_line(tmp_path):
    rc, plan, err = _plan(tmp_path, FORCE_CUDA='1', gpus='')
    assert rc == 1 and not plan
    assert err.strip().splitlines() == [
        '[build_mmcv] ERROR: FORCE_CUDA=1 but no GPU is visible to take the CUDA architectures '
        'from: set TORCH_CUDA_ARCH_LIST, e.g. TORCH_CUDA_ARCH_LIST="8.0;9.0" FORCE_CUDA=1 '
        'make env']


def test_force_cuda_with_a_cpu_torch_stops_with_one_line(tmp_path):
    rc, plan, err = _plan(tmp_path, FORCE_CUDA='1', torch_cuda='', TORCH_CUDA_ARCH_LIST='9.0')
    assert rc == 1 and not plan
    lines = err.strip().splitlines()
    assert len(lines) == 1 and 'is a CPU build: install the CUDA build of torch' in lines[0]


def _stamp_hash(**extra) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ('FORCE_CUDA', 'TORCH_CUDA_ARCH_LIST')}
    proc = subprocess.run(['bash', 'tools/env/setup_env.sh', '--stamp-hash'], cwd=REPO,
                          env=dict(env, **extra), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_stamp_changes_with_force_cuda_and_arch_list():
    """`FORCE_CUDA=1 make env` after a CPU `make env` does not stop at the fast path."""
    cpu = _stamp_hash()
    assert len(cpu) == 16
    assert _stamp_hash(FORCE_CUDA='0') == cpu
    assert _stamp_hash(TORCH_CUDA_ARCH_LIST='9.0') == cpu  # no CUDA ops asked for
    cuda = _stamp_hash(FORCE_CUDA='1')
    cuda_90 = _stamp_hash(FORCE_CUDA='1', TORCH_CUDA_ARCH_LIST='9.0')
    assert len({cpu, cuda, cuda_90}) == 3

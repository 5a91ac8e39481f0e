"""tools/dist_train.sh / dist_test.sh: the process count is detected when omitted.

A stand-in ``PYTHON`` answers the torch query (``-c ...``) with a device count and otherwise
prints the torchrun command line it was given, so the launch logic runs without torch.
"""
from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _script(path: Path, body: str) -> Path:
    path.write_text('#!/usr/bin/env bash\n' + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def _run(tmp_path: Path, args: list[str], torch_count: str | None,
         smi_gpus: int | None = None) -> subprocess.CompletedProcess:
    """Run a dist script with a fake python (torch reports ``torch_count``; None: torch
    missing) and, when ``smi_gpus`` is given, a fake ``nvidia-smi -L`` listing that many GPUs."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir(exist_ok=True)
    query = (f'echo {torch_count}' if torch_count is not None
             else 'echo "ModuleNotFoundError: torch" >&2; exit 1')
    fake_py = _script(bin_dir / 'fakepython',
                      f'if [ "$1" = "-c" ]; then {query}; else echo "LAUNCH $*"; fi\n')
    if smi_gpus is not None:
        lines = ''.join(f'echo "GPU {i}: Fake GPU (UUID: GPU-{i})"\n' for i in range(smi_gpus))
        _script(bin_dir / 'nvidia-smi', lines)
    env = dict(os.environ, PYTHON=str(fake_py),
               PATH=f'{bin_dir}:/usr/bin:/bin')  # no real nvidia-smi unless faked
    return subprocess.run(['bash', *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=60)


def _nproc(out: str) -> int:
    launch = [line for line in out.splitlines() if line.startswith('LAUNCH ')]
    assert len(launch) == 1, out
    opt = [a for a in launch[0].split() if a.startswith('--nproc_per_node=')]
    return int(opt[0].split('=')[1])


@pytest.mark.parametrize('script,fixed', [('tools/dist_train.sh', ['cfg.py']),
                                          ('tools/dist_test.sh', ['cfg.py', 'ckpt.pth'])])
def test_cpu_only_launches_one_process(tmp_path, script, fixed):
    proc = _run(tmp_path, [script, *fixed, '--work-dir', 'w'], torch_count='0')
    assert proc.returncode == 0, proc.stderr
    assert _nproc(proc.stdout) == 1
    assert 'no GPU found' in proc.stderr
    launch = proc.stdout.split('LAUNCH ')[1]
    assert launch.rstrip().endswith(' '.join([*fixed, '--launcher', 'pytorch', '--work-dir',
                                              'w']))


@pytest.mark.parametrize('script,fixed', [('tools/dist_train.sh', ['cfg.py']),
                                          ('tools/dist_test.sh', ['cfg.py', 'ckpt.pth'])])
def test_torch_device_count_is_used(tmp_path, script, fixed):
    proc = _run(tmp_path, [script, *fixed], torch_count='3', smi_gpus=8)
    assert proc.returncode == 0, proc.stderr
    assert _nproc(proc.stdout) == 3  # torch honours CUDA_VISIBLE_DEVICES; nvidia-smi does not


def test_nvidia_smi_when_torch_cannot_answer(tmp_path):
    proc = _run(tmp_path, ['tools/dist_train.sh', 'cfg.py'], torch_count=None, smi_gpus=2)
    assert proc.returncode == 0, proc.stderr
    assert _nproc(proc.stdout) == 2


@pytest.mark.parametrize('script,fixed', [('tools/dist_train.sh', ['cfg.py']),
                                          ('tools/dist_test.sh', ['cfg.py', 'ckpt.pth'])])
def test_explicit_count_wins(tmp_path, script, fixed):
    proc = _run(tmp_path, [script, *fixed, '2', '--cfg-options', 'a=1'], torch_count='8')
    assert proc.returncode == 0, proc.stderr
    assert _nproc(proc.stdout) == 2
    assert proc.stdout.rstrip().endswith('--launcher pytorch --cfg-options a=1')


def test_usage_without_config(tmp_path):
    proc = _run(tmp_path, ['tools/dist_train.sh'], torch_count='0')
    assert proc.returncode == 2
    assert 'usage:' in proc.stderr

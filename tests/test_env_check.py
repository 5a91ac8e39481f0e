"""The environment self-check names the wrong piece in one line; the import stays quiet."""
import importlib.util
import os
import os.path as osp
import subprocess
import sys

import pytest

from monodle_plugin.utils import env_check

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def test_current_environment_is_ok():
    assert env_check.environment_problems() == []


def test_numpy2_is_reported(monkeypatch):
    import numpy
    monkeypatch.setattr(numpy, '__version__', '2.1.0')
    problems = env_check.environment_problems()
    assert len(problems) == 1 and 'numpy 2.1.0' in problems[0] and 'numpy<2' in problems[0]


def test_mmcv_without_ops_is_reported(monkeypatch):
    real_find_spec = importlib.util.find_spec

    def fake_find_spec(name, *args, **kwargs):
        return None if name == 'mmcv._ext' else real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(env_check.importlib.util, 'find_spec', fake_find_spec)
    problems = env_check.environment_problems()
    assert len(problems) == 1 and 'without its compiled ops' in problems[0]


def test_mmcv_ops_without_cuda_are_reported_and_a_problem_under_force_cuda(monkeypatch, capsys):
    """`make env`'s self-check says whether mmcv's ops have CUDA when CUDA is available, and
    fails with one line when FORCE_CUDA=1 asked for them and they lack it."""
    import mmcv.ops
    import torch
    monkeypatch.setattr(mmcv.ops, 'get_compiling_cuda_version', lambda: 'not available')
    assert env_check.mmcv_cuda_ops(False) == ('mmcv ops     CPU only', None)  # GPUs hidden
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    line, problem = env_check.mmcv_cuda_ops(False)
    assert problem is None and 'CPU only, although CUDA is available' in line
    assert '--sync_bn mmcv' in line and 'FORCE_CUDA=1 make env' in line
    monkeypatch.setenv('FORCE_CUDA', '1')
    with pytest.raises(SystemExit) as exit_:
        env_check.main()
    assert exit_.value.code == 1
    assert capsys.readouterr().out.splitlines() == [
        "FORCE_CUDA=1 but mmcv's ops were compiled without CUDA "
        '(mmcv.ops.get_compiling_cuda_version(): not available); FORCE_CUDA=1 make env '
        'installs them']
    monkeypatch.setattr(mmcv.ops, 'get_compiling_cuda_version', lambda: '12.8')
    assert env_check.mmcv_cuda_ops(True) == ('mmcv ops     compiled with CUDA 12.8', None)


def test_missing_mmdet3d_is_reported_and_raises(monkeypatch):
    real_find_spec = importlib.util.find_spec

    def fake_find_spec(name, *args, **kwargs):
        return None if name == 'mmdet3d' else real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(env_check.importlib.util, 'find_spec', fake_find_spec)
    with pytest.raises(env_check.BrokenEnvironmentError, match='mmdet3d is not installed'):
        env_check.check_environment()
    assert issubclass(env_check.BrokenEnvironmentError, ImportError)


def _run(code: str) -> subprocess.CompletedProcess:
    """``python -c code`` from the repository root (this checkout first on the path)."""
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''))
    return subprocess.run([sys.executable, '-c', code], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)


def test_import_registers_and_nothing_else():
    """``import monodle_plugin``: no environment check, no environment variable changed."""
    proc = _run(
        'import os, sys\n'
        'import cv2, mmdet3d.registry, torch  # third-party imports may edit LD_LIBRARY_PATH\n'
        'before = dict(os.environ)\n'
        'import monodle_plugin\n'
        'from mmdet3d.registry import METRICS, MODELS\n'
        "assert 'MonoDLE' in MODELS and 'KittiAP40Metric' in METRICS\n"
        'changed = sorted(set(os.environ.items()) ^ set(before.items()))\n'
        "assert not changed, f'os.environ changed at import: {changed}'\n"
        "assert 'monodle_plugin.utils.env_check' not in sys.modules, 'env check ran at import'\n"
        "print('OK')\n")
    assert proc.returncode == 0 and 'OK' in proc.stdout, proc.stdout + proc.stderr


def test_broken_stack_fails_import_with_one_line():
    """When the import itself fails, the error names the wrong piece (not a deep traceback)."""
    proc = _run(
        'import sys\n'
        "sys.modules['mmdet3d'] = None  # as if mmdet3d were not installed\n"
        'try:\n'
        '    import monodle_plugin\n'
        'except ImportError as err:\n'
        "    print('ERROR', err)\n")
    assert 'ERROR monodle_plugin: mmdet3d is not installed' in proc.stdout, \
        proc.stdout + proc.stderr


@pytest.mark.parametrize('tool', ['tools/train.py', 'tools/test.py', 'tools/demo.py'])
def test_tools_in_a_broken_environment_print_one_line(tool, tmp_path):
    """An mmdet3d that cannot be imported (a stand-in package raising ImportError, first on the
    path): the tool's import of the package fails, and the user sees one line naming the piece
    and `make env`, exit 2 (it was a traceback from the shim's import)."""
    fake = tmp_path / 'mmdet3d'
    fake.mkdir()
    (fake / '__init__.py').write_text("raise ImportError('broken build of mmdet3d')\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path) + os.pathsep + REPO)
    proc = subprocess.run([sys.executable, tool, '--help'], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: '), proc.stderr
    assert 'make env' in lines[0] and 'installed mmdet3d cannot be imported' in lines[0], lines[0]

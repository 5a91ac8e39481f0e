"""Configs travel with the package (monodle_plugin/.mim/configs, as mmdet3d ships its own): after a
non-editable `pip install`, another project inherits them with `monodle_plugin::`."""
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def require_pkg_resources() -> None:
    """mmengine 0.10 resolves `pkg::` configs with pkg_resources (setuptools < 81)."""
    try:
        import pkg_resources  # noqa: F401
    except ImportError:
        import setuptools
        pytest.fail(f'mmengine resolves `pkg::` configs with pkg_resources, which setuptools '
                    f'{setuptools.__version__} no longer has: pip install "setuptools<70" '
                    f'(tools/env/setup_env.sh does)')


@pytest.mark.slow  # one pip build of the pure-Python wheel, a few seconds
def test_installed_wheel_ships_the_configs(tmp_path):
    require_pkg_resources()
    src = tmp_path / 'src'  # a copy: the build writes monodle_plugin/.mim into its source tree
    src.mkdir()
    ignore = shutil.ignore_patterns('__pycache__', '*.pyc', '.mim', '*.egg-info')
    for name in ('setup.py', 'model-index.yml', 'README.md'):
        shutil.copy(REPO / name, src / name)
    for name in ('monodle_plugin', 'monodle_kitti', 'configs', 'requirements'):
        shutil.copytree(REPO / name, src / name, ignore=ignore)
    target = tmp_path / 'site'
    proc = subprocess.run([sys.executable, '-m', 'pip', 'install', '--no-deps',
                           '--no-build-isolation', '--no-compile', '--quiet', '--target',
                           str(target), str(src)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert (target / 'monodle_plugin' / '.mim' / 'configs' / 'monodle' /
            'monodle_dla34_kitti.py').is_file()
    assert (target / 'monodle_kitti' / 'kitti_eval.py').is_file()  # the torch-free part

    project = tmp_path / 'my_project'
    project.mkdir()
    (project / 'my_config.py').write_text(textwrap.dedent("""
        _base_ = ['monodle_plugin::monodle/monodle_dla34_kitti.py']
        max_epochs = 70
        train_cfg = dict(max_epochs=max_epochs)
    """))
    script = textwrap.dedent("""
        import monodle_plugin  # registers, and lets mmengine resolve `monodle_plugin::`
        from mmengine.config import Config
        cfg = Config.fromfile('my_config.py')
        print(monodle_plugin.__file__)
        print(cfg.model.backbone.type, cfg.train_cfg.max_epochs, cfg.total_batch_size,
              cfg.runner_type, cfg.optim_wrapper.optimizer.lr)
    """)
    env = dict(os.environ, OMP_NUM_THREADS='1',
               PYTHONPATH=os.pathsep.join([str(target), os.environ.get('PYTHONPATH', '')]))
    out = subprocess.run([sys.executable, '-c', script], cwd=project, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    where, values = out.stdout.strip().splitlines()[-2:]
    assert where.startswith(str(target))  # the installed copy, not this checkout
    assert values == 'DLANet 70 16 MonoDLERunner 0.00125'

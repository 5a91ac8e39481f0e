"""monodle_plugin: MonoDLE for MMDetection3D, with Ultralytics YOLO backbones and DA3 distillation.

The OpenMMLab stack (mmcv with compiled ops, mmdet, mmdet3d) is installed by
``tools/env/setup_env.sh`` (``make env``), not through ``install_requires``: mmcv 2.1.0 must be
built from source for recent torch, and mmdet3d's metadata pulls in open3d, which we do not need.

The configs travel with the package the way mmdet3d ships its own (its setup.py
``add_mim_extension``): ``configs/`` and ``model-index.yml`` are copied into
``monodle_plugin/.mim/`` for a wheel / ``pip install .`` (symlinked for ``pip install -e .``),
so ``_base_ = ['monodle_plugin::monodle/monodle_dla34_kitti.py']`` works from any directory.
"""
import os
import os.path as osp
import shutil
import sys

from setuptools import find_packages, setup

MIM_FILES = ['configs', 'model-index.yml']  # repository paths put under monodle_plugin/.mim/


def add_mim_extension() -> None:
    """Copy (wheel, sdist, install) or symlink (editable) MIM_FILES into monodle_plugin/.mim."""
    if 'develop' in sys.argv or 'editable_wheel' in sys.argv:
        mode = 'copy' if os.name == 'nt' else 'symlink'
    elif any(cmd in sys.argv for cmd in ('sdist', 'bdist_wheel', 'build', 'build_py',
                                         'install')):
        mode = 'copy'
    else:  # egg_info, dist_info, ...: nothing is built
        return
    repo = osp.dirname(osp.abspath(__file__))
    mim = osp.join(repo, 'monodle_plugin', '.mim')
    os.makedirs(mim, exist_ok=True)
    for name in MIM_FILES:
        src, dst = osp.join(repo, name), osp.join(mim, name)
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if mode == 'symlink':
            os.symlink(osp.relpath(src, osp.dirname(dst)), dst)
        elif osp.isdir(src):
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
        else:
            shutil.copyfile(src, dst)


def read_version() -> str:
    namespace: dict = {}
    with open(osp.join(osp.dirname(__file__), 'monodle_plugin', 'version.py')) as f:
        exec(f.read(), namespace)
    return namespace['__version__']


def read_requirements(name: str) -> list:
    path = osp.join(osp.dirname(__file__), 'requirements', name)
    with open(path) as f:
        return [line.split('#')[0].strip() for line in f
                if line.split('#')[0].strip()]


add_mim_extension()
setup(
    name='monodle_plugin',
    version=read_version(),
    description='MonoDLE (CVPR 2021) as an MMDetection3D plugin with YOLO backbones and '
                'Depth Anything 3 depth distillation',
    long_description=open('README.md').read() if osp.exists('README.md') else '',
    long_description_content_type='text/markdown',
    license='MIT',
    packages=find_packages(include=['monodle_plugin', 'monodle_plugin.*', 'monodle_kitti',
                                    'monodle_kitti.*']),
    package_data={'monodle_plugin': ['.mim/model-index.yml', '.mim/configs/*.py',
                                     '.mim/configs/**/*.py', '.mim/configs/*.yml',
                                     '.mim/configs/**/*.yml', '.mim/configs/*.md',
                                     '.mim/configs/**/*.md']},
    python_requires='>=3.9',
    install_requires=read_requirements('runtime.txt'),
    extras_require={
        'tests': read_requirements('tests.txt'),
        'da3': ['depth-anything-3'],
    },
    zip_safe=False,
)

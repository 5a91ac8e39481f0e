"""monodle_plugin: MonoDLE for MMDetection3D, with Ultralytics YOLO backbones and DA3 distillation.

The OpenMMLab stack (mmcv with compiled ops, mmdet, mmdet3d) is installed by
``tools/env/setup_env.sh`` (``make env``), not through ``install_requires``: mmcv 2.1.0 must be
built from source for recent torch, and mmdet3d's metadata pulls in open3d, which we do not need.
"""
import os.path as osp

from setuptools import find_packages, setup


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


setup(
    name='monodle_plugin',
    version=read_version(),
    description='MonoDLE (CVPR 2021) as an MMDetection3D plugin with YOLO backbones and '
                'Depth Anything 3 depth distillation',
    long_description=open('README.md').read() if osp.exists('README.md') else '',
    long_description_content_type='text/markdown',
    license='MIT',
    packages=find_packages(include=['monodle_plugin', 'monodle_plugin.*']),
    python_requires='>=3.9',
    install_requires=read_requirements('runtime.txt'),
    extras_require={
        'tests': read_requirements('tests.txt'),
        'da3': ['depth-anything-3'],
    },
    zip_safe=False,
)

"""Shared fixtures of the distillation tests."""
import os.path as osp

import pytest

MINI = osp.join(osp.dirname(__file__), '..', '..', 'demo', 'kitti_mini', 'KITTI')


@pytest.fixture(autouse=True, scope='session')
def mmdet3d_default_scope():
    """Configs name transforms without a scope, as in a runner with ``default_scope='mmdet3d'``."""
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet3d')

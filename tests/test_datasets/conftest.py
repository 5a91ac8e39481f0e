"""Shared helpers of the dataset tests: kitti_mini location and a raw-layout builder."""
import os
import os.path as osp
import shutil

import pytest

MINI = osp.join(osp.dirname(__file__), '..', '..', 'demo', 'kitti_mini', 'KITTI')


def make_layout(root, ids, split='train', folder='training', labels=True):
    """Copy frames of kitti_mini into a fresh raw KITTI layout under root."""
    os.makedirs(osp.join(root, 'ImageSets'), exist_ok=True)
    subdirs = ['image_2', 'calib'] + (['label_2'] if labels else [])
    for sub in subdirs:
        os.makedirs(osp.join(root, folder, sub), exist_ok=True)
    for i in ids:
        shutil.copy(osp.join(MINI, 'training', 'image_2', f'{i}.png'),
                    osp.join(root, folder, 'image_2', f'{i}.png'))
        shutil.copy(osp.join(MINI, 'training', 'calib', f'{i}.txt'),
                    osp.join(root, folder, 'calib', f'{i}.txt'))
        if labels:
            shutil.copy(osp.join(MINI, 'training', 'label_2', f'{i}.txt'),
                        osp.join(root, folder, 'label_2', f'{i}.txt'))
    with open(osp.join(root, 'ImageSets', f'{split}.txt'), 'w') as f:
        f.write('\n'.join(ids) + '\n')
    return str(root)


@pytest.fixture
def make_kitti_layout():
    """``make_layout(root, ids, split='train', folder='training', labels=True)``."""
    return make_layout


@pytest.fixture(autouse=True, scope='session')
def mmdet3d_default_scope():
    """Configs name transforms without a scope, as in a runner with ``default_scope='mmdet3d'``."""
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet3d')

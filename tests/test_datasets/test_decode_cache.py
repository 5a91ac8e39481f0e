"""``LoadKittiMonoImage(cache=True)`` / ``LoadDA3Depth(cache=True)`` (``distill.cache``): each file
is decoded once per process, and the samples are those of the uncached loaders, augmentation
included."""
import os.path as osp
import shutil

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.dataset import Compose

import monodle_plugin  # noqa: F401  (registers)
from monodle_plugin.datasets import MonoDLEKittiDataset
from monodle_plugin.utils.distill_switches import apply_distill_switches

ROOT = osp.join(osp.dirname(__file__), '..', '..')
MINI = osp.join(ROOT, 'demo', 'kitti_mini', 'KITTI')
AUG = dict(type='MonoDLEAffineAug', output_size=(512, 160), random_flip=0.5, random_crop=0.5,
           scale=0.4, shift=0.1)


def pipeline(cache: bool) -> Compose:
    return Compose([dict(type='LoadKittiMonoImage', cache=cache),
                    dict(type='LoadMonoDLEAnnotations'), AUG,
                    dict(type='LoadDA3Depth', depth_dir='lidar_depth', cache=cache),
                    dict(type='EncodeMonoDLETargets'), dict(type='PackMonoDLEInputs')])


def sample(ds: MonoDLEKittiDataset, idx: int, steps: Compose, seed: int) -> dict:
    np.random.seed(seed)  # the same flip / crop draws for both pipelines
    return steps(dict(ds.get_data_info(idx), box_type_3d=ds.box_type_3d,
                      box_mode_3d=ds.box_mode_3d))


@pytest.fixture
def mini_copy(tmp_path):
    """kitti_mini's training images, calibrations, labels, LiDAR depth and splits, copied (the
    test deletes files)."""
    root = tmp_path / 'KITTI'
    for sub in ('training/image_2', 'training/calib', 'training/label_2', 'lidar_depth',
                'ImageSets'):
        shutil.copytree(osp.join(MINI, sub), root / sub)
    return root


def test_cached_samples_equal_uncached_ones_and_read_each_file_once(mini_copy):
    ds = MonoDLEKittiDataset(data_root=str(mini_copy), split='train')
    cached, plain = pipeline(True), pipeline(False)
    ids = range(3)
    for epoch in range(2):  # the second epoch comes from the cache, with other augmentations
        for idx in ids:
            a = sample(ds, idx, cached, seed=10 * epoch + idx)
            b = sample(ds, idx, plain, seed=10 * epoch + idx)
            assert np.array_equal(a['inputs']['img'].numpy(), b['inputs']['img'].numpy())
            da, db = a['data_samples'].gt_depth, b['data_samples'].gt_depth
            assert np.array_equal(da.depth.numpy(), db.depth.numpy())
            assert np.array_equal(da.valid.numpy(), db.valid.numpy())
    # the files are gone: the cache serves them (same sample), the plain loaders fail
    last = sample(ds, 0, cached, seed=10)
    for idx in ids:
        sid = ds.get_data_info(idx)['sample_id']
        (mini_copy / 'training' / 'image_2' / f'{sid}.png').unlink()
        (mini_copy / 'lidar_depth' / f'{sid}.npz').unlink()
    for idx in ids:
        sample(ds, idx, cached, seed=idx)
    assert np.array_equal(sample(ds, 0, cached, seed=10)['inputs']['img'].numpy(),
                          last['inputs']['img'].numpy())
    with pytest.raises(OSError, match=r'image_2.*\.png'):
        sample(ds, 0, plain, seed=0)


def test_cached_arrays_are_read_only(mini_copy):
    """A later transform writing into a cached image or depth map would change every later
    sample of that frame: it fails instead."""
    ds = MonoDLEKittiDataset(data_root=str(mini_copy), split='train')
    load = Compose([dict(type='LoadKittiMonoImage', cache=True)])
    info = ds.get_data_info(0)
    first = load(dict(info))
    with pytest.raises(ValueError, match='read-only'):
        first['img'][0, 0] = 0
    again = load(dict(info))
    assert again['img'] is first['img']
    steps = Compose([dict(type='LoadKittiMonoImage'), dict(type='LoadMonoDLEAnnotations'), AUG,
                     dict(type='LoadDA3Depth', depth_dir='lidar_depth', cache=True)])
    loader = steps.transforms[-1]
    steps(dict(info, box_type_3d=ds.box_type_3d, box_mode_3d=ds.box_mode_3d))
    (depth, valid), = loader._maps.values()
    with pytest.raises(ValueError, match='read-only'):
        depth[0, 0] = 1.0


def test_distill_cache_switch_reaches_the_depth_loader():
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'demo', 'monodle_yolo8_da3_kitti_mini.py'))
    apply_distill_switches(cfg)
    loaders = [s for s in cfg.train_dataloader.dataset.pipeline if s['type'] == 'LoadDA3Depth']
    assert [s['cache'] for s in loaders] == [True]
    # a config written before the switch existed (a checkpoint's, a dumped one) means False
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'monodle_yolo8_da3.py'))
    cfg.distill.pop('cache')
    apply_distill_switches(cfg)
    loaders = [s for s in cfg.train_dataloader.dataset.pipeline if s['type'] == 'LoadDA3Depth']
    assert [s['cache'] for s in loaders] == [False]


def test_cache_must_be_a_bool():
    """``cache='false'`` would turn caching on: the transforms refuse anything but a bool."""
    from mmdet3d.registry import TRANSFORMS
    for step in (dict(type='LoadKittiMonoImage', cache='false'),
                 dict(type='LoadDA3Depth', depth_dir='lidar_depth', cache='false'),
                 dict(type='LoadDA3Depth', depth_dir='lidar_depth', scale_by_crop=1)):
        with pytest.raises(TypeError, match=f"{step['type']}: .* must be True or False"):
            TRANSFORMS.build(step)

"""configs/demo/*: the kitti_mini main-job configs parse, format and follow the batch rule."""
import pytest
from mmengine.config import Config
from tool_helpers import REPO

DEMO = ['configs/demo/monodle_yolo8_da3_kitti_mini.py',
        'configs/demo/monodle_dla34_kitti_mini.py']


@pytest.mark.parametrize('path', DEMO)
def test_demo_config(path):
    cfg = Config.fromfile(str(REPO / path))
    assert cfg.data_root == 'demo/kitti_mini/KITTI/'
    for loader in (cfg.train_dataloader, cfg.test_dataloader):
        assert loader.dataset.data_root == cfg.data_root
        assert loader.num_workers == 0 and not loader.persistent_workers
    assert cfg.test_evaluator.type == 'KittiAP40Metric'
    assert cfg.test_evaluator.data_root == cfg.data_root
    # MonoDLERunner: 4 // world size per process; lr of the recipe (16) scaled x total / 16
    assert cfg.train_dataloader.batch_size == 'auto' and cfg.total_batch_size == 4
    assert cfg.runner_type == 'MonoDLERunner'
    assert cfg.auto_scale_lr == dict(enable=True, base_batch_size=16)
    assert cfg.default_hooks.checkpoint.type == 'ResumableCheckpointHook'
    affine = [t for t in cfg.train_dataloader.dataset.pipeline if t.type == 'MonoDLEAffineAug']
    assert affine[0].output_size == (640, 192)
    assert 'ResumableCheckpointHook' in cfg.pretty_text  # the runner can dump it


def test_yolo_demo_distills_from_lidar_without_downloads():
    cfg = Config.fromfile(str(REPO / DEMO[0]))
    steps = [t.type for t in cfg.train_dataloader.dataset.pipeline]
    assert 'LoadDA3Depth' in steps
    depth = cfg.train_dataloader.dataset.pipeline[steps.index('LoadDA3Depth')]
    assert depth.depth_dir == 'lidar_depth' == cfg.distill['depth_dir']
    assert (REPO / cfg.data_root / 'lidar_depth' / '000000.npz').is_file()
    assert cfg.model.backbone.pretrained is False
    assert cfg.model.bbox_head.loss_depth_distill.type == 'DepthDistillLoss'

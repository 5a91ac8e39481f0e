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
        # 2 cores: a loader worker competes with the 2 compute threads (measured slower)
        assert loader.num_workers == 0 and not loader.persistent_workers
    assert cfg.test_evaluator.type == 'KittiAP40Metric'
    assert cfg.test_evaluator.data_root == cfg.data_root
    # MonoDLERunner: total // world size per process, lr scaled x total / base_batch_size
    assert cfg.train_dataloader.batch_size == 'auto'
    assert cfg.runner_type == 'MonoDLERunner'
    assert cfg.default_hooks.checkpoint.type == 'ResumableCheckpointHook'
    affine = [t for t in cfg.train_dataloader.dataset.pipeline if t.type == 'MonoDLEAffineAug']
    if path == DEMO[0]:  # the main job: its own lr for its batch, a fit of the same frames
        assert cfg.total_batch_size == 2
        assert cfg.auto_scale_lr == dict(enable=True, base_batch_size=2)  # x1 for batch 2
        assert affine[0].output_size == (512, 160)
        assert affine[0].random_flip == 0.0 and affine[0].random_crop == 0.0
        assert cfg.default_hooks.checkpoint.max_keep_ckpts == 1  # only the last checkpoint
        assert cfg.default_hooks.checkpoint.interval == cfg.train_cfg.max_epochs
    else:
        assert cfg.total_batch_size == 4
        assert cfg.auto_scale_lr == dict(enable=True, base_batch_size=16)
        assert affine[0].output_size == (640, 192)
    assert 'ResumableCheckpointHook' in cfg.pretty_text  # the runner can dump it


def test_yolo_demo_distills_from_lidar_without_downloads():
    from monodle_plugin.utils.distill_switches import apply_distill_switches
    cfg = Config.fromfile(str(REPO / DEMO[0]))
    apply_distill_switches(cfg)  # as MonoDLERunner does under any tool
    steps = [t.type for t in cfg.train_dataloader.dataset.pipeline]
    assert steps.index('LoadDA3Depth') == steps.index('MonoDLEAffineAug') + 1
    depth = cfg.train_dataloader.dataset.pipeline[steps.index('LoadDA3Depth')]
    assert depth.depth_dir == 'lidar_depth' == cfg.distill['depth_dir']
    assert (REPO / cfg.data_root / 'lidar_depth' / '000000.npz').is_file()
    assert cfg.model.backbone.pretrained is False
    assert cfg.model.bbox_head.loss_depth_distill.type == 'DepthDistillLoss'

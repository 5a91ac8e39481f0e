_base_ = [
    '../_base_/models/monodle_timm.py',
    '../_base_/datasets/kitti_mono3d_monodle.py',
    '../_base_/schedules/monodle_140e.py',
    '../_base_/default_runtime.py',
]

custom_imports = dict(imports=['monodle_plugin', 'mmpretrain.models'], allow_failed_imports=False)

model = dict(
    backbone=dict(model_name='convnextv2_tiny',
                  pretrained_cfg_overlay=dict(file='checkpoints/timm/convnextv2_tiny.safetensors')),
    neck=dict(in_channels=[96, 192, 384, 768]),
    bbox_head=dict(in_channels=96))

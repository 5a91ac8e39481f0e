_base_ = [
    '../_base_/models/monodle_timm.py',
    '../_base_/datasets/kitti_mono3d_monodle.py',
    '../_base_/schedules/monodle_140e.py',
    '../_base_/default_runtime.py',
]

custom_imports = dict(imports=['monodle_plugin', 'mmpretrain.models'], allow_failed_imports=False)

model = dict(
    backbone=dict(model_name='hrnet_w32', out_indices=(1, 2, 3, 4),
                  pretrained_cfg_overlay=dict(file='checkpoints/timm/hrnet_w32.safetensors')),
    neck=dict(in_channels=[128, 256, 512, 1024]),
    bbox_head=dict(in_channels=128))

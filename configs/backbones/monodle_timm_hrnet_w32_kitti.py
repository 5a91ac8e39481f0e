# MonoDLE with timm's hrnet_w32 through mmpretrain.TIMMBackbone (EXTRAS=backbones) under DLAUp +
# CenterNet3D; otherwise the official recipe of configs/monodle/monodle_dla34_kitti.py (ImageNet
# mean / std input). timm's features_only maps at strides 4/8/16/32 (out_indices (1, 2, 3, 4)) have
# [128, 256, 512, 1024] channels; DLAUp fuses them into one 128-channel stride-4 map. ImageNet
# weights from a local file only, loaded by timm itself: model.safetensors of the Hugging Face
# repository timm/hrnet_w32.ms_in1k, saved as checkpoints/timm/hrnet_w32.safetensors; a missing
# file stops the build saying so; --cfg-options model.backbone.pretrained=False trains from random
# weights (pretrained=True without a local file, i.e. a hub download, is refused).
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

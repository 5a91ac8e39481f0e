# MonoDLE with mmpretrain's ConvNeXt-T (registry backbone, EXTRAS=backbones) under DLAUp +
# CenterNet3D; otherwise the official recipe of configs/monodle/monodle_dla34_kitti.py.
# The four stages give strides 4/8/16/32 with 96/192/384/768 channels (each through its own
# output LayerNorm); DLAUp fuses them into one 96-channel stride-4 map for the head.
# ImageNet weights from a local file only: mmpretrain's
# convnext-tiny_32xb128_in1k_20221207-998cf3e9.pth in checkpoints/ (keys under 'backbone.');
# a missing file stops training at start-up; --cfg-options model.backbone.init_cfg=None trains
# from random weights.
_base_ = ['../monodle/monodle_dla34_kitti.py']

custom_imports = dict(imports=['monodle_plugin', 'mmpretrain.models'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmpretrain.ConvNeXt',
        arch='tiny',
        out_indices=(0, 1, 2, 3),
        gap_before_final_norm=False,
        drop_path_rate=0.0,
        frozen_stages=0,
        init_cfg=dict(type='Pretrained', prefix='backbone.',
                      checkpoint='checkpoints/convnext-tiny_32xb128_in1k_20221207-998cf3e9.pth')),
    neck=dict(in_channels=[96, 192, 384, 768], strides=[4, 8, 16, 32]),
    bbox_head=dict(in_channels=96))

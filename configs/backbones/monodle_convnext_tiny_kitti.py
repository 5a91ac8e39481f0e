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

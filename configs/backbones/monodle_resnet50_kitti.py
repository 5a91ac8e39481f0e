_base_ = ['../monodle/monodle_dla34_kitti.py']

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmdet.ResNet',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/resnet50-0676ba61.pth')),
    neck=dict(in_channels=[256, 512, 1024, 2048], strides=[4, 8, 16, 32]),
    bbox_head=dict(in_channels=256))

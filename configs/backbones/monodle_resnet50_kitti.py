# MonoDLE with mmdet's ResNet-50 (registry backbone) under DLAUp + CenterNet3D; otherwise the
# official recipe of configs/monodle/monodle_dla34_kitti.py (ImageNet mean / std input).
# ResNet-50 stages 1-4 give strides 4/8/16/32 with 256/512/1024/2048 channels; DLAUp fuses them
# into one 256-channel stride-4 map for the head.
# ImageNet weights from a local file only: torchvision's resnet50-0676ba61.pth (what mmdet's
# 'torchvision://resnet50' names) in checkpoints/; a missing file stops training at start-up;
# --cfg-options model.backbone.init_cfg=None trains from random weights.
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

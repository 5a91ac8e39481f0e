_base_ = ['./monodle_yolo8_kitti.py']

model = dict(
    # the seed's dataset: ImageNet mean / std for every backbone (Ultralytics expects RGB / 255)
    data_preprocessor=dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375]),
    # Ultralytics' .pt files store requires_grad=False, which the seed never reset: weights
    # fixed, BatchNorm statistics moving
    backbone=dict(freeze_backbone='weights'))

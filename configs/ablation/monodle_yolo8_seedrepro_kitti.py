# Reproduce mode for the seed system's YOLOv8 runs (MonoDDLE, experiments/configs/ablation/yolo8/
# n/kitti.yaml): configs/ablation/monodle_yolo8_kitti.py in the regime those runs actually had,
# which differs from ours (the README's fidelity section says why ours is the default):
#  - ImageNet-normalised input ((RGB / 255 - mean) / std, the seed's dataset for every backbone)
#    instead of the RGB / 255 that Ultralytics weights were trained on;
#  - backbone weights fixed but BatchNorm statistics moving: Ultralytics' .pt files store every
#    parameter with requires_grad=False and the seed's adapter never resets it, so only the
#    running statistics of the backbone's BatchNorms change (freeze_backbone='weights').
_base_ = ['./monodle_yolo8_kitti.py']

model = dict(
    data_preprocessor=dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375]),
    backbone=dict(freeze_backbone='weights'))

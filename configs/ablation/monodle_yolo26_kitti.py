# Ablation: MonoDLE with a YOLO26n (yolo26n.pt) backbone, no depth distillation; otherwise the
# official recipe (KITTI train -> val, 1280 x 384, Adam 1.25e-3, 140 epochs, total batch 16, AP40).
_base_ = [
    '../_base_/models/monodle_yolo.py',
    '../_base_/datasets/kitti_mono3d_monodle.py',
    '../_base_/schedules/monodle_140e.py',
    '../_base_/default_runtime.py',
]

# `ultralytics_model`: any scale / file, e.g. 'yolov8s.pt', 'yolo11m.yaml'; write its channels at
# strides 4/8/16/32 into neck.in_channels and bbox_head.in_channels (the model build checks them)
model = dict(
    backbone=dict(ultralytics_model='yolo26'),
    neck=dict(in_channels=[64, 64, 128, 256]),  # YOLO26n
    bbox_head=dict(in_channels=64))

_base_ = [
    '../_base_/models/monodle_yolo_native_neck.py',
    '../_base_/datasets/kitti_mono3d_monodle.py',
    '../_base_/schedules/monodle_140e.py',
    '../_base_/default_runtime.py',
]

model = dict(backbone=dict(ultralytics_model='yolo11x.pt'), neck=dict(in_channels=[384, 768, 768]))

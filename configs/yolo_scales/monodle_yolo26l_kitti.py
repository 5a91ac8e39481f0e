_base_ = [
    '../_base_/models/monodle_yolo.py',
    '../_base_/datasets/kitti_mono3d_monodle.py',
    '../_base_/schedules/monodle_140e.py',
    '../_base_/default_runtime.py',
]

model = dict(
    backbone=dict(ultralytics_model='yolo26l.pt'),
    neck=dict(in_channels=[256, 256, 512, 512]),
    bbox_head=dict(in_channels=256))

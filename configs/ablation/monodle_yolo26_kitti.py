# Ablation: MonoDLE with a YOLO26n (yolo26n.pt) backbone, no depth distillation; otherwise the
# official recipe (KITTI train -> val, 1280 x 384, Adam 1.25e-3, 140 epochs, total batch 16, AP40).
_base_ = [
    '../_base_/models/monodle_yolo.py',
    '../_base_/datasets/kitti_mono3d_monodle.py',
    '../_base_/schedules/monodle_140e.py',
    '../_base_/default_runtime.py',
]

import monodle_plugin.models.backbones.ultralytics_backbone as ultralytics_backbone

yolo_model = 'yolo26'  # any scale / file: e.g. 'yolov8s.pt', 'yolo11m.yaml'
yolo_channels = ultralytics_backbone.UltralyticsBackbone.infer_out_channels(yolo_model)
model = dict(
    backbone=dict(ultralytics_model=yolo_model),
    neck=dict(in_channels=yolo_channels),
    bbox_head=dict(in_channels=yolo_channels[0]))

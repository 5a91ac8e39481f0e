# MonoDLE with a YOLOv8m (yolov8m.pt) backbone under DLAUp, no depth distillation; otherwise
# configs/ablation/monodle_yolo8_kitti.py (the n scale), whose recipe it inherits. Channels at
# strides 4/8/16/32 (Ultralytics layers [2, 15, 18, 21]) were computed once from yolov8m.yaml with
# UltralyticsBackbone(pretrained=False).out_channels; tests/test_models/test_yolo_variants.py
# rebuilds every variant and checks them. Weights: yolov8m.pt in checkpoints/ or
# $MONODLE_WEIGHTS_DIR (never downloaded); --cfg-options model.backbone.pretrained=False for random
# initialisation.
_base_ = ['../ablation/monodle_yolo8_kitti.py']

model = dict(
    backbone=dict(ultralytics_model='yolov8m.pt'),
    neck=dict(in_channels=[96, 192, 384, 576]),
    bbox_head=dict(in_channels=96))

# MonoDLE with a YOLO26m (yolo26m.pt) backbone under DLAUp, no depth distillation; otherwise
# configs/ablation/monodle_yolo26_kitti.py (the n scale), whose recipe it inherits. Channels at
# strides 4/8/16/32 (Ultralytics layers [2, 16, 19, 22]) were computed once from yolo26m.yaml with
# UltralyticsBackbone(pretrained=False).out_channels; tests/test_models/test_yolo_variants.py
# rebuilds every variant and checks them. Weights: yolo26m.pt in checkpoints/ or
# $MONODLE_WEIGHTS_DIR (never downloaded); --cfg-options model.backbone.pretrained=False for random
# initialisation.
_base_ = ['../ablation/monodle_yolo26_kitti.py']

model = dict(
    backbone=dict(ultralytics_model='yolo26m.pt'),
    neck=dict(in_channels=[256, 256, 512, 512]),
    bbox_head=dict(in_channels=256))

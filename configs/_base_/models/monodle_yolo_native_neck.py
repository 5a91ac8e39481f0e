# monodle_yolo.py with YOLO's own neck: the backbone returns Detect's inputs (P3 / P4 / P5 after
# its PAN; Detect never runs) and NativeNeck fuses them top-down into one stride-4 map.
# Channels: YOLOv8n's; a config for another scale writes its own neck.in_channels.
_base_ = ['./monodle_yolo.py']

model = dict(
    backbone=dict(ultralytics_model='yolov8n.pt', feature_strides=[8, 16, 32], detect_inputs=True),
    neck=dict(_delete_=True, type='NativeNeck', in_channels=[64, 128, 256], out_channels=64),
    bbox_head=dict(in_channels=64))

# Test config: the kitti_mini demo with a randomly initialised YOLOv8n backbone at 320 x 96,
# 2 images per step: seconds per epoch on one CPU core.
_base_ = ['../../../configs/demo/monodle_dla34_kitti_mini.py']

input_size = (320, 96)
total_batch_size = 2
max_epochs = 3

model = dict(
    data_preprocessor=dict(mean=[0.0, 0.0, 0.0], std=[255.0, 255.0, 255.0]),
    backbone=dict(_delete_=True, type='UltralyticsBackbone', ultralytics_model='yolo8',
                  feature_strides=[4, 8, 16, 32], pretrained=False, freeze_backbone=False),
    neck=dict(in_channels=[32, 64, 128, 256]),  # yolov8n
    bbox_head=dict(in_channels=32, feat_channels=16))

train_dataloader = dict(
    dataset=dict(indices=6, pipeline=[
        dict(type='LoadKittiMonoImage'),
        dict(type='LoadMonoDLEAnnotations'),
        dict(type='MonoDLEAffineAug', output_size=input_size, random_flip=0.5, random_crop=0.5),
        dict(type='EncodeMonoDLETargets'),
        dict(type='PackMonoDLEInputs'),
    ]))
val_dataloader = dict(dataset=dict(indices=2, pipeline=[
    dict(type='LoadKittiMonoImage'),
    dict(type='MonoDLEAffineAug', output_size=input_size, test_mode=True),
    dict(type='PackMonoDLEInputs', keys=['img']),
]))
test_dataloader = val_dataloader
param_scheduler = [dict(type='MultiStepLR', milestones=[2], gamma=0.1, by_epoch=True, begin=0,
                        end=max_epochs)]
train_cfg = dict(max_epochs=max_epochs, val_interval=100)
default_hooks = dict(checkpoint=dict(max_keep_ckpts=-1))

# Fit-test config (tests/test_tools/test_fit_kitti_mini.py): the main job's recipe
# (configs/demo/monodle_yolo8_da3_kitti_mini.py) on 4 kitti_mini frames with 31 cars, at
# 320 x 96 with a 64-channel head: trained and evaluated on the same frames in about a minute
# on one CPU core.
_base_ = ['../../../configs/demo/monodle_yolo8_da3_kitti_mini.py']

input_size = (320, 96)
max_epochs = 75  # 2 iterations each (4 frames, batch 2): 150 iterations
frames = [5, 6, 8, 10]  # 000006, 000008, 000019, 000021 of ImageSets/train.txt

train_pipeline = [
    dict(type='LoadKittiMonoImage'),
    dict(type='LoadMonoDLEAnnotations'),
    dict(type='MonoDLEAffineAug', output_size=input_size, random_flip=0.0, random_crop=0.0),
    dict(type='LoadDA3Depth', depth_dir='lidar_depth'),
    dict(type='PackMonoDLEInputs'),
]
test_pipeline = [
    dict(type='LoadKittiMonoImage'),
    dict(type='MonoDLEAffineAug', output_size=input_size, test_mode=True),
    dict(type='PackMonoDLEInputs', keys=['img']),
]
train_dataloader = dict(dataset=dict(indices=frames, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(indices=frames, pipeline=test_pipeline))
test_dataloader = val_dataloader

model = dict(bbox_head=dict(feat_channels=64))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=20),
    dict(type='MultiStepLR', milestones=[60], gamma=0.1, by_epoch=True, begin=0,
         end=max_epochs),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
default_hooks = dict(logger=dict(type='LoggerHook', interval=25),
                     checkpoint=dict(type='ResumableCheckpointHook', interval=max_epochs,
                                     by_epoch=True, max_keep_ckpts=1))
log_processor = dict(window_size=25)

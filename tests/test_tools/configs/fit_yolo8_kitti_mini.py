# Fit-test config (tests/test_tools/test_fit_kitti_mini.py): the main job's recipe
# (configs/demo/monodle_yolo8_da3_kitti_mini.py) on 2 kitti_mini frames with 19 cars, at
# 320 x 96 with a 64-channel head: trained and evaluated on the same frames in about two
# minutes on one CPU core.
_base_ = ['../../../configs/demo/monodle_yolo8_da3_kitti_mini.py']

input_size = (320, 96)
max_epochs = 400  # 1 iteration each (2 frames, batch 2)
lr_drop_epoch = 340  # x0.1 and BatchNorm statistics frozen from here, as in the demo
frames = [6, 10]  # 000008, 000021 of ImageSets/train.txt

train_pipeline = [
    dict(type='LoadKittiMonoImage'),
    dict(type='LoadMonoDLEAnnotations'),
    dict(type='MonoDLEAffineAug', output_size=input_size, random_flip=0.0, random_crop=0.0),
    dict(type='EncodeMonoDLETargets'),
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

model = dict(bbox_head=dict(feat_channels=64, test_cfg=dict(score_thr=0.05)))
optim_wrapper = dict(optimizer=dict(lr=2.5e-3))  # measured at this lr (the demo's is 1.5e-3)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=20),
    dict(type='MultiStepLR', milestones=[lr_drop_epoch], gamma=0.1, by_epoch=True, begin=0,
         end=max_epochs),
]
custom_hooks = [dict(type='NormEvalHook', begin_epoch=lr_drop_epoch)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
default_hooks = dict(logger=dict(type='LoggerHook', interval=50),
                     checkpoint=dict(type='ResumableCheckpointHook', interval=max_epochs,
                                     by_epoch=True, max_keep_ckpts=1))
log_processor = dict(window_size=50)

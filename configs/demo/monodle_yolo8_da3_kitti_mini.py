# The main recipe fitted to the 13 kitti_mini frames on CPU in minutes: configs/demo/README.md
_base_ = ['../monodle_yolo8_da3.py']

data_root = 'demo/kitti_mini/KITTI/'
input_size = (512, 160)  # (W, H) network input, pixels; head output 128 x 40 at stride 4
max_epochs = 140  # 6 iterations each (13 frames, batch 2, the odd frame out: drop_last)
lr_drop_epoch = 130  # x0.1 from here; BatchNorm statistics frozen from here (NormEvalHook)
total_batch_size = 2
auto_scale_lr = dict(enable=True, base_batch_size=2)  # the lr below is for a total batch of 2

# kitti_mini's sparse LiDAR depth stands in for DA3 (same file format); MonoDLERunner puts
# LoadDA3Depth after MonoDLEAffineAug
distill = dict(depth_dir='lidar_depth', cache=True)
train_pipeline = [
    dict(type='LoadKittiMonoImage', cache=True),  # 13 frames decoded once, kept in memory
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
train_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    drop_last=True,  # no batch of 1 frame (BatchNorm statistics of one image)
    dataset=dict(data_root=data_root, split='train', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, split='val', pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='KittiAP40Metric', data_root=data_root)
test_evaluator = val_evaluator

model = dict(channels_last=True,
             backbone=dict(pretrained=False),
             bbox_head=dict(feat_channels=32, depth_init=20.0, test_cfg=dict(score_thr=0.1)))
optim_wrapper = dict(optimizer=dict(lr=1.5e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=30),
    dict(type='MultiStepLR', milestones=[lr_drop_epoch], gamma=0.1, by_epoch=True, begin=0,
         end=max_epochs),
]
# the last 60 iterations train with BatchNorm in eval mode: the weights settle under the
# normalisation the test uses (batch-of-2 statistics vs running averages: configs/demo/README.md)
custom_hooks = [dict(type='NormEvalHook', begin_epoch=lr_drop_epoch)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
default_hooks = dict(logger=dict(type='LoggerHook', interval=10),
                     checkpoint=dict(type='ResumableCheckpointHook', interval=max_epochs,
                                     by_epoch=True, max_keep_ckpts=1))
log_processor = dict(window_size=10)

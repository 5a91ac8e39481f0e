# The official DLA-34 recipe on the 13 kitti_mini frames on CPU in minutes: configs/demo/README.md
_base_ = ['../monodle/monodle_dla34_kitti.py']

data_root = 'demo/kitti_mini/KITTI/'
input_size = (640, 192)  # (W, H) network input, pixels; head output 160 x 48 at stride 4
max_epochs = 2
total_batch_size = 4  # the config lr stays the recipe's (for 16): auto_scale_lr gives x4/16

train_pipeline = [
    dict(type='LoadKittiMonoImage'),
    dict(type='LoadMonoDLEAnnotations'),
    dict(type='MonoDLEAffineAug', output_size=input_size, random_flip=0.5, random_crop=0.0),
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
    dataset=dict(data_root=data_root, split='train', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, split='val', pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='KittiAP40Metric', data_root=data_root)
test_evaluator = val_evaluator

# from scratch: the recipe's ImageNet DLA-34 file is not shipped (see the recipe config)
model = dict(backbone=dict(init_cfg=None))
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=True, begin=0, end=max_epochs)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=1),
    checkpoint=dict(type='ResumableCheckpointHook', interval=1, by_epoch=True,
                    max_keep_ckpts=2))
log_processor = dict(window_size=1)

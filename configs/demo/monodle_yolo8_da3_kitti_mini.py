# Demo: configs/monodle_yolo8_da3.py (YOLOv8n + DA3-style dense depth distillation) on the 13
# kitti_mini frames, for CPU in minutes. The teacher is kitti_mini's sparse LiDAR depth
# (demo/kitti_mini/KITTI/lidar_depth/<id>.npz), read by the same LoadDA3Depth as DA3 maps.
# Differences from the real config, all for speed: 640 x 192 input, 30 epochs, total batch 4
# (the lr is scaled x4/16), no random crop, no workers, randomly initialised backbone
# (no yolov8n.pt download). AP40 printed at the end measures the fit of 13 frames, nothing more.
#   python tools/train.py configs/demo/monodle_yolo8_da3_kitti_mini.py
_base_ = ['../monodle_yolo8_da3.py']

data_root = 'demo/kitti_mini/KITTI/'
input_size = (640, 192)  # (W, H) network input, pixels; head output 160 x 48 at stride 4
max_epochs = 30  # ~1.5 min on 2 CPU cores; the summed loss falls from ~70 to ~15
total_batch_size = 4

# kitti_mini's sparse LiDAR depth stands in for DA3 (same file format)
distill = dict(depth_dir='lidar_depth')
train_pipeline = [
    dict(type='LoadKittiMonoImage'),
    dict(type='LoadMonoDLEAnnotations'),
    dict(type='MonoDLEAffineAug', output_size=input_size, random_flip=0.5, random_crop=0.0),
    dict(type='LoadDA3Depth', depth_dir='lidar_depth', max_depth=None, on_missing='error',
         scale_by_crop=True, interpolation='nearest'),
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

model = dict(backbone=dict(pretrained=False))
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=True, begin=0, end=max_epochs)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
default_hooks = dict(logger=dict(type='LoggerHook', interval=1),
                     checkpoint=dict(type='ResumableCheckpointHook', interval=1, by_epoch=True,
                                     max_keep_ckpts=2))
log_processor = dict(window_size=1)

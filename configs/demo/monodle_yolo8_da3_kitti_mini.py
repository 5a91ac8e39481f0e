# Demo: configs/monodle_yolo8_da3.py (YOLOv8n + DA3-style dense depth distillation) fitted to the
# 13 kitti_mini frames on CPU in minutes. The teacher is kitti_mini's sparse LiDAR depth
# (demo/kitti_mini/KITTI/lidar_depth/<id>.npz), read by the same LoadDA3Depth as DA3 maps.
# The backbone, neck, losses and distillation (lambda 0.5, L1, soft foreground weight 5) are
# those of the real config; what differs is demo-only and chosen so that 13 frames are fitted,
# depth included, in minutes of training on two CPU cores:
# - 512 x 160 input (the real one: 1280 x 384), randomly initialised backbone (no yolov8n.pt),
#   no dataloader workers; convolutions in channels_last (model.channels_last: same maths,
#   about 20 % faster training steps on CPU);
# - head branches 32 channels wide (the recipe: 256, which would take most of the CPU time at
#   this size): the same seven branches, losses and decoding;
# - no flip / crop augmentation (a fit of the same frames, not generalisation);
# - total batch 2 (more updates per CPU second), Adam lr 2.5e-3 (the lr of this batch, not
#   scaled: auto_scale_lr.base_batch_size = 2), linear warm-up over 30 iterations, x0.1 at
#   epoch 155 of 180 (1260 iterations);
# - the depth branch starts at 20 m (bbox_head.depth_init=20; MonoDLE's bias 0 starts every
#   pixel at 1 m, and Adam moves that bias by about the lr per iteration: log(20) / 2.5e-3 =
#   1200 iterations before depth is even in range). Measured on 2 cores, 1 thread, 1260
#   iterations: Car AP40 moderate 3D IoU 0.5 / BEV IoU 0.7 36.9 / 9.8 without it (the earlier
#   10x lr on the depth output layer), 51.5 / 23.6 and 60.9 / 38.6 (seeds 444 / 7) with it;
# - evaluation keeps detections with heatmap score >= 0.1 (the recipe: 0.2);
# - one checkpoint, at the end; log every 10 iterations.
# Measured runs, machines and what still falls short: README, "Quick start". Without
# distillation (distill.lambda=0) depth converges much later: the dense teacher matters too.
# The AP40 printed at the end is measured on the frames it trained on: a fit check, not accuracy.
#   python tools/train.py configs/demo/monodle_yolo8_da3_kitti_mini.py
_base_ = ['../monodle_yolo8_da3.py']

data_root = 'demo/kitti_mini/KITTI/'
input_size = (512, 160)  # (W, H) network input, pixels; head output 128 x 40 at stride 4
max_epochs = 180  # 7 iterations each (13 frames, batch 2)
total_batch_size = 2
auto_scale_lr = dict(enable=True, base_batch_size=2)  # the lr below is for a total batch of 2

# kitti_mini's sparse LiDAR depth stands in for DA3 (same file format)
distill = dict(depth_dir='lidar_depth')
train_pipeline = [
    dict(type='LoadKittiMonoImage'),
    dict(type='LoadMonoDLEAnnotations'),
    dict(type='MonoDLEAffineAug', output_size=input_size, random_flip=0.0, random_crop=0.0),
    dict(type='LoadDA3Depth', depth_dir='lidar_depth', max_depth=None, on_missing='error',
         scale_by_crop=True, interpolation='nearest'),
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

model = dict(channels_last=True,
             backbone=dict(pretrained=False),
             bbox_head=dict(feat_channels=32, depth_init=20.0, test_cfg=dict(score_thr=0.1)))
optim_wrapper = dict(optimizer=dict(lr=2.5e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=30),
    dict(type='MultiStepLR', milestones=[155], gamma=0.1, by_epoch=True, begin=0,
         end=max_epochs),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
default_hooks = dict(logger=dict(type='LoggerHook', interval=10),
                     checkpoint=dict(type='ResumableCheckpointHook', interval=max_epochs,
                                     by_epoch=True, max_keep_ckpts=1))
log_processor = dict(window_size=10)

# Reproduce mode for the seed system's YOLOv8 + DA3 runs (experiments/configs/ablation/yolo8/n/
# kitti_da3.yaml): configs/ablation/monodle_yolo8_da3_kitti.py with the seed's input
# normalisation and backbone regime (see monodle_yolo8_seedrepro_kitti.py) and its teacher:
# not multiplied by the crop scale, warped bilinearly (ours stays validity-normalised: the seed's
# warp blends zeros into pixels it still calls valid, which no setting reproduces).
_base_ = ['./monodle_yolo8_da3_kitti.py']

distill = dict(scale_by_crop=False, interpolation='bilinear')
train_dataloader = dict(dataset=dict(pipeline=[
    dict(type='LoadKittiMonoImage', backend_args=None),
    dict(type='LoadMonoDLEAnnotations'),
    dict(type='MonoDLEAffineAug', output_size=(1280, 384), random_flip=0.5, random_crop=0.5,
         scale=0.4, shift=0.1),
    dict(type='LoadDA3Depth', depth_dir='DA3_depth_results', max_depth=None,
         on_missing='error', scale_by_crop=False, interpolation='bilinear'),
    dict(type='EncodeMonoDLETargets'),
    dict(type='PackMonoDLEInputs'),
]))
model = dict(
    data_preprocessor=dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375]),
    backbone=dict(freeze_backbone='weights'))

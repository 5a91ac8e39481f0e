_base_ = [
    '../_base_/models/monodle_dla34.py',
    '../_base_/datasets/kitti_mono3d_monodle.py',
    '../_base_/schedules/monodle_140e.py',
    '../_base_/default_runtime.py',
]

# ImageNet DLA-34, converted (configs/monodle/README.md); never downloaded
dla34_imagenet = 'checkpoints/dla34_imagenet_mmdet3d.pth'
model = dict(backbone=dict(
    init_cfg=dict(_delete_=True, type='Pretrained', checkpoint=dla34_imagenet)))

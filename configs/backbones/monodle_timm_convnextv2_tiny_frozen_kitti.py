_base_ = ['./monodle_timm_convnextv2_tiny_kitti.py']

model = dict(freeze_backbone=True)

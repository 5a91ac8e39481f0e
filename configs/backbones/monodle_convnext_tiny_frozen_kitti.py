_base_ = ['./monodle_convnext_tiny_kitti.py']

model = dict(backbone=dict(frozen_stages=4))

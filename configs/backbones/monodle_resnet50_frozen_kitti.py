_base_ = ['./monodle_resnet50_kitti.py']

model = dict(backbone=dict(frozen_stages=4, norm_eval=True))

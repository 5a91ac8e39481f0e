# configs/backbones/monodle_resnet50_kitti.py with the backbone frozen: mmdet's frozen_stages=4
# (stem and all four stages: no gradients) and norm_eval=True (BatchNorm statistics fixed);
# DLAUp and the head train.
_base_ = ['./monodle_resnet50_kitti.py']

model = dict(backbone=dict(frozen_stages=4, norm_eval=True))

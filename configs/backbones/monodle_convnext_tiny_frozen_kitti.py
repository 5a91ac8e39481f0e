# configs/backbones/monodle_convnext_tiny_kitti.py with the backbone frozen: mmpretrain's
# frozen_stages=4 (all downsampling layers and stages: no gradients, kept in eval mode); the four
# output LayerNorms, DLAUp and the head train.
_base_ = ['./monodle_convnext_tiny_kitti.py']

model = dict(backbone=dict(frozen_stages=4))

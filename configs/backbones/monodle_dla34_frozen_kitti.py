# The official DLA-34 recipe (configs/monodle/monodle_dla34_kitti.py, ImageNet DLA-34 weights)
# with the backbone frozen like the seed system's freeze_backbone: mmdet3d DLANet's
# frozen_stages=4 freezes the base layer and levels 0-5 (no gradients); as in the seed, their
# BatchNorm statistics still follow the data in train mode. DLAUp and the head train.
_base_ = ['../monodle/monodle_dla34_kitti.py']

model = dict(backbone=dict(frozen_stages=4))

_base_ = ['../monodle/monodle_dla34_kitti.py']

model = dict(backbone=dict(frozen_stages=4))

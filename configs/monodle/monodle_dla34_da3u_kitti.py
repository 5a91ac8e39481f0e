_base_ = ['./monodle_dla34_da3_kitti.py']

distill = dict(use_uncertainty=True)

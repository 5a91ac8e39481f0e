_base_ = ['./monodle_dla34_kitti.py', '../_base_/distill/da3_distill.py']

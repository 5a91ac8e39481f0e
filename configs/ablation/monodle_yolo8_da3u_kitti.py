_base_ = ['./monodle_yolo8_da3_kitti.py']

distill = dict(use_uncertainty=True)

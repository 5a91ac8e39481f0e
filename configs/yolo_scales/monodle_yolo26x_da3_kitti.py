_base_ = ['./monodle_yolo26x_kitti.py', '../_base_/distill/da3_distill.py']

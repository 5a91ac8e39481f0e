_base_ = ['./monodle_yolo26l_kitti.py', '../_base_/distill/da3_distill.py']

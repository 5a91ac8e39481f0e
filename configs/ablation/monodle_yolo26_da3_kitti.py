_base_ = ['./monodle_yolo26_kitti.py', '../_base_/distill/da3_distill.py']

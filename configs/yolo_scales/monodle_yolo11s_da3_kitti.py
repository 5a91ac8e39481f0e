_base_ = ['./monodle_yolo11s_kitti.py', '../_base_/distill/da3_distill.py']

_base_ = ['./monodle_yolo11l_kitti.py', '../_base_/distill/da3_distill.py']

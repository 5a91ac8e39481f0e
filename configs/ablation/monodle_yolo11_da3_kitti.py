_base_ = ['./monodle_yolo11_kitti.py', '../_base_/distill/da3_distill.py']

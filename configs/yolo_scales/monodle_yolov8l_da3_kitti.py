_base_ = ['./monodle_yolov8l_kitti.py', '../_base_/distill/da3_distill.py']

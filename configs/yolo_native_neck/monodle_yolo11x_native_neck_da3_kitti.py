_base_ = ['./monodle_yolo11x_native_neck_kitti.py', '../_base_/distill/da3_distill.py']

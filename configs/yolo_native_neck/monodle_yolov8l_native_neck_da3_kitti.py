_base_ = ['./monodle_yolov8l_native_neck_kitti.py', '../_base_/distill/da3_distill.py']

_base_ = ['./monodle_yolo11n_native_neck_kitti.py', '../_base_/distill/da3_distill.py']

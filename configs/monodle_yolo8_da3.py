_base_ = ['./ablation/monodle_yolo8_kitti.py', './_base_/distill/da3_distill.py']

_base_ = ['./monodle_yolov8m_kitti.py', '../_base_/distill/da3_distill.py']

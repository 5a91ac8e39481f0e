_base_ = ['./monodle_yolo26m_native_neck_kitti.py', '../_base_/distill/da3_distill.py']

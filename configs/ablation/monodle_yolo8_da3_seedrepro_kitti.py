_base_ = ['./monodle_yolo8_seedrepro_kitti.py', '../_base_/distill/da3_distill.py']

# the seed's teacher: not multiplied by the crop scale, warped bilinearly
distill = dict(scale_by_crop=False, interpolation='bilinear')
